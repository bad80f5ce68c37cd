#!/usr/bin/env bash
# hack/bench-operator.sh CLUSTER_DIR [N]: the operator's memory and speed on a real control plane.
# Creates N ModelDeployments (replicas router, 2 pods each) in a fresh namespace, starts the debug or
# release `champion` binary under the champion ServiceAccount, and reports: time until all N are Healthy,
# the operator's peak and final RSS, and reconciles counted by its /metrics. Figures go to
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
RECONCILES=$(curl -s "127.0.0.1:$PORT/metrics" | awk '/^champion_reconciliations_total\{kind="ModelDeployment"\}/ {print $2}')
printf '%d ModelDeployments Healthy after %.1f s; operator RSS peak %d kB, now %d kB; %s ModelDeployment reconciles\n' \
  "$N" "$(awk -v a="$START" -v b="$END" 'BEGIN {print b - a}')" "$PEAK" "$(rss)" "$RECONCILES"
