#!/usr/bin/env bash
# build-bins.sh: build the pinned test-cluster binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kubelet, kube-proxy, etcd, kwok, prometheus) from the Go module proxy, once,
# into a cache folder keyed by a hash of the pin files (tools*/go.mod, tools*/go.sum), this script and the
# Go version; also extract the Gateway API (standard channel) and Istio (networking.istio.io) CRD YAML
# next to them.
# Usage: BIN=$(tests/cluster/build-bins.sh | tail -1)   # progress goes to stderr, the bin dir to stdout
# Env: XDG_CACHE_HOME (cache root), REBUILD=1 (ignore an existing cache entry).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_VERSION=v1.36.3 # must match k8s.io/kubernetes in tools/go.mod (used for the -X version stamp)

export GOTOOLCHAIN=local   # fail fast instead of downloading another toolchain
export CGO_ENABLED=0       # static binaries, as upstream builds them
export GOFLAGS="-mod=readonly -buildvcs=false"  # go.sum is complete: never edit the pins while building
export GOWORK=off

log() { printf '[build-bins] %s\n' "$*" >&2; }

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then PATH=$PATH:/usr/local/go/bin; fi
command -v go >/dev/null || { log "go not found in PATH (nor /usr/local/go/bin)"; exit 1; }
PIN_FILES=(
  "$HERE/build-bins.sh"
  "$HERE/tools/go.mod" "$HERE/tools/go.sum"
  "$HERE/tools-etcd/go.mod" "$HERE/tools-etcd/go.sum"
  "$HERE/tools-kwok/go.mod" "$HERE/tools-kwok/go.sum"
  "$HERE/tools-crds/go.mod" "$HERE/tools-crds/go.sum"
  "$HERE/tools-prometheus/go.mod" "$HERE/tools-prometheus/go.sum"
)
KEY=$( { cat "${PIN_FILES[@]}"; go version; } | sha256sum | cut -c1-16)
ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/champion/k8s
DEST=$ROOT/$KEY
mkdir -p "$ROOT"

done_already() { [[ -f $DEST/.complete && ${REBUILD:-0} != 1 ]]; }
if done_already; then
  log "cached: $DEST"
  echo "$DEST/bin"
  exit 0
fi

# One builder at a time per cache root (parallel test runs wait here instead of building twice).
exec 9>"$ROOT/.lock"
log "waiting for lock $ROOT/.lock"
flock 9
if done_already; then
  log "cached (built by another process): $DEST"
  echo "$DEST/bin"
  exit 0
fi

STAGE=$ROOT/.stage-$KEY-$$
cleanup() {
  local rc=$?
  rm -rf "$STAGE"
  [[ $rc == 0 ]] || log "FAILED (exit $rc); nothing was published to $DEST"
}
trap cleanup EXIT
trap 'log "command failed at line $LINENO: $BASH_COMMAND"' ERR
mkdir -p "$STAGE/bin" "$STAGE/crds"

# Time and peak RSS of each step when GNU time is installed (Debian package "time").
TIMER=()
if [[ -x /usr/bin/time ]]; then
  TIMER=(/usr/bin/time -f '[build-bins]   step took %e s wall, peak RSS %M KiB')
fi
step() { # name dir cmd...
  local name=$1 dir=$2
  shift 2
  log "$name ..."
  (cd "$dir" && "${TIMER[@]}" "$@") >&2
}

T0=$SECONDS
# --- Kubernetes: one invocation so the shared packages compile once -------------------------------
MINOR=${K8S_VERSION#v1.}
MINOR=${MINOR%%.*}
LDX=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDX+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done
# tags and -s -w -trimpath as in kubernetes' hack/lib/golang.sh for non-debug builds
# (kubelet and kube-proxy are only run by node-up.sh, the optional real node)
step "go build kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy ($K8S_VERSION)" \
  "$HERE/tools" \
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "-s -w$LDX" -o "$STAGE/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy

# --- etcd: package main of go.etcd.io/etcd/server/v3 (own module: its deps conflict with k8s') ----
step "go build etcd" "$HERE/tools-etcd" \
  go build -trimpath -ldflags "-s -w" -o "$STAGE/bin/etcd" go.etcd.io/etcd/server/v3

# --- kwok (own module: it would upgrade grpc/otel/x/net under kube-apiserver) ----------------------
step "go build kwok" "$HERE/tools-kwok" \
  go build -trimpath -ldflags "-s -w" -o "$STAGE/bin/kwok" sigs.k8s.io/kwok/cmd/kwok

# --- Prometheus with Kubernetes service discovery only (own module: it requires client-go v0.37) ----
PROM_VERSION=$(cd "$HERE/tools-prometheus" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus)
PROM_VERSION=3.${PROM_VERSION#v0.3} # module v0.316.0 is Prometheus v3.16.0
PLD="-X github.com/prometheus/common/version.Version=$PROM_VERSION"
PLD+=" -X github.com/prometheus/common/version.Branch=release -X github.com/prometheus/common/version.Revision=module"
step "go build prometheus ($PROM_VERSION, Kubernetes service discovery only)" "$HERE/tools-prometheus" \
  go build -trimpath -tags remove_all_sd,enable_kubernetes_sd -ldflags "-s -w $PLD" -o "$STAGE/bin/prometheus" \
  github.com/prometheus/prometheus/cmd/prometheus

# --- CRD YAML from the module cache ---------------------------------------------------------------
moddir() { (cd "$HERE/tools-crds" && go mod download "$1" && go list -m -f '{{.Dir}}' "$1"); }
GW_DIR=$(moddir sigs.k8s.io/gateway-api)
ISTIO_DIR=$(moddir istio.io/api)
log "Gateway API CRDs from $GW_DIR/config/crd/standard"
for f in "$GW_DIR"/config/crd/standard/*.yaml; do
  printf -- '---\n'
  cat "$f"
done >"$STAGE/crds/gateway-api.yaml"
# Istio ships all its CRDs in one file; keep only the networking.istio.io ones.
log "Istio networking CRDs from $ISTIO_DIR/kubernetes/customresourcedefinitions.gen.yaml"
awk '
  function flush() { if (doc != "" && keep) printf "---\n%s", doc; doc = ""; keep = 0 }
  /^---[[:space:]]*$/ { flush(); next }
  { doc = doc $0 "\n" }
  /^  group: networking\.istio\.io[[:space:]]*$/ { keep = 1 }
  END { flush() }
' "$ISTIO_DIR/kubernetes/customresourcedefinitions.gen.yaml" >"$STAGE/crds/istio.yaml"
n_gw=$(grep -c '^kind: CustomResourceDefinition' "$STAGE/crds/gateway-api.yaml" || true)
n_is=$(grep -c '^kind: CustomResourceDefinition' "$STAGE/crds/istio.yaml" || true)
log "CRDs: $n_gw Gateway API, $n_is Istio networking"
[[ $n_gw -gt 0 && $n_is -gt 0 ]] || { log "no CRDs extracted"; exit 1; }

# --- record versions, publish atomically -----------------------------------------------------------
{
  echo "key=$KEY"
  go version
  "$STAGE/bin/kube-apiserver" --version
  "$STAGE/bin/kubectl" version --client 2>/dev/null | sed -n 1p # not head: SIGPIPE + pipefail would fail the build
  "$STAGE/bin/etcd" --version | sed -n 1p # not head: SIGPIPE + pipefail would fail the build
  "$STAGE/bin/kwok" --version 2>/dev/null | sed -n 1p # not head: SIGPIPE + pipefail would fail the build
  "$STAGE/bin/prometheus" --version 2>&1 | sed -n 1p
  echo "gateway-api $(cd "$HERE/tools-crds" && go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api)"
  echo "istio.io/api $(cd "$HERE/tools-crds" && go list -m -f '{{.Version}}' istio.io/api)"
} >"$STAGE/versions.txt"
sed 's/^/[build-bins]   /' "$STAGE/versions.txt" >&2
touch "$STAGE/.complete"
rm -rf "$DEST"
mv -T "$STAGE" "$DEST"
log "built in $((SECONDS - T0)) s: $DEST"
echo "$DEST/bin"
