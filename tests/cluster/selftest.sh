#!/usr/bin/env bash
# selftest.sh [DIR]: the whole control plane end to end: build-bins.sh, up.sh, smoke.sh,
# prometheus.sh start, prometheus-smoke.sh, then down.sh (always, also on failure).
# DIR defaults to a fresh temporary folder that is removed afterwards when everything passed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEEP=1
if [[ -n ${1:-} ]]; then
  DIR=$1
else
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/champion-cluster.XXXXXX")
  KEEP=0
fi
OK=0
finish() {
  "$HERE/down.sh" "$DIR" >/dev/null || echo "selftest: down.sh reported a problem" >&2
  if [[ $OK == 1 && $KEEP == 0 ]]; then rm -rf "$DIR"; else echo "selftest: state and logs kept in $DIR" >&2; fi
}
trap finish EXIT

BIN=$("$HERE/build-bins.sh" | tail -1)
export BIN
"$HERE/up.sh" "$DIR"
"$HERE/smoke.sh" "$DIR"
"$HERE/prometheus.sh" start "$DIR"
"$HERE/prometheus-smoke.sh" "$DIR"
OK=1
echo "selftest: cluster and prometheus checks passed"
