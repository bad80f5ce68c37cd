#!/usr/bin/env bash
# down.sh DIR: stop everything that up.sh DIR (and prometheus.sh / mlflow.sh start DIR, node-up.sh DIR)
# started: each process group gets SIGTERM, then SIGKILL after a grace period (GRACE, default 10 s); waits
# until all have exited. The real node (node-up.sh) goes first: its containers, network namespaces, mounts,
# cgroups, iptables rules, bridge and routes are removed, then checked (non-zero exit if anything is left).
# Keeps DIR (logs, etcd data) for inspection. Safe to run twice.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=node-lib.sh
source "$HERE/node-lib.sh"

DIR=${1:?usage: down.sh DIR}
GRACE=${GRACE:-10}
rc=0
if [[ -d $DIR/node || -f $DIR/node.pids ]]; then
  node_down "$DIR" "$GRACE" || rc=1
  if node_leftovers "$DIR" >&2; then
    echo "real node in $DIR stopped, nothing of it left"
  else
    rc=1
  fi
fi
if [[ -f $DIR/prometheus.pids ]]; then
  stop_all "$DIR/prometheus.pids" "$GRACE" || rc=1
  rm -f "$DIR/prometheus.env"
  echo "prometheus in $DIR stopped"
fi
if [[ -f $DIR/mlflow.pids ]]; then
  stop_all "$DIR/mlflow.pids" "$GRACE" || rc=1
  rm -f "$DIR/mlflow.env"
  echo "mlflow in $DIR stopped"
fi
if [[ -f $DIR/pids ]]; then
  stop_all "$DIR/pids" "$GRACE" || rc=1
  echo "cluster in $DIR stopped"
else
  echo "no cluster running in $DIR"
fi
exit "$rc"
