// Download-only pins: build-bins.sh takes the Gateway API (config/crd/standard/) and Istio
// (kubernetes/customresourcedefinitions.gen.yaml) CRD YAML from these modules. Nothing imports
// them, so do not run `go mod tidy` here (it would drop both requirements).
module champion.test/cluster-tools-crds

go 1.26.0

require (
	istio.io/api v1.32.0 // indirect
	sigs.k8s.io/gateway-api v1.6.3 // indirect
)
