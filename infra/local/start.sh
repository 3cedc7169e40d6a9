#!/usr/bin/env bash
# Start a Ray head and an MLflow tracking server on this machine, for `drlim submit` and the end-to-end test.
#
#   infra/local/start.sh        # prints the exports to paste
#   infra/local/stop.sh         # stops both (and nothing else)
#
# The Jobs API/dashboard and MLflow listen on 127.0.0.1 only. Ray's own cluster ports (GCS, raylet) cannot be
# bound to loopback; token authentication (turned on here) guards them and the Jobs API (~/.ray/auth_token).
# Settings (environment variables, defaults in brackets):
#   DRLIM_LOCAL_DIR [.drlim-local]  state: session ids, logs, the MLflow database and artifacts
#   RAY_PORT [6379]  RAY_DASHBOARD_PORT [8265]  RAY_CLIENT_PORT [10001]  RAY_DASHBOARD_AGENT_PORT [52365]
#   RAY_NUM_CPUS [2]
#   RAY_OBJECT_STORE_MB [500]  RAY_TEMP_DIR [/tmp/drlim-ray-UID-RAY_PORT]  RAY_EXTRA_ARGS []  MLFLOW_PORT [5000]
set -euo pipefail

state=$(realpath -m "${DRLIM_LOCAL_DIR:-.drlim-local}")
ray_port=${RAY_PORT:-6379}
dashboard_port=${RAY_DASHBOARD_PORT:-8265}
agent_port=${RAY_DASHBOARD_AGENT_PORT:-52365}  # the job agent's: taken, the head starts but takes no job
mlflow_port=${MLFLOW_PORT:-5000}
# Ray puts unix sockets under its temp dir; their paths must stay short (< 108 bytes).
ray_tmp=${RAY_TEMP_DIR:-/tmp/drlim-ray-$(id -u)-$ray_port}

if [[ -e $state/ray.sid || -e $state/mlflow.sid ]]; then
  echo "start.sh: servers from $state may still run; run infra/local/stop.sh first" >&2
  exit 1
fi
# A taken port is named with the variable that moves it, before anything starts (a local `drlim run` holds
# Ray's ports 8265 and 52365 while it runs, say).
for setting in "RAY_PORT=$ray_port" "RAY_DASHBOARD_PORT=$dashboard_port" "RAY_CLIENT_PORT=${RAY_CLIENT_PORT:-10001}" \
  "RAY_DASHBOARD_AGENT_PORT=$agent_port" "MLFLOW_PORT=$mlflow_port"; do
  if ! python -c 'import socket, sys
with socket.socket() as s: s.bind(("127.0.0.1", int(sys.argv[1])))' "${setting#*=}" 2>/dev/null; then
    echo "start.sh: port ${setting#*=} is taken by another process; set ${setting%%=*} to a free port" >&2
    exit 1
  fi
done
mkdir -p "$state/mlartifacts"
trap 'echo "start.sh: failed; stopping what started (logs in $state)" >&2; "$(dirname "$0")/stop.sh"' ERR

# Token authentication on, always: a token in ~/.ray/auth_token (created if missing) that `drlim submit` sends.
export RAY_AUTH_MODE=token
ray get-auth-token --generate >/dev/null
# Ray Train's controller looks at its workers every 0.5 s, not 2 s: small jobs end seconds sooner (see
# pipeline/infrastructure/runtime.py, LOCAL_RAY_ENV).
export RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=${RAY_TRAIN_HEALTH_CHECK_INTERVAL_S:-0.5}

# Each server gets its own session (setsid): stop.sh ends the session, i.e. the server and every process it
# started (Ray workers and jobs included), and nothing else on the machine.
# MLflow starts first and comes up while `ray start` runs (~10 s saved); the loop below waits for both.
setsid mlflow server --host 127.0.0.1 --port "$mlflow_port" \
  --workers "${MLFLOW_WORKERS:-1}" --backend-store-uri "sqlite:///$state/mlflow.db" --artifacts-destination "$state/mlartifacts" \
  >"$state/mlflow.log" 2>&1 &
echo $! >"$state/mlflow.sid"

# shellcheck disable=SC2086  # RAY_EXTRA_ARGS is a list of flags
setsid ray start --head --port "$ray_port" --dashboard-host 127.0.0.1 --dashboard-port "$dashboard_port" \
  --ray-client-server-port "${RAY_CLIENT_PORT:-10001}" --dashboard-agent-listen-port "$agent_port" --num-cpus "${RAY_NUM_CPUS:-2}" \
  --object-store-memory "$(( ${RAY_OBJECT_STORE_MB:-500} * 1024 * 1024 ))" --temp-dir "$ray_tmp" \
  --include-dashboard true --disable-usage-stats ${RAY_EXTRA_ARGS:-} >"$state/ray.log" 2>&1 &
echo $! >"$state/ray.sid"
wait $!

answers() {  # URL answers HTTP at all (the Jobs API says 401 without a token: it is up)
  python -c 'import sys, urllib.error, urllib.request
try: urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError: pass' "$1" 2>/dev/null
}
for _ in $(seq 120); do
  if answers "http://127.0.0.1:$mlflow_port/health" && answers "http://127.0.0.1:$dashboard_port/api/version"; then
    cat <<EXPORTS
# Ray head (Jobs API) and MLflow server are up; state in $state
export RAY_API_SERVER_ADDRESS=http://127.0.0.1:$dashboard_port
export MLFLOW_TRACKING_URI=http://127.0.0.1:$mlflow_port
EXPORTS
    exit 0
  fi
  sleep 0.5
done
echo "start.sh: servers did not answer within 60 s; see $state/ray.log and $state/mlflow.log" >&2
false
