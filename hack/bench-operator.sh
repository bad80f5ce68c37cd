#!/usr/bin/env bash
# hack/bench-operator.sh CLUSTER_DIR [N]: the operator's memory and speed on a real control plane.
# Creates N ModelDeployments (replicas router, 2 pods each) in a fresh namespace, starts the debug or
# release `champion` binary under the champion ServiceAccount, and reports: time until all N are Healthy,
# the operator's peak and final RSS, reconciles counted by its /metrics, and the API requests the operator
# made, from the apiserver's own apiserver_request_total: while converging (per ModelDeployment), and in a
# steady state where every ModelDeployment is reconciled once more (an annotation change) and nothing
# is to be done (writes per reconcile; expected 0). Only requests no other component of the test cluster
# makes are counted: APPLY/PATCH/GET/LIST/DELETE on deployments, services, httproutes, virtualservices
# and modeldeployments; of modeldeployments only the status subresource (kubectl here reads and annotates
# them). Events are not counted (the scheduler posts events.k8s.io Events too). Figures go to
# docs/benchmarks.md by hand; nothing here asserts a threshold.
set -euo pipefail
DIR=${1:?usage: hack/bench-operator.sh CLUSTER_DIR [N]}
N=${2:-50}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$DIR/env"
BIN=${CHAMPION_BIN:-$REPO/target/release/champion}
[[ -x $BIN ]] || BIN=$REPO/target/debug/champion
NS=bench-$RANDOM
K() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
K apply -k "$REPO/config" >/dev/null
"$REPO/tests/cluster/sa-kubeconfig.sh" "$DIR" champion-system champion "$DIR/bench.kubeconfig" >/dev/null
K create namespace "$NS" >/dev/null
printf 'prometheus:\n  default: "http://127.0.0.1:9"\nnamespaces: ["%s"]\n' "$NS" >"$DIR/bench-config.yaml"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
KUBECONFIG=$DIR/bench.kubeconfig RUST_LOG=warn "$BIN" run --config "$DIR/bench-config.yaml" --listen "127.0.0.1:$PORT" \
  >"$DIR/bench-operator.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; K delete namespace "$NS" --wait=false >/dev/null 2>&1 || true' EXIT
until curl -sf "127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
# requests [writes]: the operator's API requests so far (see the header), or only its writes.
requests() {
  K get --raw /metrics | awk -v only="${1:-}" '
    /^apiserver_request_total\{/ {
      verb = ""; res = ""; grp = ""; sub_ = ""
      if (match($0, /verb="[^"]*"/)) verb = substr($0, RSTART + 6, RLENGTH - 7)
      if (match($0, /resource="[^"]*"/)) res = substr($0, RSTART + 10, RLENGTH - 11)
      if (match($0, /group="[^"]*"/)) grp = substr($0, RSTART + 7, RLENGTH - 8)
      if (match($0, /subresource="[^"]*"/)) sub_ = substr($0, RSTART + 13, RLENGTH - 14)
      ours = (res ~ /^(deployments|services|httproutes|virtualservices|modeldeployments)$/ && verb ~ /^(APPLY|PATCH|GET|LIST|DELETE)$/)
      if (res == "modeldeployments" && sub_ != "status") ours = 0
      if (res == "deployments" && sub_ != "") ours = 0
      if (only == "writes" && verb !~ /^(APPLY|PATCH|DELETE)$/) ours = 0
      if (ours) n += $NF
    }
    END { printf "%d\n", n }'
}
REQ0=$(requests)
echo "operator $BIN, RSS at start: $(rss) kB"
START=$(date +%s.%N)
for i in $(seq 1 "$N"); do
  cat <<YAML
---
apiVersion: champion.ml/v1alpha1
kind: ModelDeployment
metadata: {name: model-$i}
spec:
  model: {version: "1.0.0", uri: "s3://models/m$i/1.0.0"}
  replicas: 2
  template: {spec: {containers: [{name: server, image: example.invalid/server:1}]}}
YAML
done | K -n "$NS" apply -f - >/dev/null
PEAK=0
while true; do
  r=$(rss); ((r > PEAK)) && PEAK=$r
  healthy=$(K -n "$NS" get md -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Healthy$' || true)
  [[ $healthy -ge $N ]] && break
  sleep 0.5
done
END=$(date +%s.%N)
REQ1=$(requests)
reconciles() {
  curl -s "127.0.0.1:$PORT/metrics" | awk '/^champion_reconciliations_total\{kind="ModelDeployment"\}/ {print $2}'
}
RECONCILES=$(reconciles)
# Steady state: one more reconcile of each (an annotation change), with nothing to do.
W0=$(requests writes)
K -n "$NS" annotate md --all bench.champion.ml/touch="$RANDOM" --overwrite >/dev/null
until (($(reconciles) >= RECONCILES + N)); do sleep 0.2; done
sleep 2 # let writes of the last reconciles show in the apiserver's counters
W1=$(requests writes)
printf '%d ModelDeployments Healthy after %.1f s; operator RSS peak %d kB, now %d kB; %s ModelDeployment reconciles\n' \
  "$N" "$(awk -v a="$START" -v b="$END" 'BEGIN {print b - a}')" "$PEAK" "$(rss)" "$RECONCILES"
printf 'API requests by the operator while converging: %d (%.1f per ModelDeployment); writes in %d steady-state reconciles: %d\n' \
  "$((REQ1 - REQ0))" "$(awk -v a="$REQ0" -v b="$REQ1" -v n="$N" 'BEGIN {print (b - a) / n}')" "$N" "$((W1 - W0))"
