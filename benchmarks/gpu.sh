#!/usr/bin/env bash
# The training benchmarks on a GPU machine, as one prepared command (a few minutes):
#   DRLIM_DATA_ROOT=/path/to/data bash benchmarks/gpu.sh
# Throughput of every training variant with bf16 autocast on the GPU, then quality after 0.5/1/2 minutes of
# training in each mode, the Ray Train path (1 GPU worker; features on the device, then streamed) against
# the plain loop, and nvidia-smi's utilisation sampled while the benchmarks run.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DRLIM_DATA_ROOT:?set DRLIM_DATA_ROOT to a folder holding MNIST/raw/}"
out="${OUT:-/tmp/drlim-gpu-bench}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > "$out/gpu_utilisation.csv" &
sampler=$!
trap 'kill $sampler' EXIT
python benchmarks/train_throughput.py --data-root "$DRLIM_DATA_ROOT" --device cuda --batch-size 512 \
    --steps 300 --threads 4 | tee "$out/train_throughput.md"
python benchmarks/quality_per_time.py --data-root "$DRLIM_DATA_ROOT" --device cuda --batch-size 512 \
    --budgets 0.5 1 2 --threads 4 --plot "$out/quality_per_time.png" | tee "$out/quality_per_time.md"
python benchmarks/ray_train_throughput.py --data-root "$DRLIM_DATA_ROOT" --device cuda --num-workers 1 \
    --epochs 8 | tee "$out/ray_train_throughput.md"
# The same with the features streamed from the sample store's memory map (pinned, non-blocking copies).
python benchmarks/ray_train_throughput.py --data-root "$DRLIM_DATA_ROOT" --device cuda --num-workers 1 \
    --epochs 8 --set train.features=stream | tee "$out/ray_train_throughput_streamed.md"
echo "mean GPU utilisation (%):"
awk -F', ' 'NR > 1 { sub(/ %/, "", $2); s += $2; n++ } END { if (n) printf "%.0f\n", s / n }' "$out/gpu_utilisation.csv"
