// The example programs that run on the real test node (tests/cluster/node-up.sh): the model server and
// the pod sandbox's pause process (the training program is examples/training). Standard library only, so the build
// needs no module download; built static (CGO_ENABLED=0) by build-images.sh.
module champion.test/images

go 1.26.0
