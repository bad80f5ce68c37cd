#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: champion-router and nginx (one worker), HTTP/1.1
# and HTTP/2, in front of the trivial upstream. Unlike latency or CPU time, the count is the same from one run to the
# next whatever else the machine is doing, so it can show a change of a few percent (docs/router-benchmark.md).
# Counted: every thread of the proxy in user space (the kernel's share is not), over N requests after a warm-up.
#
#   router/bench/instructions.sh            # N=4000, about 4 minutes
#   N=1000 router/bench/instructions.sh     # a quick look
#
# Needs: valgrind (callgrind_control), curl; oha from ~/.cache/champion/tools (router/bench/run.sh installs it);
# installs nginx-light with apt-get when nginx is missing.
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
# shellcheck source=router/bench/lib.sh
source "$ROOT/router/bench/lib.sh"
TOOLS=${CHAMPION_TOOLS:-$HOME/.cache/champion/tools}
OHA=$TOOLS/bin/oha
N=${N:-4000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release

command -v callgrind_control >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
need_tools "$OHA" "$TOOLS"
(cd "$ROOT" && nice -n 19 cargo build --release -q -p champion-router --bins --examples)

WORK=$(mktemp -d /tmp/champion-router-instructions.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Ports: upstream 18381, proxy 18390 (HTTP/1.1 and h2c for the router; HTTP/1.1 for nginx), nginx h2c 18391, router
# admin 18392.
"$BIN/examples/bench_upstream" 127.0.0.1:18381 & PIDS+=($!)
nginx_conf "$WORK" 18381 18390 18391 "master_process off;"
echo 'backends: [{name: stable, address: "127.0.0.1:18381", weight: 1, modelVersion: "1"}]' > "$WORK/router.yaml"
BODY='{"instances":[[0.1,0.2,0.3,0.4]]}'

count() { # proxy protocol -> instructions per request
  local proxy=$1 proto=$2 port=18390 pid out=$WORK/$1-$2.callgrind
  if [[ $proxy == nginx ]]; then
    valgrind --tool=callgrind --callgrind-out-file="$out" nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" \
      -e "$WORK/nginx/error.log" 2> "$WORK/$proxy-$proto.valgrind" &
    pid=$!
    [[ $proto == h2 ]] && port=18391
  else
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN/champion-router" --threads 1 --config "$WORK/router.yaml" \
      --listen 127.0.0.1:18390 --admin-listen 127.0.0.1:18392 > /dev/null 2> "$WORK/$proxy-$proto.valgrind" &
    pid=$!
  fi
  for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
  local load=(-c 4)
  [[ $proto == h2 ]] && load=(--http2 -c 1 -p 4)
  local send=("$OHA" --no-tui --output-format json -m POST -T application/json -d "$BODY" "${load[@]}")
  "${send[@]}" -n 500 "http://127.0.0.1:$port/v1/predict" > /dev/null
  callgrind_control -z "$pid" > /dev/null 2>&1
  "${send[@]}" -n "$N" "http://127.0.0.1:$port/v1/predict" > "$WORK/$proxy-$proto.json"
  callgrind_control -d "$pid" > /dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 - "$WORK/$proxy-$proto.json" "$out".1 "$N" <<'EOF'
import json, sys
codes = json.load(open(sys.argv[1]))["statusCodeDistribution"]
if codes.get("200", 0) != int(sys.argv[3]):
    sys.exit(f"not every request was answered 200: {codes}")
total = next(int(l.split()[1]) for l in open(sys.argv[2]) if l.startswith(("summary:", "totals:")))
print(round(total / int(sys.argv[3])))
EOF
}

echo "## Instructions per request (callgrind, user space, all threads of the proxy; N=$N after 500 to warm up)"
echo
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(valgrind --version); $(nginx -v 2>&1 | cut -d: -f2 | xargs)"
echo
echo "| proxy | HTTP/1.1 | HTTP/2 |"
echo "|---|---|---|"
for proxy in champion-router nginx; do
  h1=$(count "$proxy" h1)
  h2=$(count "$proxy" h2)
  echo "| $proxy | $h1 | $h2 |"
done
echo >&2
echo "raw results in $WORK" >&2
