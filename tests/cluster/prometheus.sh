#!/usr/bin/env bash
# prometheus.sh start|stop DIR: a real Prometheus for tests on 127.0.0.1 (free port, scrape and rule
# evaluation every 1 s, TSDB under DIR/prometheus/data) scraping the test exporter (exporter.py, also
# started here on a free port) and, when DIR holds a cluster of up.sh, the pods of the real node
# (node-up.sh) through Kubernetes service discovery (role pod). The binary: $PROMETHEUS, else the one
# build-bins.sh built into the cluster's bin dir (with Kubernetes service discovery), else Debian's
# "prometheus" package, installed if missing (its service is never started: this script runs the binary
# itself; it has no Kubernetes service discovery, so then only the exporter is scraped). start writes
# DIR/prometheus.env with PROMETHEUS_URL and EXPORTER_URL and waits until the exporter target is up; stop
# ends both processes.
# Env: PROMETHEUS (binary), PYTHON (default python3), PROM_TIMEOUT (60).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

usage() { echo "usage: prometheus.sh start|stop DIR" >&2; exit 2; }
CMD=${1:-}
DIR=${2:-}
[[ -n $CMD && -n $DIR ]] || usage
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDS=$DIR/prometheus.pids
PD=$DIR/prometheus
TIMEOUT=${PROM_TIMEOUT:-60}

case $CMD in
  stop)
    stop_all "$PIDS" "${GRACE:-10}"
    rm -f "$DIR/prometheus.env"
    echo "prometheus in $DIR stopped"
    exit 0
    ;;
  start) ;;
  *) usage ;;
esac

T0=$(now)
log() { printf '[prometheus %5ss] %s\n' "$(elapsed "$T0")" "$*" >&2; }

if [[ -f $PIDS ]] && any_alive "$PIDS"; then
  echo "prometheus.sh: already running for $DIR (prometheus.sh stop $DIR first)" >&2
  exit 1
fi
stop_all "$PIDS" 2 # leftovers of a half-dead earlier start

# The Prometheus that build-bins.sh built (Kubernetes service discovery; Debian's package has none) when
# DIR holds a cluster, else Debian's.
K8S_SD=0
if [[ -z ${PROMETHEUS:-} && -f $DIR/env ]]; then
  CLUSTER_BIN=$(sed -n 's/^export CLUSTER_BIN=//p' "$DIR/env")
  if [[ -x $CLUSTER_BIN/prometheus ]]; then
    PROMETHEUS=$CLUSTER_BIN/prometheus
    K8S_SD=1
  fi
fi
PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || true)}
if [[ -z $PROMETHEUS ]]; then
  log "prometheus not installed: apt-get update && apt-get install -y prometheus"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
    >"$DIR/prometheus-apt.log" 2>&1; then
    tail -n 30 "$DIR/prometheus-apt.log" >&2
    exit 1
  fi
  PROMETHEUS=$(command -v prometheus)
fi
PYTHON=${PYTHON:-python3}

STEP=starting
CURRENT=exporter
UP_OK=0
on_exit() {
  local rc=$?
  [[ $UP_OK == 1 ]] && return 0
  echo "prometheus.sh: FAILED (exit $rc) during: $STEP" >&2
  for c in exporter prometheus; do
    ((rc == 130 || rc == 143)) && break # interrupted: no log tails
    if [[ -f $PD/$c.log && ( $c == "$CURRENT" || $c == "$(first_dead "$PIDS" || true)" ) ]]; then
      echo "----- tail of $PD/$c.log -----" >&2
      tail -n 40 "$PD/$c.log" >&2
    fi
  done
  stop_all "$PIDS" 5 || true
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP


rm -rf "$PD"
mkdir -p "$PD/data"
: >"$PIDS"

STEP="starting exporter"
CURRENT=exporter
start_bg "$PIDS" "$PD/exporter.log" exporter "$PYTHON" "$HERE/exporter.py" \
  --host 127.0.0.1 --port 0 --port-file "$PD/exporter.port"
wait_until "$TIMEOUT" test -s "$PD/exporter.port"
EXPORTER_URL=http://127.0.0.1:$(cat "$PD/exporter.port")
wait_until "$TIMEOUT" curl -sf "$EXPORTER_URL/healthz"
log "exporter ready at $EXPORTER_URL"

STEP="starting prometheus"
CURRENT=prometheus
PROM_PORT=$(freeport)
PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT
cat >"$PD/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: test-exporter
  honor_labels: true   # keep labels such as namespace/job exactly as the test set them
  static_configs:
  - targets: ['${EXPORTER_URL#http://}']
EOF
if ((K8S_SD == 1)) && [[ -f $DIR/pki/admin.crt ]]; then
  # The pods of the real node (node-up.sh), found through the test apiserver, with the standard pod
  # relabelling: pod labels become series labels (champion.ml/revision -> champion_ml_revision), plus
  # namespace and pod. Kept: pods with an IP in the real node's pod CIDR (kwok pods' IPs are fake: never
  # scrape them), Running, that opt in (annotation prometheus.io/scrape=true, or a Champion model-server
  # pod, i.e. label champion.ml/deployment); prometheus.io/port and prometheus.io/path override the
  # declared container port and /metrics. Identity: the cluster's admin certificate.
  API=$(sed -n 's/^export KUBE_APISERVER_URL=//p' "$DIR/env")
  prefix=${REAL_NODE_POD_CIDR%.0/24} # a /24: the first three octets
  POD_IP_REGEX="${prefix//./\\.}\\.[0-9]+"
  cat >>"$PD/prometheus.yml" <<EOF
- job_name: kubernetes-pods
  kubernetes_sd_configs:
  - role: pod
    api_server: '$API'
    tls_config: {ca_file: '$DIR/pki/ca.crt', cert_file: '$DIR/pki/admin.crt', key_file: '$DIR/pki/admin.key'}
  relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_ip], regex: '$POD_IP_REGEX', action: keep}
  - {source_labels: [__meta_kubernetes_pod_phase], regex: Running, action: keep}
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape, __meta_kubernetes_pod_labelpresent_champion_ml_deployment]
    regex: 'true;.*|.*;true'
    action: keep
  - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
    regex: '([^:]+)(?::[0-9]+)?;([0-9]+)'
    replacement: '\$1:\$2'
    target_label: __address__
  - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path], regex: '(.+)', target_label: __metrics_path__}
  - {action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}
  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
EOF
fi
start_bg "$PIDS" "$PD/prometheus.log" prometheus "$PROMETHEUS" \
  --config.file="$PD/prometheus.yml" --storage.tsdb.path="$PD/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.retention.time=1d
wait_until "$TIMEOUT" curl -sf "$PROMETHEUS_URL/-/ready"
log "prometheus ready at $PROMETHEUS_URL"

STEP="waiting for the exporter target to be up"
target_up() {
  local out
  out=$(curl -sf "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=up{job="test-exporter"} == 1')
  [[ $out == *'"result":[{'* ]]
}
wait_until "$TIMEOUT" target_up

{
  echo "# written by tests/cluster/prometheus.sh; source it"
  printf 'export PROMETHEUS_URL=%q\n' "$PROMETHEUS_URL"
  printf 'export EXPORTER_URL=%q\n' "$EXPORTER_URL"
} >"$DIR/prometheus.env"
UP_OK=1
log "prometheus $PROMETHEUS_URL scraping exporter $EXPORTER_URL"
echo "prometheus start-up took $(elapsed "$T0") s (source $DIR/prometheus.env; stop with tests/cluster/prometheus.sh stop $DIR)"
