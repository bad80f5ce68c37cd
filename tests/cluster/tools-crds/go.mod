module champion.test/cluster-tools-crds

go 1.26.0

require (
	istio.io/api v1.32.0 // indirect
	sigs.k8s.io/gateway-api v1.6.3 // indirect
)
