#!/usr/bin/env bash
# build-images.sh: build the images that the real test node runs (tests/cluster/node-up.sh imports them
# with `ctr images import`; nothing is pulled from a registry), once, into
# ${XDG_CACHE_HOME:-~/.cache}/champion/images/<key>/, <key> = sha256 of this folder's sources and scripts
# and `go version`. Each image is one static Go binary (standard library only, CGO_ENABLED=0, -trimpath,
# no build id) in a docker-archive tarball written by mkimage.py with zero timestamps, so a rebuild gives
# the same digests:
#   model-server.tar  champion.test/model-server:1  (the example model server, see model-server/main.go)
#   trainer.tar       champion.test/trainer:1       (training and evaluation Jobs: the example program of
#                                                    examples/training/, with scikit-learn's breast cancer
#                                                    dataset embedded, taken from the scikit-learn wheel that
#                                                    pip downloads once into ${XDG_CACHE_HOME:-~/.cache}/champion/datasets)
#   pause.tar         registry.k8s.io/pause:3.10    (the pod sandbox, containerd's sandbox_image)
# Usage: IMAGES=$(tests/images/build-images.sh | tail -1)   # progress on stderr, the folder on stdout
# Env: XDG_CACHE_HOME (cache root), REBUILD=1 (ignore an existing cache entry).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"

log() { printf '[build-images] %s\n' "$*" >&2; }
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then PATH=$PATH:/usr/local/go/bin; fi
command -v go >/dev/null || { log "go not found in PATH (nor /usr/local/go/bin)"; exit 1; }

# name ref: the images, in the order described above
IMAGES=("model-server champion.test/model-server:1" "trainer champion.test/trainer:1" "pause registry.k8s.io/pause:3.10")

TRAINING=$(cd "$HERE/../../examples/training" && pwd)
SKLEARN_VERSION=1.9.1
KEY=$( { cd "$HERE" && find . "$TRAINING" -type f \( -name '*.go' -o -name go.mod -o -name '*.sh' -o -name '*.py' \) \
  -print0 | sort -z | xargs -0 sha256sum; go version; echo "scikit-learn $SKLEARN_VERSION"; } | sha256sum | cut -c1-16)
ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/champion/images
DEST=$ROOT/$KEY
mkdir -p "$ROOT"
done_already() { [[ -f $DEST/.complete && ${REBUILD:-0} != 1 ]]; }
if done_already; then
  log "cached: $DEST"
  echo "$DEST"
  exit 0
fi
exec 9>"$ROOT/.lock"
flock 9
if done_already; then
  log "cached (built by another process): $DEST"
  echo "$DEST"
  exit 0
fi

T0=$SECONDS
STAGE=$ROOT/.stage-$KEY-$$
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin"
# The dataset: scikit-learn's copy of the Wisconsin breast cancer data, from its wheel (PyPI), cached.
DATA=${XDG_CACHE_HOME:-$HOME/.cache}/champion/datasets/scikit-learn-$SKLEARN_VERSION
if [[ ! -f $DATA/breast_cancer.csv ]]; then
  log "pip download scikit-learn==$SKLEARN_VERSION (for its bundled breast cancer dataset)"
  mkdir -p "$DATA.tmp"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$DATA.tmp" "scikit-learn==$SKLEARN_VERSION" >&2
  python3 - "$DATA.tmp" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/scikit_learn-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("sklearn/datasets/data/breast_cancer.csv")
open(sys.argv[1] + "/breast_cancer.csv", "wb").write(data)
PY
  mkdir -p "$DATA"
  mv "$DATA.tmp/breast_cancer.csv" "$DATA/breast_cancer.csv"
  rm -rf "$DATA.tmp"
fi
mkdir -p "$STAGE/training/data"
cp "$TRAINING"/go.mod "$TRAINING"/*.go "$STAGE/training/"
cp "$DATA/breast_cancer.csv" "$STAGE/training/data/"
log "go build ./model-server ./pause and the example training program"
(cd "$HERE" && go build -trimpath -ldflags "-s -w -buildid=" -o "$STAGE/bin/" ./model-server ./pause)
(cd "$STAGE/training" && go build -trimpath -ldflags "-s -w -buildid=" -o "$STAGE/bin/trainer" .)
rm -rf "$STAGE/training"
for entry in "${IMAGES[@]}"; do
  read -r name ref <<<"$entry"
  python3 "$HERE/mkimage.py" "$STAGE/$name.tar" "$ref" "$STAGE/bin/$name" >&2
  echo "$name $ref" >>"$STAGE/images.txt"
done
rm -rf "$STAGE/bin"
touch "$STAGE/.complete"
rm -rf "$DEST"
mv -T "$STAGE" "$DEST"
log "built in $((SECONDS - T0)) s: $DEST ($(du -sh "$DEST" | cut -f1))"
echo "$DEST"
