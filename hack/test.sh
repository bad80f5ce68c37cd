#!/usr/bin/env bash
# hack/test.sh: run every test of Champion on this machine, from nothing to a verdict.
#
#   1. build the pinned Kubernetes binaries (tests/cluster/build-bins.sh; cached in ~/.cache/champion/k8s)
#   2. cargo build --workspace --bins (the operator, the plugin and champion-router)
#   3. cargo test --workspace --no-fail-fast   (unit, mock-API-server, examples and CRD tests; the router
#                                       crate's unit and integration tests)
#   4. build the end-to-end tests      (cargo test --features e2e --test e2e --no-run)
#   5. start a cluster                 (tests/cluster/up.sh in a fresh temporary folder)
#   6. start the real node             (tests/cluster/node-up.sh: kubelet, containerd, CNI, kube-proxy; installs
#                                       Debian's containerd, runc, CNI plugins with apt if missing). If it cannot
#                                       start, the reason is printed and its tests report themselves skipped;
#                                       with CI=true that fails the run.
#   7. start Prometheus                (tests/cluster/prometheus.sh start; built by build-bins.sh with
#                                       Kubernetes service discovery)
#   8. start MLflow                    (tests/cluster/mlflow.sh start; installs it with pip once, cached in
#                                       ~/.cache/champion/mlflow-<version>)
#   9. the end-to-end tests            (CHAMPION_E2E_DIR=<folder> cargo test --features e2e --test e2e; the
#                                       harness reads <folder>/node.env or <folder>/node.unavailable)
#  10. tear down, always               (tests/cluster/down.sh, which also checks that the real node left no
#                                       container, mount, netns, cgroup, iptables rule or bridge; then checks
#                                       that no process of the folder is left)
#
# Prints the time of each phase and in total; exits non-zero if anything failed. On failure it prints the
# tails of the cluster's logs and keeps the folder (logs, etcd data, each test's operator log under e2e/).
#
# Usage: hack/test.sh [-- E2E_ARGS...]   arguments after `--` go to the e2e test binary (a name filter,
#                                         --test-threads=1, ...)
# Env:   SKIP_UNIT=1  skip phase 3       KEEP=1  keep the temporary folder after a successful run
#        REAL_NODE=0  do not start the real node (its tests are skipped; under CI=true they fail)
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=tests/cluster/lib.sh
source "$REPO/tests/cluster/lib.sh" # now, elapsed

E2E_ARGS=()
if [[ ${1:-} == -- ]]; then
  shift
  E2E_ARGS=("$@")
elif [[ $# -gt 0 ]]; then
  echo "usage: hack/test.sh [-- E2E_ARGS...]" >&2
  exit 2
fi

T_ALL=$(now)
PHASES=() # "name|seconds|result"
PHASE=""
T_PHASE=""
DIR=""
DONE=0

say() { printf '\n==> %s\n' "$*" >&2; }

# phase NAME CMD...: run one phase and record its time.
phase() {
  PHASE=$1
  shift
  say "$PHASE"
  T_PHASE=$(now)
  "$@"
  PHASES+=("$PHASE|$(elapsed "$T_PHASE")|ok")
  PHASE=""
}

build_bins() {
  BIN=$(tests/cluster/build-bins.sh | tail -1)
  export BIN
  echo "Kubernetes binaries: $BIN" >&2
}

start_cluster() {
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/champion-test.XXXXXX")
  # No CRDs from up.sh: the e2e harness installs them with `kubectl apply -k config/`, as a user does.
  REPO_CRDS_DIR="" tests/cluster/up.sh "$DIR"
}

start_node() {
  if [[ ${REAL_NODE:-1} == 0 ]]; then
    echo "REAL_NODE=0 (hack/test.sh was asked not to start it)" >"$DIR/node.unavailable"
    echo "hack/test.sh: REAL_NODE=0: the real node is not started; its tests are skipped" >&2
    return 0
  fi
  tests/cluster/node-up.sh "$DIR" && return 0
  if [[ ${CI:-} == true ]]; then
    echo "hack/test.sh: the real node did not start, and CI=true requires it" >&2
    return 1
  fi
  echo "hack/test.sh: the real node did not start ($(cat "$DIR/node.unavailable" 2>/dev/null))," \
    "its tests will be skipped (with CI=true this fails the run)" >&2
}

e2e() {
  CHAMPION_E2E_DIR=$DIR cargo test --features e2e --test e2e -- "${E2E_ARGS[@]}"
}

# The end of a failed run: what the cluster's components said last.
show_log_tails() {
  local f
  for f in "$DIR"/logs/*.log "$DIR"/node/logs/*.log "$DIR"/prometheus/*.log "$DIR"/mlflow/*.log; do
    [[ -s $f ]] || continue
    echo "----- tail of $f -----" >&2
    tail -n 20 "$f" >&2
  done
}

teardown() {
  local left pids
  tests/cluster/down.sh "$DIR" >&2 || return 1
  # Nothing that ran from this folder may outlive the run: the cluster, Prometheus, the exporter, MLflow and
  # any operator an interrupted test left behind (their command lines all name the folder).
  if left=$(pgrep -af -- "$DIR"); then
    echo "processes still running from $DIR after down.sh (killed now):" >&2
    echo "$left" >&2
    pids=$(awk '{print $1}' <<<"$left")
    # shellcheck disable=SC2086 # one argument per pid
    kill -KILL $pids 2>/dev/null || true
    return 1
  fi
  echo "no process of $DIR is left" >&2
}

finish() {
  local rc=$? row name secs result
  trap - EXIT INT TERM HUP
  set +e
  if [[ -n $PHASE ]]; then
    PHASES+=("$PHASE|$(elapsed "$T_PHASE")|FAILED")
    echo "hack/test.sh: phase '$PHASE' failed (exit $rc)" >&2
  fi
  if [[ -n $DIR ]]; then
    ((rc != 0)) && show_log_tails
    PHASE="tear down"
    say "$PHASE"
    T_PHASE=$(now)
    if teardown; then
      PHASES+=("$PHASE|$(elapsed "$T_PHASE")|ok")
    else
      PHASES+=("$PHASE|$(elapsed "$T_PHASE")|FAILED")
      rc=1
    fi
    if ((rc == 0)) && [[ ${KEEP:-0} != 1 ]]; then
      rm -rf "$DIR"
    else
      echo "cluster folder kept: $DIR (logs in logs/, prometheus/, mlflow/, each test's operator log in e2e/<namespace>/)" >&2
    fi
  fi
  printf '\n%-46s %9s  %s\n' "phase" "seconds" "result" >&2
  for row in "${PHASES[@]}"; do
    IFS='|' read -r name secs result <<<"$row"
    printf '%-46s %9s  %s\n' "$name" "$secs" "$result" >&2
  done
  printf '%-46s %9s\n' "total" "$(elapsed "$T_ALL")" >&2
  if ((rc == 0 && DONE == 1)); then
    echo "hack/test.sh: all tests passed" >&2
  else
    ((rc == 0)) && rc=1
    echo "hack/test.sh: FAILED" >&2
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

phase "build Kubernetes binaries (build-bins.sh)" build_bins
phase "cargo build --workspace --bins" cargo build --workspace --bins
if [[ ${SKIP_UNIT:-0} != 1 ]]; then
  phase "cargo test (unit, mock, examples, crds, router)" cargo test --workspace --no-fail-fast
fi
phase "build e2e tests" cargo test --features e2e --test e2e --no-run
phase "start cluster (up.sh)" start_cluster
phase "start the real node (node-up.sh)" start_node
phase "start Prometheus (prometheus.sh start)" tests/cluster/prometheus.sh start "$DIR"
phase "start MLflow (mlflow.sh start)" tests/cluster/mlflow.sh start "$DIR"
phase "e2e tests" e2e
DONE=1
