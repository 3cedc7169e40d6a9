"""The Ray Train path against a plain single-process PyTorch loop: same data, model, batch size and mode, on the
same machine in the same run.

- plain loop: the workers' training step (``step_pairs`` + ``core.optimizer_step``) in this process, with as many
  torch threads as the Ray path has CPUs, ``batch_size`` similar pairs per step, one epoch = every similar pair;
  run before and after the Ray path, and averaged (the machine drifts);
- Ray path: ``pipeline.train.train`` as ``drlim run`` calls it (TorchTrainer, ``num_workers`` DDP workers,
  checkpoint and report every epoch), run for 1 and for 1 + E epochs; the difference is E epochs with every
  per-epoch overhead included (gradient all-reduce, metric reduction, checkpoints, reports) and start-up
  excluded; start-up is the 1-epoch run minus one steady epoch.

    python benchmarks/ray_train_throughput.py --data-root ../shared/data
    python benchmarks/ray_train_throughput.py --data-root DATA --device cuda --num-workers 1   # one GPU
    python benchmarks/ray_train_throughput.py --data-root ../shared/data --set train.prefetch=0  # no prefetch
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch
from _common import REPO, job_parser, machine, new_model, prepare, train_step

from pipeline.config import load_job
from pipeline.infrastructure.runtime import init_ray
from pipeline.train import train
from pipeline.train.allocator import keep_freed_memory


def plain_loop(data, mode: str, batch_size: int, ratio: float, epochs: int) -> tuple[float, float]:
    """(pairs scored, seconds) of ``epochs`` epochs of the plain loop."""
    model = new_model(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    steps = math.ceil(len(data.left) / batch_size)
    pairs = 0
    start = time.perf_counter()
    for _ in range(epochs * steps):
        pairs += train_step(model, optimizer, data, mode, batch_size, ratio, rng)[0]
    return pairs, time.perf_counter() - start


def ray_path(job, data, epochs: int) -> tuple[float, float]:
    """(pairs scored, seconds) of a fresh ``train`` call of ``epochs`` epochs, start-up included."""
    job = job.model_copy(update={"train": job.train.model_copy(update={"epochs": epochs})})
    with tempfile.TemporaryDirectory() as workdir:  # fresh checkpoints: nothing to resume
        start = time.perf_counter()
        result = train(job, data.store, data.pair_set, Path(workdir))
        seconds = time.perf_counter() - start
    return sum(h["pairs"] for h in result.history), seconds


def main() -> None:
    parser = job_parser(__doc__, "its data, pairs and train settings")
    parser.add_argument("--epochs", type=int, default=8, help="E: steady-state epochs measured on each path")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: the plain loop on the GPU, Ray workers on GPUs")
    parser.add_argument("--num-workers", type=int, help="Ray Train workers (default: the job's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the job's train settings on the Ray path, e.g. train.prefetch=0",
    )
    args = parser.parse_args()

    job = load_job(REPO / "jobs" / f"{args.job}.yaml", args.set)
    train_update = {"use_gpu": args.device == "cuda"}
    if args.num_workers:
        train_update["num_workers"] = args.num_workers
    job = job.model_copy(update={"train": job.train.model_copy(update=train_update)})
    cfg = job.train
    data = prepare(args.job, args.data_root, args.workdir, torch.device(args.device))
    cpus = max(1, int(cfg.num_workers * cfg.cpus_per_worker))
    torch.set_num_threads(cpus)
    keep_freed_memory()  # as every training worker does: the ratio is Ray's overhead, not the allocator's
    print(
        f"{args.job}: {len(data.features)} samples, {len(data.left)} similar pairs, mode {cfg.mode}, batch "
        f"{cfg.batch_size} similar pairs per step (and worker); {machine()}"
    )

    def plain_run() -> tuple[float, float]:
        return plain_loop(data, cfg.mode, cfg.batch_size, cfg.negatives_per_positive, args.epochs)

    # The plain loop runs before and after the Ray path: a shared machine drifts, and the mean of the two
    # brackets the Ray path's time.
    before_pairs, before_seconds = plain_run()
    init_ray()
    one_pairs, one_seconds = ray_path(job, data, 1)
    many_pairs, many_seconds = ray_path(job, data, 1 + args.epochs)
    ray.shutdown()
    after_pairs, after_seconds = plain_run()

    steady = (many_pairs - one_pairs) / (many_seconds - one_seconds)
    epoch_seconds = (many_seconds - one_seconds) / args.epochs
    plain_seconds = (before_seconds + after_seconds) / 2
    plain = (before_pairs + after_pairs) / (before_seconds + after_seconds)
    print("| path | pairs scored / s | seconds per epoch |")
    print("|---|---|---|")
    where = "1 GPU" if args.device == "cuda" else f"{cpus} torch threads"
    print(
        f"| plain loop, 1 process, {where} (before / after the Ray path) | {plain:,.0f} "
        f"({before_pairs / before_seconds:,.0f} / {after_pairs / after_seconds:,.0f}) "
        f"| {plain_seconds / args.epochs:.2f} |"
    )
    each = "1 GPU" if cfg.use_gpu else f"{cfg.cpus_per_worker:g} CPU"
    print(f"| Ray Train, {cfg.num_workers} workers x {each} (after start-up) | {steady:,.0f} | {epoch_seconds:.2f} |")
    print(
        f"\nRay path / plain loop: {steady / plain:.2f}x; Ray start-up (TorchTrainer to first step, "
        f"Ray already running): {one_seconds - epoch_seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
