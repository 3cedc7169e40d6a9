#!/usr/bin/env bash
# Stop the Ray head and MLflow server that infra/local/start.sh started (same DRLIM_LOCAL_DIR), with every
# process they started, and nothing else. Safe to run twice.
set -uo pipefail

state=$(realpath -m "${DRLIM_LOCAL_DIR:-.drlim-local}")
alive() {  # a live (not zombie) process in session $1
  ps -eo sid=,stat= | awk -v sid="$1" '$1 == sid && $2 !~ /^Z/ {n++} END {exit !n}'
}
# TERM both sessions first, then wait for them together, then KILL what is left. MLflow gets up to 10 s to
# finish its requests; Ray's daemons (GCS, raylet, agents) hold no data and ignore TERM for ~15 s here, so they
# get 2 s (as `ray stop --force` they are then killed).
declare -A sids=() grace=([mlflow]=50 [ray]=10)  # in steps of 0.2 s
for server in mlflow ray; do
  file=$state/$server.sid
  [[ -f $file ]] || continue
  sid=$(<"$file")
  if [[ $sid =~ ^[0-9]+$ ]]; then
    sids[$server]=$sid
    pkill -TERM -s "$sid" 2>/dev/null
  fi
done
for step in $(seq 50); do
  left=0
  for server in "${!sids[@]}"; do
    (( step <= grace[$server] )) && alive "${sids[$server]}" && left=1
  done
  (( left )) || break
  sleep 0.2
done
for sid in "${sids[@]}"; do pkill -KILL -s "$sid" 2>/dev/null; done
for _ in $(seq 10); do  # until the killed processes are gone
  left=0
  for sid in "${sids[@]}"; do alive "$sid" && left=1; done
  (( left )) || break
  sleep 0.2
done
for server in mlflow ray; do
  file=$state/$server.sid
  [[ -f $file ]] || continue
  rm -f "$file"
  echo "stopped $server (session ${sids[$server]:-?})"
done
exit 0
