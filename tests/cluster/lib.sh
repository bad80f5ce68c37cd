# shellcheck shell=bash
# lib.sh: helpers shared by up.sh, down.sh and prometheus.sh (source it; it sets no shell options).
# Process bookkeeping: every background service runs as the leader of its own session/process group
# (setsid) and is recorded as "NAME PID" in a pids file; stopping signals the whole group.

# now: wall clock seconds with microseconds (bash >= 5).
now() { printf '%s' "$EPOCHREALTIME"; }
# elapsed START: seconds since START (from now), one decimal.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# freeport: print a TCP port on 127.0.0.1 that is free right now.
freeport() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# group_alive PGID: true while any non-zombie process of that process group exists.
group_alive() {
  local stat
  for stat in $(ps -o stat= --sid "$1" 2>/dev/null) $(ps -o stat= -p "$1" 2>/dev/null); do
    [[ $stat == Z* ]] || return 0
  done
  return 1
}

# start_bg PIDFILE LOGFILE NAME CMD...: start CMD in its own session, stdin from /dev/null, output to LOGFILE.
start_bg() {
  local pidfile=$1 logfile=$2 name=$3
  shift 3
  setsid "$@" </dev/null >"$logfile" 2>&1 &
  echo "$name $!" >>"$pidfile"
}

# stop_group NAME PGID [GRACE_SECONDS]: SIGTERM the group, wait, then SIGKILL after the grace period.
stop_group() {
  local name=$1 pgid=$2 grace=${3:-10} i
  group_alive "$pgid" || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || kill -TERM "$pgid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    group_alive "$pgid" || return 0
    sleep 0.1
  done
  echo "$name (pgid $pgid) still running after ${grace}s: SIGKILL" >&2
  kill -KILL -- "-$pgid" 2>/dev/null || kill -KILL "$pgid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    group_alive "$pgid" || return 0
    sleep 0.1
  done
  echo "$name (pgid $pgid) did not exit" >&2
  return 1
}

# stop_all PIDFILE [GRACE_SECONDS]: stop every group in PIDFILE, last started first, then remove PIDFILE.
stop_all() {
  local pidfile=$1 grace=${2:-10} rc=0 name pid
  [[ -f $pidfile ]] || return 0
  while read -r name pid; do
    [[ -n ${pid:-} ]] || continue
    stop_group "$name" "$pid" "$grace" || rc=1
  done < <(tac "$pidfile")
  if [[ $rc == 0 ]]; then
    wait 2>/dev/null || true # reap our own children (no-op in a shell that did not start them)
    rm -f "$pidfile"
  fi
  return "$rc"
}

# first_dead PIDFILE: print the name of the first recorded process that is no longer running.
first_dead() {
  local pidfile=$1 name pid
  while read -r name pid; do
    [[ -n ${pid:-} ]] || continue
    group_alive "$pid" || { echo "$name"; return 0; }
  done <"$pidfile"
  return 1
}

# any_alive PIDFILE: true if a process recorded in PIDFILE is still running.
any_alive() {
  local pidfile=$1 name pid
  [[ -f $pidfile ]] || return 1
  while read -r name pid; do
    [[ -n ${pid:-} ]] && group_alive "$pid" && return 0
  done <"$pidfile"
  return 1
}

# --- the optional real node (node-up.sh; its cleanup is node_down in node-lib.sh) ---------------------
# One per machine: the bridge, routes and iptables rules are machine-wide. The node's name is its IP
# (an IP literal resolves without DNS, so the apiserver reaches the kubelet at once); the address lives
# on the pod bridge, so nothing listens on or sends to another interface.
REAL_NODE_BRIDGE=champion0
REAL_NODE_POD_CIDR=10.88.7.0/24
REAL_NODE_IP=10.88.7.1
REAL_NODE_NAME=$REAL_NODE_IP
REAL_NODE_LABEL=champion.ml/real-node    # label "true" and taint "true:NoSchedule" on the node
SERVICE_CIDR=10.0.0.0/24                 # up.sh's --service-cluster-ip-range
# Fake addresses of kwok's nodes and pods: blackholed while the real node runs, so a Service whose
# endpoints are kwok pods (kube-proxy programs them too) cannot send a packet off this machine.
KWOK_CIDRS=(10.244.0.0/16 10.240.0.0/16)
REAL_NODE_CNI_NETWORK=champion-real-node  # CNI network name (libcni caches results as /var/lib/cni/results/NAME-*)

# wait_until TIMEOUT CMD...: runs CMD (quietly) every $POLL seconds (default 0.2) until it succeeds.
# Fails early when a process listed in the file $PIDS has died (its name goes to $CURRENT), and after
# TIMEOUT seconds. Messages start with the calling script's name and say $STEP.
wait_until() {
  local timeout=$1 deadline dead who
  who=$(basename "$0")
  shift
  deadline=$(awk -v t="$EPOCHREALTIME" -v d="$timeout" 'BEGIN { printf "%d", t + d }')
  until "$@" >/dev/null 2>&1; do
    if dead=$(first_dead "$PIDS"); then
      CURRENT=$dead
      echo "$who: $dead exited" >&2
      return 1
    fi
    if ((${EPOCHREALTIME%.*} >= deadline)); then
      echo "$who: timed out after ${timeout}s: ${STEP:-}" >&2
      return 1
    fi
    sleep "${POLL:-0.2}"
  done
}
