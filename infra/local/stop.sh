#!/usr/bin/env bash
# Stop the Ray head and MLflow server that infra/local/start.sh started (same DRLIM_LOCAL_DIR), with every
# process they started, and nothing else. Safe to run twice.
set -uo pipefail

state=$(realpath -m "${DRLIM_LOCAL_DIR:-.drlim-local}")
alive() {  # a live (not zombie) process in session $1
  ps -eo sid=,stat= | awk -v sid="$1" '$1 == sid && $2 !~ /^Z/ {n++} END {exit !n}'
}
for server in mlflow ray; do
  file=$state/$server.sid
  [[ -f $file ]] || continue
  sid=$(<"$file")
  if [[ $sid =~ ^[0-9]+$ ]]; then
    pkill -TERM -s "$sid" 2>/dev/null
    for _ in $(seq 50); do alive "$sid" || break; sleep 0.2; done
    pkill -KILL -s "$sid" 2>/dev/null
  fi
  rm -f "$file"
  echo "stopped $server (session $sid)"
done
exit 0
