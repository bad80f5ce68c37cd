#!/usr/bin/env bash
# hack/quickstart.sh [up|down] [--real-node]: a local cluster with Champion and an example running, on this
# machine.
#
# up (the default):
#   builds the pinned Kubernetes binaries (tests/cluster/build-bins.sh, cached) and `cargo build --bins`;
#   starts a control plane with kwok fake nodes (tests/cluster/up.sh) and Prometheus (prometheus.sh) in
#   ${XDG_CACHE_HOME:-~/.cache}/champion/quickstart (an earlier quickstart there is stopped first);
#   installs Champion with `kubectl apply -k config/` (under kwok the operator's Deployment gets only a fake
#   pod, so the real operator runs here as a process: `champion run` with a token kubeconfig of the
#   ServiceAccount champion-system/champion, i.e. exactly the RBAC of config/, and a config naming the local
#   Prometheus and the local MLflow); starts MLflow (tests/cluster/mlflow.sh, installed with pip once, cached)
#   and registers a demo model with two versions (hack/demo-registry.sh); creates namespace demo, applies
#   examples/modeldeployment-replicas.yaml and examples/modeldeployment-registry-alias.yaml there (the latter
#   follows the demo model's alias) and waits for the operator's first status; then prints what to try next.
# up --real-node: also starts a real kubelet node (tests/cluster/node-up.sh: containerd, CNI, kube-proxy; root)
#   and applies examples/modeldeployment-real-node.yaml instead: a model server that really runs and answers
#   through its Service from this machine; prints the curl command and how to watch a canary split.
# down: stops the operator, MLflow, Prometheus and the cluster (the folder and its logs stay).
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=tests/cluster/lib.sh
source "$REPO/tests/cluster/lib.sh" # now, elapsed, freeport, start_bg, stop_all

DIR=${XDG_CACHE_HOME:-$HOME/.cache}/champion/quickstart
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
EXAMPLE=examples/modeldeployment-replicas.yaml
REGISTRY_EXAMPLE=examples/modeldeployment-registry-alias.yaml
DEMO_NS=demo
CRDS=(crd/modeldeployments.champion.ml crd/experiments.champion.ml crd/retrainpolicies.champion.ml)

log() { printf '[quickstart %6ss] %s\n' "$(elapsed "$T0")" "$*" >&2; }

stop_everything() {
  local rc=0
  if [[ -f $DIR/champion.pids ]]; then
    stop_all "$DIR/champion.pids" 10 || rc=1
    echo "operator in $DIR stopped" >&2
  fi
  if [[ -f $DIR/mlflow.pids ]]; then
    tests/cluster/mlflow.sh stop "$DIR" >&2 || rc=1
  fi
  if [[ -f $DIR/pids || -f $DIR/prometheus.pids || -d $DIR/node ]]; then
    tests/cluster/down.sh "$DIR" >&2 || rc=1
  fi
  return "$rc"
}

T0=$(now)
REAL_NODE=0
ARGS=()
for a in "$@"; do
  if [[ $a == --real-node ]]; then REAL_NODE=1; else ARGS+=("$a"); fi
done
((REAL_NODE == 1)) && EXAMPLE=examples/modeldeployment-real-node.yaml
case ${ARGS[0]:-up} in
  down)
    stop_everything
    echo "quickstart stopped (logs kept in $DIR)"
    exit 0
    ;;
  up) ;;
  *)
    echo "usage: hack/quickstart.sh [up|down] [--real-node]" >&2
    exit 2
    ;;
esac

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [[ -f $DIR/champion.pids || -f $DIR/pids || -f $DIR/prometheus.pids || -f $DIR/node.pids || -f $DIR/mlflow.pids ]]; then
  log "stopping the earlier quickstart in $DIR"
  stop_everything
fi

UP_OK=0
on_exit() {
  local rc=$?
  ((UP_OK == 1)) && return 0
  echo "hack/quickstart.sh: FAILED (exit $rc)" >&2
  if [[ -s $DIR/champion.log ]]; then
    echo "----- tail of $DIR/champion.log -----" >&2
    tail -n 30 "$DIR/champion.log" >&2
  fi
  echo "stopping what was started" >&2
  stop_everything || true
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

log "building the Kubernetes binaries (cached after the first time)"
BIN=$(tests/cluster/build-bins.sh | tail -1)
export BIN
log "cargo build --bins"
cargo build --bins
CHAMPION=$TARGET/debug/champion
[[ -x $CHAMPION && -x $TARGET/debug/kubectl-champion ]] || { echo "no binaries in $TARGET/debug" >&2; exit 1; }

log "starting the cluster"
# No CRDs from up.sh: the CRDs come with `kubectl apply -k config/`, as in a real install.
REPO_CRDS_DIR="" tests/cluster/up.sh "$DIR"
if ((REAL_NODE == 1)); then
  log "starting the real node"
  tests/cluster/node-up.sh "$DIR"
fi
log "starting Prometheus"
tests/cluster/prometheus.sh start "$DIR"
# shellcheck disable=SC1091
source "$DIR/env"
# shellcheck disable=SC1091
source "$DIR/prometheus.env"
log "starting MLflow and registering the demo model"
tests/cluster/mlflow.sh start "$DIR"
# shellcheck disable=SC1091
source "$DIR/mlflow.env"
read -r DEMO_V1 DEMO_V2 < <(hack/demo-registry.sh "$MLFLOW_TRACKING_URI" credit-scorer)
log "registered model credit-scorer: versions $DEMO_V1 and $DEMO_V2, alias champion on $DEMO_V1"
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }

log "kubectl apply -k config/"
kc apply -k config/ >&2
kc wait --for=condition=Established --timeout=60s "${CRDS[@]}" >/dev/null
tests/cluster/sa-kubeconfig.sh "$DIR" champion-system champion "$DIR/champion.kubeconfig" >/dev/null

log "starting the operator as ServiceAccount champion-system/champion"
cat >"$DIR/champion.yaml" <<EOF
# written by hack/quickstart.sh: the local Prometheus is the provider "default"; all namespaces are watched
prometheus:
  default: "$PROMETHEUS_URL"
# the local MLflow; aliases are read every 5 s here (30 s by default)
mlflow:
  trackingUri: "$MLFLOW_TRACKING_URI"
  pollInterval: 5s
EOF
PORT=$(freeport)
: >"$DIR/champion.pids"
start_bg "$DIR/champion.pids" "$DIR/champion.log" champion \
  env KUBECONFIG="$DIR/champion.kubeconfig" RUST_LOG="${RUST_LOG:-info,champion=debug}" NO_COLOR=1 \
  "$CHAMPION" run --config "$DIR/champion.yaml" --listen "127.0.0.1:$PORT"
for ((i = 0; ; i++)); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  if ! any_alive "$DIR/champion.pids"; then echo "the operator exited" >&2; exit 1; fi
  ((i < 300)) || { echo "the operator was not ready within 30 s" >&2; exit 1; }
  sleep 0.1
done

log "applying $EXAMPLE in namespace $DEMO_NS"
kc create namespace "$DEMO_NS" >/dev/null
OBJ=$(kc apply -n "$DEMO_NS" -f "$EXAMPLE" -o name)
NAME=${OBJ#*/}
for ((i = 0; ; i++)); do
  out=$(kc get -n "$DEMO_NS" "$OBJ" -o jsonpath='{.metadata.generation} {.status.observedGeneration}' || true)
  read -r gen observed <<<"$out" || true
  [[ -n ${observed:-} && $observed == "$gen" ]] && break
  ((i < 300)) || { echo "no status on $OBJ within 60 s" >&2; exit 1; }
  sleep 0.2
done
log "applying $REGISTRY_EXAMPLE in namespace $DEMO_NS (follows alias champion of credit-scorer)"
REG_OBJ=$(kc apply -n "$DEMO_NS" -f "$REGISTRY_EXAMPLE" -o name)
REG_NAME=${REG_OBJ#*/}
for ((i = 0; ; i++)); do
  [[ $(kc get -n "$DEMO_NS" "$REG_OBJ" -o jsonpath='{.status.phase}') == Healthy ]] && break
  ((i < 300)) || { echo "$REG_OBJ not Healthy within 60 s" >&2; kc get -n "$DEMO_NS" "$REG_OBJ" -o yaml >&2; exit 1; }
  sleep 0.2
done
if ((REAL_NODE == 1)); then
  for ((i = 0; ; i++)); do
    [[ $(kc get -n "$DEMO_NS" "$OBJ" -o jsonpath='{.status.phase}') == Healthy ]] && break
    ((i < 600)) || { echo "$OBJ not Healthy within 120 s" >&2; kc get -n "$DEMO_NS" pods -o wide >&2; exit 1; }
    sleep 0.2
  done
  SVC_IP=$(kc get -n "$DEMO_NS" service "$NAME" -o jsonpath='{.spec.clusterIP}')
  SVC_PORT=$(kc get -n "$DEMO_NS" service "$NAME" -o jsonpath='{.spec.ports[0].port}')
  PREDICT="curl -s -XPOST http://$SVC_IP:$SVC_PORT/predict -d '{\"features\": [1, 2, 3]}'"
  log "first answer: $(eval "$PREDICT")"
fi
kc get -n "$DEMO_NS" "$OBJ" "$REG_OBJ" >&2
UP_OK=1
log "ready"

cat <<EOF

Champion is running on a local cluster ($(if ((REAL_NODE == 1)); then
  echo "a real node runs $NAME's pods; kwok fake nodes run the rest"
else echo "kwok fake nodes: pods are marked Running, nothing really runs"; fi)).

  cluster, Prometheus and logs:  $DIR
  operator log:                  $DIR/champion.log
  operator metrics:              http://127.0.0.1:$PORT/metrics
  Prometheus:                    $PROMETHEUS_URL
  MLflow (UI and registry):      $MLFLOW_TRACKING_URI

Try next:

  # the cluster's admin kubeconfig; the cluster's own kubectl, and kubectl-champion as a kubectl plugin
  export KUBECONFIG=$KUBECONFIG
  export PATH=$CLUSTER_BIN:$TARGET/debug:\$PATH

  # the ModelDeployment's columns as they change (Ctrl-C to stop watching)
  kubectl get md -n $DEMO_NS -w
  # a readable view: phase, versions, traffic, steps, conditions
  kubectl champion status $NAME -n $DEMO_NS
  # every Champion object; then the other examples
  kubectl get champion -A
  kubectl apply -n $DEMO_NS -f examples/

The registry: $REG_NAME follows alias champion of the registered model credit-scorer in MLflow.

  kubectl champion status $REG_NAME -n $DEMO_NS             # Registry: alias champion → version $DEMO_V1
  kubectl champion promote-version $REG_NAME $DEMO_V2 -n $DEMO_NS # moves the alias (the operator's call); a rollout follows
  kubectl champion rollback $REG_NAME -n $DEMO_NS           # back to version $DEMO_V1; the registry tags $DEMO_V2 rolled-back
  kubectl champion history $REG_NAME -n $DEMO_NS --tracking-uri $MLFLOW_TRACKING_URI
  # the alias the operator keeps on what serves, and the tags it writes:
  curl -s '$MLFLOW_TRACKING_URI/api/2.0/mlflow/registered-models/alias?name=credit-scorer&alias=$REG_NAME-serving'

$(if ((REAL_NODE == 1)); then cat <<EOT
The model server really runs on the real node (kubectl get pods -n $DEMO_NS -o wide).
Ask it, through its Service (kube-proxy routes the ClusterIP from this machine):

  $PREDICT

Ship a new version and watch the canary split (replicas router: 1 pod of each at setWeight 50):

  kubectl patch md $NAME -n $DEMO_NS --type=merge -p '{"spec":{"model":{"version":"1.1.0","uri":"s3://models/$NAME/1.1.0"}}}'
  for i in {1..20}; do $PREDICT; echo; done | grep -o '"version":"[^"]*"' | sort | uniq -c
  kubectl champion promote $NAME -n $DEMO_NS      # or ship one with ERROR_RATE "0.5" in the template: rolled back

  # what Prometheus scraped from the pods (pod labels become series labels)
  curl -s $PROMETHEUS_URL/api/v1/query --data-urlencode 'query=sum by (champion_ml_revision, code) (http_requests_total{namespace="$DEMO_NS"})'
EOT
fi)

Stop everything:

  hack/quickstart.sh down
EOF
