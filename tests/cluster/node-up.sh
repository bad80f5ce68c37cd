#!/usr/bin/env bash
# node-up.sh DIR: add one REAL node to the cluster that up.sh DIR started, beside the kwok fake nodes:
# kubelet and kube-proxy (iptables mode) v1.36.3 from the pinned binaries (build-bins.sh), Debian's
# containerd 1.6 + runc, the CNI bridge/host-local/loopback plugins on a bridge of this machine. Pods on it
# really run, from images the project builds itself (tests/images/build-images.sh, imported with
# `ctr images import`; nothing is ever pulled). See tests/cluster/README.md and reference/realnode.md.
#
# The node is named after its IP ($REAL_NODE_NAME in lib.sh), labelled champion.ml/real-node=true and
# tainted champion.ml/real-node=true:NoSchedule: only pods that select it and tolerate the taint run
# there; kwok keeps serving everything else. Pod and Service traffic stays on this machine: the node's
# address is on the pod bridge, kubelet listens there only, the Service CIDR is routed onto the bridge and
# the kwok nodes' fake addresses are blackholed while the node runs.
#
# Needs root and a cluster started by up.sh DIR. Installs Debian's containerd, runc,
# containernetworking-plugins, iptables and conntrack with apt-get when missing. Writes DIR/node.env
# (REAL_NODE_NAME, REAL_NODE_LABEL, REAL_NODE_IMAGE_SERVER, REAL_NODE_IMAGE_TRAINER, ...), DIR/node.pids
# and everything else under DIR/node/ (logs in DIR/node/logs/). Prints the start-up time.
# If the node cannot start, writes the reason to DIR/node.unavailable, undoes what it did and exits 1.
# Stop and clean up with down.sh DIR (node-lib.sh: node_down), which also checks that nothing is left.
# Env: NODE_TIMEOUT (seconds per wait step, default 60).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=node-lib.sh
source "$HERE/node-lib.sh"

DIR=${1:?usage: node-up.sh DIR}
DIR=$(cd "$DIR" && pwd)
NODE_TIMEOUT=${NODE_TIMEOUT:-60}
N=$DIR/node
PIDS=$DIR/node.pids
T0=$(now)
log() { printf '[node-up %6ss] %s\n' "$(elapsed "$T0")" "$*" >&2; }
rm -f "$DIR/node.env" "$DIR/node.unavailable"

# unavailable REASON: this machine cannot run the node; nothing was started yet.
unavailable() {
  echo "$*" >"$DIR/node.unavailable"
  echo "node-up.sh: the real node cannot start here: $*" >&2
  exit 1
}

[[ -f $DIR/env ]] || { echo "node-up.sh: no cluster in $DIR (run up.sh $DIR first)" >&2; exit 1; }
# shellcheck disable=SC1091
source "$DIR/env"
[[ $(id -u) == 0 ]] || unavailable "not root (containerd, runc, mounts, cgroups and iptables need root)"
[[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] || unavailable "no cgroup v1 memory or cgroup v2"
if [[ -f $PIDS ]] && any_alive "$PIDS"; then
  echo "node-up.sh: the node of $DIR is already running (down.sh $DIR first)" >&2
  exit 1
fi
if ip link show "$REAL_NODE_BRIDGE" >/dev/null 2>&1; then
  unavailable "bridge $REAL_NODE_BRIDGE exists: another real node runs on this machine (one per machine; stop it with down.sh of its folder)"
fi
for b in kubelet kube-proxy; do
  [[ -x $CLUSTER_BIN/$b ]] || { echo "node-up.sh: $CLUSTER_BIN/$b missing (build-bins.sh builds it)" >&2; exit 1; }
done

# --- Debian packages --------------------------------------------------------------------------------
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v iptables-save >/dev/null || missing+=(iptables)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v ip >/dev/null || missing+=(iproute2)
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]} (apt-get)"
  mkdir -p "$N"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"; } >"$N/apt.log" 2>&1; then
    tail -n 20 "$N/apt.log" >&2
    unavailable "apt-get install ${missing[*]} failed (see $N/apt.log)"
  fi
fi

# --- images (built once, cached) --------------------------------------------------------------------
IMAGES=$("$REPO/tests/images/build-images.sh" | tail -1)

# --- from here on, a failure undoes everything ------------------------------------------------------
STEP=starting
CURRENT=""
UP_OK=0
on_exit() {
  local rc=$?
  ((UP_OK == 1)) && return 0
  echo "node-up.sh: FAILED (exit $rc) during: $STEP" >&2
  local c
  for c in $(first_dead "$PIDS" 2>/dev/null || true) $CURRENT; do
    if ((rc != 130 && rc != 143)) && [[ -f $N/logs/$c.log ]]; then
      echo "----- tail of $N/logs/$c.log -----" >&2
      tail -n 30 "$N/logs/$c.log" >&2
    fi
  done
  echo "failed during: $STEP (exit $rc; logs in $N/logs)" >"$DIR/node.unavailable"
  echo "node-up.sh: undoing what it did" >&2
  node_down "$DIR" 5 >&2 || true
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP


rm -rf "$N/containerd" "$N/kubelet" "$N/cni" "$N/logs" "$N/pki" "$N/config"
mkdir -p "$N/logs" "$N/pki" "$N/config" "$N/cni/net.d" "$N/cni/ipam" "$N/kubelet"
: >"$PIDS"
node_record_baseline "$DIR"

# --- network: the pod bridge with the node's address; routes that keep traffic here ------------------
STEP="creating bridge $REAL_NODE_BRIDGE ($REAL_NODE_IP on $REAL_NODE_POD_CIDR)"
log "$STEP"
ip link add "$REAL_NODE_BRIDGE" type bridge
ip addr add "$REAL_NODE_IP/${REAL_NODE_POD_CIDR#*/}" dev "$REAL_NODE_BRIDGE"
ip link set "$REAL_NODE_BRIDGE" up
# Connections from this machine to a ClusterIP leave through the bridge (kube-proxy DNATs them to a pod);
# pods reach ClusterIPs through the bridge address (the ipam "routes" below), as the built-in router does.
ip route add "$SERVICE_CIDR" dev "$REAL_NODE_BRIDGE" src "$REAL_NODE_IP"
for c in "${KWOK_CIDRS[@]}"; do ip route add blackhole "$c"; done
cat >"$N/cni/net.d/10-champion.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$REAL_NODE_CNI_NETWORK",
  "plugins": [
    {"type": "bridge", "bridge": "$REAL_NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$N/cni/ipam",
              "ranges": [[{"subnet": "$REAL_NODE_POD_CIDR", "gateway": "$REAL_NODE_IP"}]],
              "routes": [{"dst": "$SERVICE_CIDR"}]}},
    {"type": "loopback"}
  ]
}
EOF

# --- containerd ----------------------------------------------------------------------------------------
STEP="starting containerd"
CURRENT=containerd
log "$STEP"
SOCK=$N/containerd/containerd.sock
mkdir -p "$N/containerd/root" "$N/containerd/state" "$N/containerd/opt" "$N/containerd/runc"
cat >"$N/config/containerd.toml" <<EOF
# written by tests/cluster/node-up.sh: every path under $N, except what containerd 1.6 hard-codes
# (/run/containerd/{fifo,s}: node_down removes them)
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$N/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # this VM lacks CAP_SYS_RESOURCE: negative oom_score_adj values are refused (reference/realnode.md FIX 1)
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$N/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni/net.d"
EOF
start_bg "$PIDS" "$N/logs/containerd.log" containerd containerd --config "$N/config/containerd.toml"
wait_until "$NODE_TIMEOUT" ctr --address "$SOCK" version
log "containerd ready"

STEP="importing images from $IMAGES"
log "$STEP"
IMAGE_REFS=()
while read -r name ref; do
  ctr --address "$SOCK" -n k8s.io images import "$IMAGES/$name.tar" >"$N/logs/import-$name.log" 2>&1
  refs=$(ctr --address "$SOCK" -n k8s.io images ls -q) # not piped into grep -q: SIGPIPE + pipefail
  grep -qxF "$ref" <<<"$refs" || { echo "node-up.sh: $ref missing after the import" >&2; exit 1; }
  IMAGE_REFS+=("$ref")
done <"$IMAGES/images.txt"
log "imported ${IMAGE_REFS[*]}"

# --- identities: kubelet (system:node:NAME, Node authorizer) and kube-proxy (system:node-proxier) -----
STEP="signing the kubelet and kube-proxy client certificates"
P=$DIR/pki
cat >"$N/pki/client.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
sign_client() { # NAME SUBJECT
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$N/pki/$1.key" 2>/dev/null
  openssl req -new -key "$N/pki/$1.key" -subj "$2" -out "$N/pki/$1.csr"
  openssl x509 -req -in "$N/pki/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
    -CAserial "$N/pki/ca.srl" -days 30 -extfile "$N/pki/client.ext" -out "$N/pki/$1.crt" 2>/dev/null
  cat >"$N/config/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: champion-test
  cluster: {server: "$KUBE_APISERVER_URL", certificate-authority: "$P/ca.crt"}
users:
- name: "$1"
  user: {client-certificate: "$N/pki/$1.crt", client-key: "$N/pki/$1.key"}
contexts:
- name: champion-test
  context: {cluster: champion-test, user: "$1"}
current-context: champion-test
EOF
}
sign_client kubelet "/O=system:nodes/CN=system:node:$REAL_NODE_NAME"
sign_client kube-proxy "/CN=system:kube-proxy"

# --- kubelet and kube-proxy ------------------------------------------------------------------------------
STEP="starting kubelet and kube-proxy"
CURRENT=kubelet
log "$STEP"
KUBELET_HEALTHZ=$(freeport)
PROXY_HEALTHZ=$(freeport)
PROXY_METRICS=$(freeport)
mkdir -p "$N/kubelet/root" "$N/kubelet/certs" "$N/kubelet/podlogs" "$N/kubelet/volume-plugins"
cat >"$N/config/kubelet.yaml" <<EOF
# written by tests/cluster/node-up.sh
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false          # this machine uses cgroup v1; kubelet >= 1.35 refuses it otherwise
failSwapOn: false
cgroupDriver: cgroupfs       # no systemd here
containerRuntimeEndpoint: unix://$SOCK
address: $REAL_NODE_IP       # the bridge address only: the apiserver reaches it, nothing outside does
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: "$P/ca.crt"}
authorization: {mode: AlwaysAllow}
makeIPTablesUtilChains: false
resolvConf: ""
podLogsDir: $N/kubelet/podlogs
volumePluginDir: $N/kubelet/volume-plugins
# never garbage-collect the imported images (they cannot be pulled again); evict (and taint the node with
# disk-pressure) only when the disk is really full: absolute amounts, because a test machine's disk is
# often > 99 % used by build caches (seen: 1 % thresholds tainted the node during a run, no pod scheduled)
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 200Mi, imagefs.available: 200Mi, nodefs.inodesFree: 1%}
registerWithTaints:
- {key: $REAL_NODE_LABEL, value: "true", effect: NoSchedule}
shutdownGracePeriod: 0s
# syncFrequency is left at the kubelet's default (1m), as on a real cluster: the built-in router's
# configuration (a ConfigMap volume) reaches it at once only because the operator annotates its pods, which
# makes the kubelet sync them (tests/e2e/router.rs, router_each_step_reaches_the_router_while_it_lasts)
EOF
start_bg "$PIDS" "$N/logs/kubelet.log" kubelet "$CLUSTER_BIN/kubelet" \
  --config="$N/config/kubelet.yaml" --kubeconfig="$N/config/kubelet.kubeconfig" \
  --root-dir="$N/kubelet/root" --cert-dir="$N/kubelet/certs" \
  --node-ip="$REAL_NODE_IP" --hostname-override="$REAL_NODE_NAME" \
  --node-labels="$REAL_NODE_LABEL=true" --v=1
cat >"$N/config/kube-proxy.yaml" <<EOF
# written by tests/cluster/node-up.sh
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$N/config/kube-proxy.kubeconfig"}
hostnameOverride: "$REAL_NODE_NAME"
bindAddress: $REAL_NODE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ
metricsBindAddress: 127.0.0.1:$PROXY_METRICS
clusterCIDR: $REAL_NODE_POD_CIDR
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$REAL_NODE_POD_CIDR"]   # NodePorts on the bridge address only
oomScoreAdj: 0               # negative values need CAP_SYS_RESOURCE
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}   # 0: leave sysctls as they are
iptables: {minSyncPeriod: 0s, syncPeriod: 30s}
EOF
start_bg "$PIDS" "$N/logs/kube-proxy.log" kube-proxy "$CLUSTER_BIN/kube-proxy" \
  --config="$N/config/kube-proxy.yaml" --v=1

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
STEP="waiting for node $REAL_NODE_NAME to be Ready"
log "$STEP"
node_ready() {
  [[ $(kc get node "$REAL_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
wait_until "$NODE_TIMEOUT" node_ready
log "node Ready"
STEP="waiting for kube-proxy's first sync (healthz)"
CURRENT=kube-proxy
wait_until "$NODE_TIMEOUT" curl -sf "http://127.0.0.1:$PROXY_HEALTHZ/healthz"
log "kube-proxy synced"

STEP="checking the node's label and taint"
CURRENT=kubelet
taints=$(kc get node "$REAL_NODE_NAME" -o jsonpath='{range .spec.taints[*]}{.key}={.value}:{.effect} {end}')
[[ $taints == *"$REAL_NODE_LABEL=true:NoSchedule"* ]] || { echo "node-up.sh: taint missing: $taints" >&2; exit 1; }
kc get nodes -l "$REAL_NODE_LABEL=true" -o name | grep -qx "node/$REAL_NODE_NAME"

{
  echo "# written by tests/cluster/node-up.sh; source it"
  printf 'export REAL_NODE_NAME=%q\n' "$REAL_NODE_NAME"
  printf 'export REAL_NODE_LABEL=%q\n' "$REAL_NODE_LABEL"
  printf 'export REAL_NODE_POD_CIDR=%q\n' "$REAL_NODE_POD_CIDR"
  printf 'export REAL_NODE_SERVICE_CIDR=%q\n' "$SERVICE_CIDR"
  printf 'export REAL_NODE_IMAGE_SERVER=%q\n' "${IMAGE_REFS[0]}"
  printf 'export REAL_NODE_IMAGE_TRAINER=%q\n' "${IMAGE_REFS[1]}"
  printf 'export REAL_NODE_CONTAINERD=%q\n' "$SOCK"
} >"$DIR/node.env"
UP_OK=1
log "node $REAL_NODE_NAME up (label and taint $REAL_NODE_LABEL=true; images ${IMAGE_REFS[*]})"
echo "real node start-up took $(elapsed "$T0") s (source $DIR/node.env; stop with tests/cluster/down.sh $DIR)"
