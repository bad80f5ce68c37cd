#!/usr/bin/env bash
# The champion-router benchmark (issue 11, item 6); the figures and how to read them are in docs/router-benchmark.md.
#
# Load generator oha (cached in ~/.cache/champion/tools, never in the repo) pinned to one core; the proxies and the
# trivial upstream pinned to the other. Targets: direct to the upstream, nginx (one worker), champion-router, and
# champion-router mirroring 100% to a shadow that sleeps 200 ms or to one that is down. A warm-up, then RUNS
# interleaved runs (the order rotated each round), medians reported.
#
#   router/bench/run.sh            # everything, ~15 minutes
#   RUNS=1 DURATION=3s router/bench/run.sh   # a quick look
#   BASELINE=/path/to/an/earlier/champion-router router/bench/run.sh   # that build too, as `baseline`, in the same
#                                                                      # rounds (code against code on one host)
#
# Needs: taskset, python3, curl, two or more CPUs; installs nginx-light with apt-get when nginx is missing.
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
# shellcheck source=router/bench/lib.sh
source "$ROOT/router/bench/lib.sh"
TOOLS=${CHAMPION_TOOLS:-$HOME/.cache/champion/tools}
OHA=$TOOLS/bin/oha
RATE=${RATE:-2000}
DURATION=${DURATION:-4s}
CLOSED_DURATION=${CLOSED_DURATION:-3s}
RUNS=${RUNS:-9}
LOAD_CPU=${LOAD_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release

need_tools "$OHA" "$TOOLS"
(cd "$ROOT" && nice -n 19 cargo build --release -q -p champion-router --bins --examples)

WORK=$(mktemp -d /tmp/champion-router-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# Ports: upstream 18081, slow shadow 18082, down shadow 18083 (nothing listens), nginx 18090 (HTTP/1.1) and 18091
# (h2c), routers 1810x with their admin ports 1820x.
# Started directly in the background (no shell function), so $! is the process itself.
taskset -c "$SERVER_CPU" "$BIN/examples/bench_upstream" 127.0.0.1:18081 & PIDS+=($!)
echo $! > "$WORK/upstream.pid"
taskset -c "$SERVER_CPU" "$BIN/examples/bench_upstream" 127.0.0.1:18082 200 & PIDS+=($!)

nginx_conf "$WORK" 18081 18090 18091
taskset -c "$SERVER_CPU" nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" -e "$WORK/nginx/error.log" & PIDS+=($!)

router() { # name port admin-port config [binary]
  printf '%s\n' "$4" > "$WORK/$1.yaml"
  taskset -c "$SERVER_CPU" "${5:-$BIN/champion-router}" --config "$WORK/$1.yaml" --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" \
    > /dev/null 2> "$WORK/$1.err" &
  PIDS+=($!)
  echo $! > "$WORK/$1.pid"
}
LIVE='backends: [{name: stable, address: "127.0.0.1:18081", weight: 1, modelVersion: "1"}]'
COMPARE='comparison: {path: predictions.0, mode: numeric, tolerance: 0.01}'
router plain 18100 18200 "$LIVE"
router mirror-slow 18101 18201 "$LIVE
shadows: [{name: candidate, address: \"127.0.0.1:18082\", mirrorPercent: 100}]
$COMPARE"
router mirror-down 18102 18202 "$LIVE
shadows: [{name: candidate, address: \"127.0.0.1:18083\", mirrorPercent: 100}]
$COMPARE"
router split 18103 18203 'backends:
- {name: stable, address: "127.0.0.1:18081", weight: 90}
- {name: candidate, address: "127.0.0.1:18081", weight: 10}'
PORTS=(18081 18082 18090 18091 18200 18201 18202 18203)
if [[ -n ${BASELINE:-} ]]; then
  router baseline 18104 18204 "$LIVE" "$BASELINE"
  PORTS+=(18204)
fi

for port in "${PORTS[@]}"; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

declare -A URL=(
  [direct]=http://127.0.0.1:18081/v1/predict [nginx]=http://127.0.0.1:18090/v1/predict
  [router]=http://127.0.0.1:18100/v1/predict [router-mirror-slow]=http://127.0.0.1:18101/v1/predict
  [router-mirror-down]=http://127.0.0.1:18102/v1/predict
  [h2-direct]=http://127.0.0.1:18081/v1/predict [h2-nginx]=http://127.0.0.1:18091/v1/predict
  [h2-router]=http://127.0.0.1:18100/v1/predict [h2-router-mirror-slow]=http://127.0.0.1:18101/v1/predict
  [h2-router-mirror-down]=http://127.0.0.1:18102/v1/predict
)
TARGETS=(direct nginx router router-mirror-slow router-mirror-down h2-direct h2-nginx h2-router h2-router-mirror-slow h2-router-mirror-down)
CLOSED=(direct nginx router router-mirror-slow router-mirror-down h2-nginx h2-router)
if [[ -n ${BASELINE:-} ]]; then
  URL[baseline]=http://127.0.0.1:18104/v1/predict
  URL[h2-baseline]=http://127.0.0.1:18104/v1/predict
  TARGETS+=(baseline h2-baseline)
  CLOSED+=(baseline h2-baseline)
fi
BODY='{"instances":[[0.1,0.2,0.3,0.4]]}'

oha() { # target out-file extra-args...
  local target=$1 out=$2; shift 2
  local proto=(-c 16)
  [[ $target == h2-* ]] && proto=(--http2 -c 2 -p 8)
  taskset -c "$LOAD_CPU" "$OHA" --no-tui --output-format json -m POST -T application/json -d "$BODY" \
    "${proto[@]}" "$@" "${URL[$target]}" > "$out"
}

rss_sampler() { # pid file
  while kill -0 "$1" 2>/dev/null; do grep VmRSS "/proc/$1/status" | awk '{print $2}'; sleep 0.5; done > "$2"
}
# Which process serves each closed-loop target, for its CPU time per request (user + system, all threads): a
# figure the machine's noise moves much less than latency or throughput.
declare -A SERVER=(
  [direct]=$(cat "$WORK/upstream.pid") [nginx]=$(pgrep -P "$(cat "$WORK/nginx.pid")" nginx | head -1)
  [router]=$(cat "$WORK/plain.pid") [router-mirror-slow]=$(cat "$WORK/mirror-slow.pid")
  [router-mirror-down]=$(cat "$WORK/mirror-down.pid")
)
SERVER[h2-nginx]=${SERVER[nginx]}
SERVER[h2-router]=${SERVER[router]}
if [[ -n ${BASELINE:-} ]]; then
  SERVER[baseline]=$(cat "$WORK/baseline.pid")
  SERVER[h2-baseline]=${SERVER[baseline]}
  echo "baseline: $BASELINE" >&2
fi
cpu_ticks() { # pid: user + system clock ticks of all its threads
  cat /proc/"$1"/task/*/stat | awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t }'
}
rss_sampler "$(cat "$WORK/plain.pid")" "$WORK/rss-plain.kb" & PIDS+=($!)
rss_sampler "$(cat "$WORK/mirror-slow.pid")" "$WORK/rss-mirror-slow.kb" & PIDS+=($!)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "warm-up" >&2
for t in "${TARGETS[@]}"; do oha "$t" /dev/null -z 2s -q "$RATE" --latency-correction; done
mkdir -p "$WORK/fixed" "$WORK/closed"
for run in $(seq "$RUNS"); do
  n=${#TARGETS[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${TARGETS[$(((i + run) % n))]}
    echo "run $run/$RUNS: $t at $RATE rps" >&2
    oha "$t" "$WORK/fixed/$t.$run.json" -z "$DURATION" -q "$RATE" --latency-correction
  done
  n=${#CLOSED[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${CLOSED[$(((i + run) % n))]}
    echo "run $run/$RUNS: $t closed loop" >&2
    before=$(cpu_ticks "${SERVER[$t]}")
    oha "$t" "$WORK/closed/$t.$run.json" -z "$CLOSED_DURATION"
    echo "$before $(cpu_ticks "${SERVER[$t]}") $(getconf CLK_TCK)" > "$WORK/closed/$t.$run.cpu"
  done
done

echo "split: 10,000 requests at 90/10" >&2
taskset -c "$LOAD_CPU" "$OHA" --no-tui --output-format quiet -n 10000 -c 16 -m POST -d "$BODY" http://127.0.0.1:18103/v1/predict
curl -s http://127.0.0.1:18203/metrics > "$WORK/split.metrics"
for r in mirror-slow mirror-down; do curl -s "http://127.0.0.1:1820$([ $r = mirror-slow ] && echo 1 || echo 2)/metrics" > "$WORK/$r.metrics"; done
for r in plain mirror-slow mirror-down split; do grep VmRSS "/proc/$(cat "$WORK/$r.pid")/status" | awk '{print $2}' > "$WORK/rss-end-$r.kb"; done

echo "## Machine"
echo
echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); kernel: $(uname -r)"
echo "- load average (1/5/15 min) before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- oha $("$OHA" --version | awk '{print $2}'), $(nginx -v 2>&1 | cut -d: -f2 | xargs), load on CPU $LOAD_CPU, servers on CPU $SERVER_CPU"
echo
python3 - "$WORK" "$RATE" <<'EOF'
import glob, json, os, re, statistics, sys
work, rate = sys.argv[1], sys.argv[2]
def load(kind):
    out = {}
    for f in sorted(glob.glob(f"{work}/{kind}/*.json")):
        t = os.path.basename(f).rsplit(".", 2)[0]
        out.setdefault(t, []).append(json.load(open(f)))
    return out
ms = lambda s: s * 1000
fixed, closed = load("fixed"), load("closed")
print(f"## Fixed rate {rate} rps, latency-corrected (medians of {len(next(iter(fixed.values())))} runs; ms)\n")
print("| target | p50 | p90 | p99 | success | runs p50 |")
print("|---|---|---|---|---|---|")
med = {}
for t, runs in fixed.items():
    p = lambda k: statistics.median(ms(r["latencyPercentiles"][k]) for r in runs)
    med[t] = (p("p50"), p("p90"), p("p99"))
    ok = min(r["summary"]["successRate"] for r in runs)
    each = " ".join(f"{ms(r['latencyPercentiles']['p50']):.3f}" for r in runs)
    print(f"| {t} | {med[t][0]:.3f} | {med[t][1]:.3f} | {med[t][2]:.3f} | {ok:.4f} | {each} |")
print("\n## Added over direct and over nginx (ms, medians)\n")
print("| target | +p50 vs direct | +p90 vs direct | p50 vs nginx | p90 vs nginx |")
print("|---|---|---|---|---|")
for t in med:
    h2 = t.startswith("h2-")
    d, n = med["h2-direct" if h2 else "direct"], med["h2-nginx" if h2 else "nginx"]
    print(f"| {t} | {med[t][0]-d[0]:+.3f} | {med[t][1]-d[1]:+.3f} | {med[t][0]-n[0]:+.3f} | {med[t][1]-n[1]:+.3f} |")
print("\n## Closed loop throughput (medians; requests/s)\n")
print("| target | rps | ratio to nginx (same protocol) | runs |")
print("|---|---|---|---|")
rps = {t: statistics.median(r["summary"]["requestsPerSec"] for r in runs) for t, runs in closed.items()}
for t, v in rps.items():
    n = rps.get("h2-nginx" if t.startswith("h2-") else "nginx")
    each = " ".join(f"{r['summary']['requestsPerSec']:.0f}" for r in closed[t])
    print(f"| {t} | {v:.0f} | {v / n:.2f} | {each} |")
# CPU time of the serving process per request, closed loop: (ticks after - before) / ticks per second / requests.
print("\n## CPU time of the serving process per request, closed loop (µs, user + system; medians)\n")
print("| target | µs per request | ratio to nginx (same protocol) | runs |")
print("|---|---|---|---|")
cpu = {}
for t, runs in closed.items():
    per = []
    for i, r in enumerate(runs, 1):
        f = f"{work}/closed/{t}.{i}.cpu"
        if not os.path.exists(f):
            continue
        before, after, hz = (float(x) for x in open(f).read().split())
        n = sum(r.get("statusCodeDistribution", {}).values())
        if n:
            per.append((after - before) / hz / n * 1e6)
    if per:
        cpu[t] = (statistics.median(per), per)
for t, (v, per) in cpu.items():
    n = cpu.get("h2-nginx" if t.startswith("h2-") else "nginx")
    print(f"| {t} | {v:.1f} | {v / n[0]:.2f} | {' '.join(f'{x:.1f}' for x in per)} |")
# Each round's ratio between two targets measured in that round, then the median of those: the host's drift between
# rounds (which moves everything together) cancels out of each ratio.
pairs = [("router", "nginx"), ("h2-router", "h2-nginx"), ("baseline", "nginx"), ("h2-baseline", "h2-nginx"),
         ("router", "baseline"), ("h2-router", "h2-baseline")]
print("\n## Closed loop, ratios within each round (medians of the rounds' ratios)\n")
print("| ratio | throughput | CPU per request | throughput, each round |")
print("|---|---|---|---|")
for a, b in pairs:
    if a not in closed or b not in closed:
        continue
    tput = [x["summary"]["requestsPerSec"] / y["summary"]["requestsPerSec"] for x, y in zip(closed[a], closed[b])]
    cpu_ratio = [x / y for x, y in zip(cpu[a][1], cpu[b][1])] if a in cpu and b in cpu else []
    cpu_text = f"{statistics.median(cpu_ratio):.2f}" if cpu_ratio else "–"
    print(f"| {a} / {b} | {statistics.median(tput):.2f} | {cpu_text} | {' '.join(f'{x:.2f}' for x in tput)} |")
def metric(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
split = open(f"{work}/split.metrics").read()
s, c = metric(split, "champion_router_requests_total", variant="stable"), metric(split, "champion_router_requests_total", variant="candidate")
print(f"\n## Split over 10,000 requests, weights 90/10\n\nstable {s:.0f} ({100*s/(s+c):.2f}%), candidate {c:.0f} ({100*c/(s+c):.2f}%)")
print("\n## Mirroring counters (whole benchmark)\n")
for r in ("mirror-slow", "mirror-down"):
    m = open(f"{work}/{r}.metrics").read()
    print(f"- {r}: live requests {metric(m, 'champion_router_requests_total'):.0f}, copies sent {metric(m, 'champion_router_mirror_requests_total'):.0f}, "
          f"dropped at the cap {metric(m, 'champion_router_mirror_dropped_total', reason='concurrency'):.0f}, "
          f"held back as down {metric(m, 'champion_router_mirror_dropped_total', reason='shadow_down'):.0f}, "
          f"compared agree {metric(m, 'champion_router_shadow_comparisons_total', outcome='agree'):.0f}, "
          f"shadow failed {metric(m, 'champion_router_shadow_comparisons_total', outcome='shadow_failed'):.0f}")
print("\n## Router RSS (MiB)\n")
for r in ("plain", "mirror-slow"):
    vals = [int(x) for x in open(f"{work}/rss-{r}.kb").read().split()]
    print(f"- {r}: peak {max(vals)/1024:.1f} during the runs, {int(open(f'{work}/rss-end-{r}.kb').read())/1024:.1f} at the end")
EOF
echo >&2
echo "raw results in $WORK" >&2
trap - EXIT
cleanup
wait 2>/dev/null || true
