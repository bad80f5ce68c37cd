#!/usr/bin/env bash
# mlflow.sh start|stop DIR: a real MLflow tracking server and model registry for tests on 127.0.0.1 (free
# port, SQLite backend DIR/mlflow/mlflow.db, artifact root DIR/mlflow/artifacts).
#
# MLflow (pinned, MLFLOW_VERSION) is installed once with pip into a virtual environment in
# ${XDG_CACHE_HOME:-~/.cache}/champion/mlflow-VERSION; the file .complete in it marks a finished install (an
# interrupted one is redone), and a lock file beside it makes concurrent starts install only once.
# `mlflow server` starts worker processes of its own that outlive a SIGTERM to their parent, so it runs as the
# leader of its own session (setsid); stop signals the whole group and waits until every process of it is
# gone. start waits for /health and writes DIR/mlflow.env with MLFLOW_TRACKING_URI.
# Env: PYTHON (default python3), MLFLOW_TIMEOUT (start-up, default 90 s), MLFLOW_HOME (the venv; default above),
#      MLFLOW_PORT (default: a free port), MLFLOW_KEEP_DATA=1 (keep the database and artifacts of an earlier
#      start in DIR, to start a stopped server again with what it had; tests of a registry outage use it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

MLFLOW_VERSION=3.17.2

usage() { echo "usage: mlflow.sh start|stop DIR" >&2; exit 2; }
CMD=${1:-}
DIR=${2:-}
[[ -n $CMD && -n $DIR ]] || usage
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDS=$DIR/mlflow.pids
MD=$DIR/mlflow
TIMEOUT=${MLFLOW_TIMEOUT:-90}

case $CMD in
  stop)
    stop_all "$PIDS" "${GRACE:-10}"
    rm -f "$DIR/mlflow.env"
    echo "mlflow in $DIR stopped"
    exit 0
    ;;
  start) ;;
  *) usage ;;
esac

T0=$(now)
log() { printf '[mlflow %5ss] %s\n' "$(elapsed "$T0")" "$*" >&2; }

if [[ -f $PIDS ]] && any_alive "$PIDS"; then
  echo "mlflow.sh: already running for $DIR (mlflow.sh stop $DIR first)" >&2
  exit 1
fi
stop_all "$PIDS" 2 # leftovers of a half-dead earlier start

STEP=starting
UP_OK=0
on_exit() {
  local rc=$?
  [[ $UP_OK == 1 ]] && return 0
  echo "mlflow.sh: FAILED (exit $rc) during: $STEP" >&2
  if ((rc != 130 && rc != 143)) && [[ -f $MD/server.log ]]; then
    echo "----- tail of $MD/server.log -----" >&2
    tail -n 40 "$MD/server.log" >&2
  fi
  stop_all "$PIDS" 5 || true
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The install, once per machine and version; a lock makes a second start wait for an install under way.
VENV=${MLFLOW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/champion/mlflow-$MLFLOW_VERSION}
mkdir -p "$(dirname "$VENV")"
if [[ ! -f $VENV/.complete ]]; then
  exec 9>"$VENV.lock"
  STEP="waiting for another install of mlflow into $VENV"
  flock 9
  if [[ ! -f $VENV/.complete ]]; then
    STEP="installing mlflow $MLFLOW_VERSION into $VENV"
    log "$STEP (once; about two minutes)"
    rm -rf "$VENV"
    INSTALL_LOG=$VENV-install.log
    if ! { "${PYTHON:-python3}" -m venv "$VENV" &&
      "$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION" &&
      "$VENV/bin/mlflow" --version; } >"$INSTALL_LOG" 2>&1; then
      tail -n 30 "$INSTALL_LOG" >&2
      exit 1
    fi
    touch "$VENV/.complete"
    log "installed mlflow $MLFLOW_VERSION"
  fi
  exec 9>&- # the server must not hold the lock
fi


[[ ${MLFLOW_KEEP_DATA:-0} == 1 ]] || rm -rf "$MD"
mkdir -p "$MD/artifacts"
: >"$PIDS"

STEP="starting mlflow server"
PORT=${MLFLOW_PORT:-$(freeport)}
MLFLOW_TRACKING_URI=http://127.0.0.1:$PORT
# One worker and no job runner (its task consumers serve GenAI features, not the registry): the tests are
# few and the machine is small. No telemetry leaves the machine.
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
  start_bg "$PIDS" "$MD/server.log" mlflow "$VENV/bin/mlflow" server \
  --backend-store-uri "sqlite:///$MD/mlflow.db" --default-artifact-root "$MD/artifacts" \
  --host 127.0.0.1 --port "$PORT" --workers 1
wait_until "$TIMEOUT" curl -sf "$MLFLOW_TRACKING_URI/health"
log "mlflow answers /health at $MLFLOW_TRACKING_URI"

{
  echo "# written by tests/cluster/mlflow.sh; source it"
  printf 'export MLFLOW_TRACKING_URI=%q\n' "$MLFLOW_TRACKING_URI"
} >"$DIR/mlflow.env"
UP_OK=1
echo "mlflow start-up took $(elapsed "$T0") s (source $DIR/mlflow.env; stop with tests/cluster/mlflow.sh stop $DIR)"
