# shellcheck shell=bash
# node-lib.sh: clean-up of the real node of node-up.sh (source it after lib.sh; it sets no shell options).
#   node_record_baseline DIR  before node-up.sh changes anything: the iptables rules and which
#                             machine-wide folders exist, so clean-up removes only what the node added
#   node_down DIR [GRACE]     stops kubelet, kube-proxy, every container and containerd; removes the
#                             node's mounts, network namespaces, cgroups, iptables rules, bridge, routes
#                             and the files kubelet/containerd/CNI write outside DIR. Safe to run twice.
#   node_leftovers DIR        prints whatever of the above is still there; returns 1 if anything is

# What a rule listing must keep unchanged: rules and user chains, prefixed by table (built-in chains and
# counters vary with what merely listed a table).
_node_rules() { # iptables-save|ip6tables-save
  "$1" 2>/dev/null | awk '
    /^\*/ { t = substr($0, 2) }
    /^-A / { print t " " $0 }
    /^:/ && $1 !~ /^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING)$/ { print t " " $1 }' | sort
}

node_record_baseline() {
  local n=$1/node p
  mkdir -p "$n/baseline"
  _node_rules iptables-save >"$n/baseline/iptables"
  _node_rules ip6tables-save >"$n/baseline/ip6tables"
  : >"$n/baseline/created"
  for p in /run/containerd /var/log/containers /var/lib/cni /var/lib/kubelet; do
    [[ -e $p ]] || echo "$p" >>"$n/baseline/created"
  done
}

# _node_container_pids: processes in the node's pod cgroups.
_node_container_pids() {
  local f
  for f in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/memory/kubepods /sys/fs/cgroup/unified/kubepods \
    /sys/fs/cgroup/kubepods; do
    [[ -d $f ]] || continue
    find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
    return 0
  done
}

# _node_mounts N: mount points at or under N, deepest first.
_node_mounts() {
  awk -v n="$1" '$5 == n || index($5, n "/") == 1 { print length($5) " " $5 }' /proc/self/mountinfo |
    sort -rn | cut -d' ' -f2- | uniq
}

node_down() {
  local dir=$1 grace=${2:-10} n=$1/node rc=0 name pid sock m c i pids
  [[ -d $n || -f $dir/node.pids ]] || return 0
  sock=$n/containerd/containerd.sock
  # 1. kubelet and kube-proxy first, so nothing restarts the containers
  if [[ -f $dir/node.pids ]]; then
    while read -r name pid; do
      [[ $name == kubelet || $name == kube-proxy ]] && { stop_group "$name" "$pid" "$grace" || rc=1; }
    done <"$dir/node.pids"
  fi
  # 2. every container and pod sandbox, through containerd while it runs
  if [[ -S $sock ]] && ctr --address "$sock" version >/dev/null 2>&1; then
    local ctrk=(ctr --address "$sock" -n k8s.io)
    for c in $("${ctrk[@]}" tasks ls -q 2>/dev/null); do "${ctrk[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    for ((i = 0; i < 50; i++)); do
      "${ctrk[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED" { found = 1 } END { exit !found }' || break
      sleep 0.1
    done
    for c in $("${ctrk[@]}" tasks ls -q 2>/dev/null); do "${ctrk[@]}" tasks delete -f "$c" >/dev/null 2>&1 || true; done
    for c in $("${ctrk[@]}" containers ls -q 2>/dev/null); do "${ctrk[@]}" containers rm "$c" >/dev/null 2>&1 || true; done
  fi
  # 3. containerd, then anything of this node that outlived it: shims (their command line names the
  #    socket) and container processes (in the node's pod cgroups), by PID
  if [[ -f $dir/node.pids ]]; then
    while read -r name pid; do
      [[ $name == containerd ]] && { stop_group "$name" "$pid" "$grace" || rc=1; }
    done <"$dir/node.pids"
  fi
  pids="$(_node_container_pids) $(pgrep -f -- "$n/" || true)"
  # shellcheck disable=SC2086 # one argument per pid
  [[ -n ${pids// /} ]] && kill -KILL $pids 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    [[ -z $(_node_container_pids) && -z $(pgrep -f -- "$n/" || true) ]] && break
    sleep 0.1
  done
  # 4. mounts (overlay rootfs, tmpfs volumes, network namespaces, kubelet's bind of its root dir), deepest
  #    first; a few rounds for stacked mounts
  for ((i = 0; i < 4; i++)); do
    [[ -z $(_node_mounts "$n") ]] && break
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done < <(_node_mounts "$n")
  done
  # 5. pod cgroups
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  # 6. iptables: kube-proxy's own clean-up, then any KUBE-* chain kubelet or kube-proxy left
  if [[ -f $dir/env ]]; then
    local bin
    bin=$(sed -n 's/^export CLUSTER_BIN=//p' "$dir/env")
    [[ -x $bin/kube-proxy ]] && "$bin/kube-proxy" --cleanup >"$n/kube-proxy-cleanup.log" 2>&1
  fi
  local ipt t chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle raw; do
      for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\).*/\1/p'); do
        # drop the rules that jump to it first, then the chain
        "$ipt-save" -t "$t" | grep -- "-j $chain\b" | sed 's/^-A/-D/' | while read -r rule; do
          # shellcheck disable=SC2086 # the rule's words
          "$ipt" -t "$t" $rule 2>/dev/null || true
        done
      done
      for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\).*/\1/p'); do
        "$ipt" -t "$t" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\).*/\1/p'); do
        "$ipt" -t "$t" -X "$chain" 2>/dev/null || true
      done
    done
  done
  # 7. network: the bridge (its service route goes with it) and the blackhole routes; connection tracking
  ip link show "$REAL_NODE_BRIDGE" >/dev/null 2>&1 && { ip link del "$REAL_NODE_BRIDGE" || rc=1; }
  for c in "${KWOK_CIDRS[@]}"; do
    ip route show type blackhole "$c" 2>/dev/null | grep -q . && { ip route del blackhole "$c" || rc=1; }
  done
  if command -v conntrack >/dev/null; then
    for c in "$REAL_NODE_POD_CIDR" "$SERVICE_CIDR"; do
      conntrack -D -s "$c" >/dev/null 2>&1 || true
      conntrack -D -d "$c" >/dev/null 2>&1 || true
    done
  fi
  # 8. what kubelet, containerd and libcni write outside DIR
  rm -f /var/lib/cni/results/"$REAL_NODE_CNI_NETWORK"-*
  if [[ -d /var/log/containers ]]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$n/*" -delete 2>/dev/null || true
  fi
  if [[ -f $n/baseline/created ]]; then
    while read -r c; do [[ -n $c ]] && rm -rf "$c"; done <"$n/baseline/created"
  fi
  ((rc == 0)) && rm -f "$dir/node.pids" "$dir/node.env"
  return "$rc"
}

node_leftovers() {
  local dir=$1 n=$1/node found=0 x c
  say() { echo "left over from the real node: $*"; found=1; }
  [[ -d $n ]] || return 0
  x=$(pgrep -af -- "$n/" || true)
  [[ -n $x ]] && say "processes: $x"
  x=$(_node_container_pids | tr '\n' ' ')
  [[ -n ${x// /} ]] && say "container processes: $x"
  x=$(_node_mounts "$n" | tr '\n' ' ')
  [[ -n $x ]] && say "mounts: $x"
  x=$(awk '$9 == "nsfs" { print $5 }' /proc/self/mountinfo | grep -F "$n" || true)
  [[ -n $x ]] && say "network namespace mounts: $x"
  ip link show "$REAL_NODE_BRIDGE" >/dev/null 2>&1 && say "bridge $REAL_NODE_BRIDGE"
  x=$(ip -o link show type veth 2>/dev/null | grep -F "master $REAL_NODE_BRIDGE" || true)
  [[ -n $x ]] && say "veth devices: $x"
  x=$(ip route show "$SERVICE_CIDR" 2>/dev/null; for c in "${KWOK_CIDRS[@]}"; do ip route show type blackhole "$c"; done)
  [[ -n $x ]] && say "routes: $x"
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $c ]] && say "cgroup $c"
  done
  if [[ -f $n/baseline/iptables ]]; then
    x=$(comm -13 "$n/baseline/iptables" <(_node_rules iptables-save))
    [[ -n $x ]] && say "iptables rules: $x"
    x=$(comm -13 "$n/baseline/ip6tables" <(_node_rules ip6tables-save))
    [[ -n $x ]] && say "ip6tables rules: $x"
  fi
  x=$(ls /var/lib/cni/results/"$REAL_NODE_CNI_NETWORK"-* 2>/dev/null || true)
  [[ -n $x ]] && say "CNI result cache: $x"
  x=$(find /var/log/containers -maxdepth 1 -type l -lname "$n/*" 2>/dev/null || true)
  [[ -n $x ]] && say "log links: $x"
  if [[ -f $n/baseline/created ]]; then
    while read -r c; do [[ -n $c && -e $c ]] && say "$c (created by the node)"; done <"$n/baseline/created"
  fi
  return "$found"
}
