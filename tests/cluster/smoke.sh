#!/usr/bin/env bash
# smoke.sh DIR: end-to-end check of a cluster started by up.sh DIR, using the pinned kubectl:
# versions, node Ready, a 2-replica Deployment + Service (pods Running/Ready with IPs, EndpointSlice
# with 2 ready endpoints), a Job that completes, garbage collection of owned objects, the installed
# Gateway API / Istio CRDs, and a ServiceAccount kubeconfig from sa-kubeconfig.sh limited by RBAC.
# Works in a fresh namespace that it deletes at the end. Exits non-zero on the first failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${1:?usage: smoke.sh DIR}
DIR=$(cd "$DIR" && pwd)
# shellcheck disable=SC1091
source "$DIR/env"
TIMEOUT=${SMOKE_TIMEOUT:-60}
NS=smoke-$(date +%s)-$$
PASSED=0
T0=$EPOCHREALTIME

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS: %s\n' "$*"; }
on_exit() {
  local rc=$?
  if [[ $rc != 0 ]]; then
    echo "----- diagnostics (namespace $NS) -----" >&2
    kc -n "$NS" get all,endpointslices,jobs -o wide >&2 2>&1 || true
    kc -n "$NS" get events --sort-by=.lastTimestamp 2>&1 | tail -n 20 >&2 || true
    echo "$PASSED passed, 1 failed"
  fi
}
trap on_exit EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# eventually DESC CMD...: poll CMD (0.25 s apart) until it succeeds or TIMEOUT seconds pass.
eventually() {
  local desc=$1 start=$EPOCHREALTIME
  shift
  until "$@" >/dev/null 2>&1; do
    if awk -v a="$start" -v b="$EPOCHREALTIME" -v t="$TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
      fail "$desc (not true after ${TIMEOUT}s)"
    fi
    sleep 0.25
  done
}

# --- versions, node ------------------------------------------------------------------------------------
ver=$(kc version -o json)
client=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' <<<"$ver")
server=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])' <<<"$ver")
[[ $client == v1.36.3 && $server == v1.36.3 ]] || fail "kubectl version: client $client, server $server"
pass "kubectl version: client $client, server $server"

ready=$(kc get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}')
[[ $ready == *=True* ]] || fail "no Ready node: $ready"
pass "nodes: $ready"

kc create namespace "$NS" >/dev/null
eventually "default ServiceAccount in $NS" kc -n "$NS" get serviceaccount default
pass "namespace $NS has its default ServiceAccount"

# --- Deployment + Service -----------------------------------------------------------------------------
kc -n "$NS" apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: server
        image: example/server:1
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
EOF
kc -n "$NS" rollout status deployment/web --timeout="${TIMEOUT}s" >/dev/null || fail "deployment web did not roll out"
pass "deployment web rolled out (ReplicaSet created by kube-controller-manager)"

pods_ready() {
  local out
  out=$(kc -n "$NS" get pods -l app=web -o jsonpath='{range .items[*]}{.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.status.podIP} {.spec.nodeName}{"\n"}{end}')
  [[ $(grep -cE '^Running True [0-9.]+ [^ ]+$' <<<"$out") == 2 ]]
}
eventually "2 web pods Running and Ready with an IP" pods_ready
pass "2 pods Running/Ready: $(kc -n "$NS" get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name}@{.spec.nodeName}={.status.podIP} {end}')"

slice_ready() {
  local n
  n=$(kc -n "$NS" get endpointslices -l kubernetes.io/service-name=web \
    -o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready} {.addresses[0]}{"\n"}{end}' | grep -c '^true ')
  [[ $n == 2 ]]
}
eventually "EndpointSlice of service web with 2 ready endpoints" slice_ready
pass "EndpointSlice for service web: $(kc -n "$NS" get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} {end}')"

# --- Job -------------------------------------------------------------------------------------------------
kc -n "$NS" create job once --image=example/job:1 >/dev/null
kc -n "$NS" wait --for=condition=Complete job/once --timeout="${TIMEOUT}s" >/dev/null || fail "job once did not complete"
phase=$(kc -n "$NS" get pods -l job-name=once -o jsonpath='{.items[0].status.phase}')
[[ $phase == Succeeded ]] || fail "job pod phase $phase"
pass "job once Complete, its pod Succeeded"

# --- garbage collection of owned objects -------------------------------------------------------------
kc -n "$NS" delete deployment web --wait=false >/dev/null
no_web_objects() {
  [[ -z $(kc -n "$NS" get replicasets,pods -l app=web -o name) ]]
}
eventually "ReplicaSet and pods of deleted deployment web garbage-collected" no_web_objects
pass "deleting the deployment garbage-collected its ReplicaSet and pods"

# --- CRDs ------------------------------------------------------------------------------------------------
kc -n "$NS" apply -f - >/dev/null <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  rules:
  - backendRefs:
    - {name: web, port: 80, weight: 90}
    - {name: web-canary, port: 80, weight: 10}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
spec:
  hosts: [web]
  http:
  - route:
    - destination: {host: web}
      weight: 90
    - destination: {host: web-canary}
      weight: 10
EOF
pass "HTTPRoute (gateway.networking.k8s.io/v1) and VirtualService (networking.istio.io/v1) accepted"

# --- ServiceAccount kubeconfig + RBAC ----------------------------------------------------------------
kc -n "$NS" create serviceaccount operator >/dev/null
kc -n "$NS" create role pod-reader --verb=get,list,watch --resource=pods >/dev/null
kc -n "$NS" create rolebinding operator-pod-reader --role=pod-reader --serviceaccount="$NS:operator" >/dev/null
SAKC=$DIR/smoke-sa.kubeconfig
"$HERE/sa-kubeconfig.sh" "$DIR" "$NS" operator "$SAKC" >/dev/null
who=$("$KUBECTL" --kubeconfig "$SAKC" auth whoami -o jsonpath='{.status.userInfo.username}')
[[ $who == "system:serviceaccount:$NS:operator" ]] || fail "whoami with SA kubeconfig: $who"
"$KUBECTL" --kubeconfig "$SAKC" get pods >/dev/null || fail "SA cannot list pods in $NS"
if "$KUBECTL" --kubeconfig "$SAKC" get secrets >/dev/null 2>&1; then fail "SA can list secrets (RBAC not enforced)"; fi
rm -f "$SAKC"
pass "sa-kubeconfig.sh: token identity $who, RBAC allows pods and denies secrets"

# --- cleanup: namespace deletion needs the namespace controller and kwok's pod-delete stage -----------
kc delete namespace "$NS" --wait=false >/dev/null
ns_gone() { ! kc get namespace "$NS" >/dev/null 2>&1; }
eventually "namespace $NS deleted" ns_gone
pass "namespace $NS deleted"

echo "smoke: all checks passed in $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
echo "$PASSED passed, 0 failed"
