#!/usr/bin/env bash
# Stop the Ray head and MLflow server that infra/local/start.sh started (same DRLIM_LOCAL_DIR), with every
# process they started, and nothing else. Safe to run twice.
set -uo pipefail

state=$(realpath -m "${DRLIM_LOCAL_DIR:-.drlim-local}")
alive() {  # a live (not zombie) process in session $1
  ps -eo sid=,stat= | awk -v sid="$1" '$1 == sid && $2 !~ /^Z/ {n++} END {exit !n}'
}
# TERM both sessions first, then wait for them together (up to 10 s), then KILL what is left.
declare -A sids=()
for server in mlflow ray; do
  file=$state/$server.sid
  [[ -f $file ]] || continue
  sid=$(<"$file")
  if [[ $sid =~ ^[0-9]+$ ]]; then
    sids[$server]=$sid
    pkill -TERM -s "$sid" 2>/dev/null
  fi
done
for _ in $(seq 50); do
  left=0
  for sid in "${sids[@]}"; do alive "$sid" && left=1; done
  (( left )) || break
  sleep 0.2
done
for server in mlflow ray; do
  file=$state/$server.sid
  [[ -f $file ]] || continue
  if [[ -n ${sids[$server]:-} ]]; then
    pkill -KILL -s "${sids[$server]}" 2>/dev/null
  fi
  rm -f "$file"
  echo "stopped $server (session ${sids[$server]:-?})"
done
exit 0
