#!/usr/bin/env bash
# prometheus-smoke.sh DIR: end-to-end check of prometheus.sh start DIR: values set through the test
# exporter (a number, NaN, a label value with quote/backslash/newline) become visible to instant
# queries on /api/v1/query, and a deleted series disappears. Polls with a deadline, 0.25 s apart.
# Exits non-zero on the first failure; prints each check that passed.
set -euo pipefail

DIR=${1:?usage: prometheus-smoke.sh DIR}
# shellcheck disable=SC1091
source "$DIR/prometheus.env"
DEADLINE_S=${SMOKE_TIMEOUT:-30}
PASSED=0

pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; echo "$PASSED passed, 1 failed"; exit 1; }

post() { # PATH JSON
  curl -sf -XPOST "$EXPORTER_URL$1" -H 'Content-Type: application/json' -d "$2" >/dev/null ||
    fail "POST $1 $2"
}

# query_value PROMQL: print the value of the single result of an instant query ("" if none).
query_value() {
  curl -sf "$PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
r = d["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else ("" if not r else "MULTIPLE"))'
}

# await PROMQL EXPECTED: poll until the query returns EXPECTED ("" = no result).
await() {
  local q=$1 want=$2 got="" start=$SECONDS
  while ((SECONDS - start < DEADLINE_S)); do
    got=$(query_value "$q" || echo "QUERY-ERROR")
    if [[ $got == "$want" ]]; then
      echo "    ($q -> '${got}' after $((SECONDS - start)) s)"
      return 0
    fi
    sleep 0.25
  done
  fail "$q: wanted '$want', last got '$got' after ${DEADLINE_S}s"
}

curl -sf "$PROMETHEUS_URL/-/ready" >/dev/null || fail "prometheus not ready at $PROMETHEUS_URL"
pass "prometheus ready at $PROMETHEUS_URL"

ctype=$(curl -sf -o /dev/null -w '%{content_type}' "$EXPORTER_URL/metrics")
[[ $ctype == "text/plain; version=0.0.4; charset=utf-8" ]] || fail "exporter content type '$ctype'"
pass "exporter serves $ctype"

post /reset '{}'
post /set '{"name":"champion_smoke_ratio","labels":{"namespace":"smoke","deployment":"web","variant":"canary"},"value":1.5}'
await 'champion_smoke_ratio{namespace="smoke",deployment="web",variant="canary"}' 1.5
pass "gauge 1.5 set via exporter visible in an instant query"

post /set '{"name":"champion_smoke_ratio","labels":{"namespace":"smoke","deployment":"web","variant":"canary"},"value":0.25}'
await 'champion_smoke_ratio{namespace="smoke",deployment="web",variant="canary"}' 0.25
pass "updated value 0.25 visible"

post /set '{"name":"champion_smoke_ratio","labels":{"namespace":"smoke","deployment":"web","variant":"stable"},"value":"NaN"}'
await 'champion_smoke_ratio{namespace="smoke",deployment="web",variant="stable"}' NaN
pass "NaN value visible"

post /set '{"name":"champion_smoke_escape","labels":{"variant":"a\"b\\c\nd"},"value":7}'
await 'champion_smoke_escape{variant="a\"b\\c\nd"}' 7
pass "label value with quote, backslash and newline round-trips"

post /delete '{"name":"champion_smoke_ratio","labels":{"namespace":"smoke","deployment":"web","variant":"canary"}}'
await 'champion_smoke_ratio{namespace="smoke",deployment="web",variant="canary"}' ""
pass "deleted series gone from instant queries (staleness marker)"

post /reset '{}'
await 'count(champion_smoke_ratio)' ""
pass "reset clears all series"

echo "$PASSED passed, 0 failed"
