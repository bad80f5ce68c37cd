#!/usr/bin/env bash
# up.sh DIR: start a local Kubernetes test cluster on loopback from the pinned binaries (build-bins.sh):
# etcd, kube-apiserver (TLS, RBAC+Node, service-account tokens), kube-controller-manager, kube-scheduler
# and kwok with fake node(s) whose pods become Running/Ready (Job pods: Succeeded). Installs the Gateway
# API standard CRDs, the Istio networking CRDs and every file in the repo's crds/ folder.
# Writes DIR/kubeconfig (admin, system:masters), DIR/env, DIR/pids, DIR/logs/*.log. Stop with down.sh DIR.
# Env: BIN (binary dir; default: output of build-bins.sh), NODES (fake nodes, default 1),
#      UP_TIMEOUT (seconds per wait step, default 60), REPO_CRDS_DIR (default: the repo's crds/;
#      empty: install no project CRDs).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

DIR=${1:?usage: up.sh DIR}
NODES=${NODES:-1}
UP_TIMEOUT=${UP_TIMEOUT:-60}
REPO_CRDS_DIR=${REPO_CRDS_DIR-$REPO/crds} # set to "" to skip the repo's CRDs
T0=$(now)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDS=$DIR/pids

log() { printf '[up %6ss] %s\n' "$(elapsed "$T0")" "$*" >&2; }

if [[ -f $PIDS ]]; then
  while read -r name pid; do
    if [[ -n ${pid:-} ]] && group_alive "$pid"; then
      echo "up.sh: $name (pid $pid) from an earlier up.sh is still running in $DIR; run down.sh $DIR first" >&2
      exit 1
    fi
  done <"$PIDS"
  rm -f "$PIDS"
fi

BIN=${BIN:-$("$HERE/build-bins.sh" | tail -1)}
CRD_CACHE=$(cd "$BIN/.." && pwd)/crds
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
  [[ -x $BIN/$b ]] || { echo "up.sh: $BIN/$b missing" >&2; exit 1; }
done
KUBECTL=$BIN/kubectl

# Fresh state every time (etcd data, certificates, logs).
rm -rf "$DIR/etcd" "$DIR/pki" "$DIR/logs" "$DIR/kubeconfigs" "$DIR/kcm" "$DIR/kwok" "$DIR/kubeconfig" "$DIR/env"
mkdir -p "$DIR/logs" "$DIR/kubeconfigs" "$DIR/kcm" "$DIR/kwok"
: >"$PIDS"

# --- failure handling: stop everything started so far, show the relevant log ------------------------
STEP="starting"
CURRENT=""  # component whose log explains a failure of the current step
UP_OK=0
on_exit() {
  local rc=$? dead
  [[ $UP_OK == 1 ]] && return 0
  echo "up.sh: FAILED (exit $rc) during: $STEP" >&2
  dead=$(first_dead "$PIDS" || true)
  local shown=" "
  ((rc == 130 || rc == 143)) && shown=" $dead $CURRENT " # interrupted: no log tails
  for c in $dead $CURRENT; do
    [[ $shown == *" $c "* ]] && continue
    shown+="$c "
    if [[ -f $DIR/logs/$c.log ]]; then
      echo "----- tail of $DIR/logs/$c.log -----" >&2
      tail -n 40 "$DIR/logs/$c.log" >&2
    fi
  done
  echo "up.sh: stopping everything it started" >&2
  if stop_all "$PIDS" 5; then echo "up.sh: all stopped" >&2; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP


# --- etcd first (needs no certificates; starts while the PKI is generated) ----------------------
ETCD_PORT=$(freeport)
ETCD_PEER_PORT=$(freeport)
STEP="starting etcd on 127.0.0.1:$ETCD_PORT"
CURRENT=etcd
log "$STEP"
start_bg "$PIDS" "$DIR/logs/etcd.log" etcd "$BIN/etcd" --name=champion-test --data-dir="$DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="champion-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes=2147483648 --log-level=warn

# --- PKI, kubeconfigs, ports -------------------------------------------------------------------------
STEP="generating certificates"
"$HERE/gen-pki.sh" "$DIR/pki"
P=$DIR/pki

API_PORT=$(freeport)
KCM_PORT=$(freeport)
SCHED_PORT=$(freeport)
API_URL=https://127.0.0.1:$API_PORT

b64() { base64 -w0 "$1"; }
write_kubeconfig() { # OUT USER CERT KEY
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: champion-test
  cluster:
    server: $API_URL
    certificate-authority-data: $(b64 "$P/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$3")
    client-key-data: $(b64 "$4")
contexts:
- name: champion-test
  context:
    cluster: champion-test
    user: $2
current-context: champion-test
EOF
  chmod 0600 "$1"
}
write_kubeconfig "$DIR/kubeconfig" champion-admin "$P/admin.crt" "$P/admin.key"
for c in kube-controller-manager kube-scheduler kwok; do
  write_kubeconfig "$DIR/kubeconfigs/$c.kubeconfig" "$c" "$P/$c.crt" "$P/$c.key"
done
K=$DIR/kubeconfig
kc() { "$KUBECTL" --kubeconfig "$K" "$@"; }

STEP="waiting for etcd on 127.0.0.1:$ETCD_PORT"
CURRENT=etcd
wait_until "$UP_TIMEOUT" curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ----------------------------------------------------------------------------------
STEP="starting kube-apiserver on $API_URL"
CURRENT=kube-apiserver
log "$STEP"
start_bg "$PIDS" "$DIR/logs/kube-apiserver.log" kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --cert-dir="$DIR/pki" \
  --client-ca-file="$P/ca.crt" \
  --requestheader-client-ca-file="$P/ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
  --profiling=false --v=1
wait_until "$UP_TIMEOUT" curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "$API_URL/readyz"
log "kube-apiserver ready"

# --- controller-manager, scheduler, kwok ---------------------------------------------------------------
STEP="starting kube-controller-manager, kube-scheduler, kwok"
log "$STEP"
KC_KCM=$DIR/kubeconfigs/kube-controller-manager.kubeconfig
start_bg "$PIDS" "$DIR/logs/kube-controller-manager.log" kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$KC_KCM" --authentication-kubeconfig="$KC_KCM" --authorization-kubeconfig="$KC_KCM" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$DIR/kcm" --leader-elect=false \
  --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --profiling=false --v=1
KC_SCHED=$DIR/kubeconfigs/kube-scheduler.kubeconfig
start_bg "$PIDS" "$DIR/logs/kube-scheduler.log" kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$KC_SCHED" --authentication-kubeconfig="$KC_SCHED" --authorization-kubeconfig="$KC_SCHED" \
  --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false --profiling=false --v=1
# kwok v0.8 has no built-in stages: --config gives it ours. HOME is moved so that a ~/.kwok/kwok.yaml
# of the user cannot leak in; no --server-address/--node-port, so kwok opens no port.
start_bg "$PIDS" "$DIR/logs/kwok.log" kwok env HOME="$DIR/kwok" "$BIN/kwok" \
  --kubeconfig="$DIR/kubeconfigs/kwok.kubeconfig" --config="$HERE/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --manage-nodes-with-label-selector= --manage-single-node= \
  --cidr=10.244.0.0/16 --node-ip=10.240.0.10 --node-lease-duration-seconds=40

STEP="creating $NODES fake node(s)"
CURRENT=kube-apiserver
for ((i = 0; i < NODES; i++)); do
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  addresses:
  - {type: InternalIP, address: 10.240.0.$((10 + i))}
  - {type: Hostname, address: kwok-node-$i}
  capacity: {cpu: "32", memory: 256Gi, pods: "250"}
  allocatable: {cpu: "32", memory: 256Gi, pods: "250"}
EOF
done | kc apply -f - >/dev/null

# --- CRDs, applied while the controllers start up ----------------------------------------------
CURRENT="" # kubectl's own error message is the relevant output for these steps
CRD_FILES=("$CRD_CACHE/gateway-api.yaml" "$CRD_CACHE/istio.yaml")
if [[ -n $REPO_CRDS_DIR && -d $REPO_CRDS_DIR ]]; then
  while IFS= read -r -d '' f; do CRD_FILES+=("$f"); done < <(
    find "$REPO_CRDS_DIR" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -print0 | sort -z)
fi
log "applying ${#CRD_FILES[@]} CRD files"
CRD_NAMES=()
for f in "${CRD_FILES[@]}"; do
  STEP="applying $f"
  # server-side apply: the Gateway API CRDs are too large for the last-applied annotation
  out=$(kc apply --server-side --force-conflicts -o name -f "$f")
  while IFS= read -r name; do
    [[ $name == customresourcedefinition.apiextensions.k8s.io/* ]] && CRD_NAMES+=("$name")
  done <<<"$out"
done

STEP="waiting for $NODES node(s) Ready (kwok)"
CURRENT=kwok
log "$STEP"
nodes_ready() {
  local n
  n=$(kc get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')
  [[ $n -ge $NODES ]]
}
wait_until "$UP_TIMEOUT" nodes_ready
log "node(s) Ready"

STEP="waiting for kube-controller-manager and kube-scheduler healthz"
CURRENT=kube-controller-manager
wait_until "$UP_TIMEOUT" curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
CURRENT=kube-scheduler
wait_until "$UP_TIMEOUT" curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"
log "kube-controller-manager and kube-scheduler healthy"

STEP="waiting for the default ServiceAccount in namespace default"
CURRENT=kube-controller-manager
wait_until "$UP_TIMEOUT" kc -n default get serviceaccount default
log "default ServiceAccount exists"

# --- CRDs: wait until Established ---------------------------------------------------------------
STEP="waiting for ${#CRD_NAMES[@]} CRDs to be Established"
log "$STEP"
crds_established() { # one LIST instead of a GET per name (kubectl get NAME... is slow)
  local established name
  established=" $(kc get crd \
    -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status} {end}')"
  for name in "${CRD_NAMES[@]}"; do
    [[ $established == *" ${name#*/}=True "* ]] || return 1
  done
}
if ((${#CRD_NAMES[@]} > 0)) && ! wait_until "$UP_TIMEOUT" crds_established; then
  kc get crd \
    -o jsonpath='{range .items[*]}{.metadata.name}: {range .status.conditions[*]}{.type}={.status} {.message}; {end}{"\n"}{end}' >&2 || true
  exit 1
fi

# --- done --------------------------------------------------------------------------------------------
{
  echo "# written by tests/cluster/up.sh; source it"
  printf 'export CLUSTER_DIR=%q\n' "$DIR"
  printf 'export KUBECONFIG=%q\n' "$K"
  printf 'export KUBE_APISERVER_URL=%q\n' "$API_URL"
  printf 'export KUBE_CA_FILE=%q\n' "$P/ca.crt"
  printf 'export CLUSTER_BIN=%q\n' "$BIN"
  printf 'export KUBECTL=%q\n' "$KUBECTL"
  printf 'export ETCD_URL=%q\n' "http://127.0.0.1:$ETCD_PORT"
} >"$DIR/env"
UP_OK=1
log "cluster up: $API_URL, $NODES node(s), ${#CRD_NAMES[@]} CRDs; KUBECONFIG=$K"
echo "cluster start-up took $(elapsed "$T0") s (source $DIR/env; stop with tests/cluster/down.sh $DIR)"
