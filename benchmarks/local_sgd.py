"""Local SGD (``train.local_steps``) against DDP on the Ray Train path, on CPU: pairs scored per second.

On the job's real data, pairs and encoder (default ``mnist_all``: the 4 x 256 MLP), the Ray Train path as
``drlim run`` calls it, with the job's workers, for each H of ``--local-steps`` (1 = DDP: gradients all-reduced
every step), as a ratio against the first H within this run: a run of 1 epoch and one of 1 + E epochs, whose
difference is E steady epochs with every per-epoch cost (metric reduction, checkpoint, report) in and start-up
out. Also one process with one torch thread (``TrainingCore``, no all-reduce at all), milliseconds per step: what
each worker would take if averaging cost nothing.

    python benchmarks/local_sgd.py --data-root ../shared/data
"""

from __future__ import annotations

import math
import time

import ray
import torch
from _common import REPO, job_parser, machine, prepare
from ray_train_throughput import ray_path

from encoders import build_encoder
from pipeline.config import load_job
from pipeline.infrastructure.runtime import init_ray
from pipeline.train.allocator import keep_freed_memory
from pipeline.train.core import TrainingCore
from pipeline.train.features import DeviceFeatures


def step_milliseconds(job, data, steps: int) -> float:
    """Milliseconds per ``TrainingCore`` step over ``steps`` steps (after 20 warm-up steps), one process."""
    torch.manual_seed(0)
    model = build_encoder(**job.encoder.spec(data.store.feature_shape))
    core = TrainingCore(
        job.train,
        model,
        DeviceFeatures(data.features.numpy(), torch.device("cpu")),
        data.pair_set.read_share(0, 1),
        job.seed,
        torch.device("cpu"),
    )
    core.steps = 20
    core.run_epoch(0)
    core.steps = steps
    _, seconds = core.run_epoch(1)
    return 1000 * seconds / steps


def main() -> None:
    parser = job_parser(__doc__, "its data, pairs, encoder and train settings")
    parser.set_defaults(job="mnist_all")
    parser.add_argument("--local-steps", type=int, nargs="+", default=[1, 4, 16], help="H values (1 first)")
    parser.add_argument("--epochs", type=int, default=2, help="E: steady epochs measured on the Ray path")
    parser.add_argument("--steps", type=int, default=600, help="steps per one-process measurement")
    args = parser.parse_args()

    job = load_job(REPO / "jobs" / f"{args.job}.yaml")
    data = prepare(args.job, args.data_root, args.workdir, torch.device("cpu"))
    torch.set_num_threads(1)
    keep_freed_memory()  # as every training worker does
    print(
        f"{args.job}: {len(data.features)} samples, encoder {job.encoder.name} {job.encoder.options}, batch "
        f"{job.train.batch_size} similar pairs per step and worker; {machine()}\n"
    )

    alone = step_milliseconds(job, data, args.steps)
    print(f"One process, 1 torch thread, no all-reduce: {alone:.2f} ms per step\n")

    init_ray()
    rates = {}
    for local_steps in args.local_steps:
        train = job.train.model_copy(update={"local_steps": local_steps})
        each = job.model_copy(update={"train": train})
        one_pairs, one_seconds = ray_path(each, data, 1)
        many_pairs, many_seconds = ray_path(each, data, 1 + args.epochs)
        rates[local_steps] = (
            (many_pairs - one_pairs) / (many_seconds - one_seconds),
            (many_seconds - one_seconds) / args.epochs,
        )
    ray.shutdown()
    base = rates[args.local_steps[0]][0]
    cfg = job.train
    steps = math.ceil(data.pair_set.read_share(0, cfg.num_workers).per_epoch / cfg.batch_size)
    print(
        f"| Ray Train, {cfg.num_workers} workers x {cfg.cpus_per_worker:g} CPU, {steps} steps an epoch | pairs "
        f"scored / s | seconds per epoch | ms per step | vs H = {args.local_steps[0]} |"
    )
    print("|---|---|---|---|---|")
    for local_steps, (rate, epoch_seconds) in rates.items():
        what = "DDP, gradients every step" if local_steps == 1 else "weights averaged every H steps"
        print(
            f"| H = {local_steps} ({what}) | {rate:,.0f} | {epoch_seconds:.1f} | "
            f"{1000 * epoch_seconds / steps:.2f} | {rate / base:.2f}x |"
        )


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"\n{time.perf_counter() - started:.0f} s in all")
