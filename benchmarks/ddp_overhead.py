"""Where the Ray Train path's time goes on CPU: the workers' step as plain PyTorch DDP, without Ray.

Runs, one after another on the same data (a job's sample store and pair set, built or reused as in the other
benchmarks): the step in one process with W torch threads (the plain loop), then W processes x 1 thread under
``torch.distributed`` DDP over gloo, each on its own pair share exactly as a Ray Train worker (``read_share``,
``ShareSampling``), then the plain loop again. Epoch 0 is warm-up; pairs/s over the next ``--epochs``. Comparing
the DDP figure with ``ray_train_throughput.py``'s Ray path separates DDP's cost from Ray's.

    python benchmarks/ddp_overhead.py --data-root ../shared/data
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _common import REPO, job_parser, machine, prepare, step_on

from encoders import build_encoder
from pipeline.config import load_job
from pipeline.data import SampleStore
from pipeline.pairs import PairSet
from pipeline.train.allocator import keep_freed_memory
from pipeline.train.batches import ShareSampling


def epochs_of_steps(store_dir: str, pairs_dir: str, rank: int, world: int, batch: int, epochs: int) -> float:
    """Pairs scored per second by this rank over ``epochs`` epochs after one warm-up epoch."""
    x = torch.from_numpy(SampleStore.open(store_dir).split("train")[1])
    share = PairSet.open(pairs_dir).read_share(rank, world)
    sampling = ShareSampling.from_share(share)
    torch.manual_seed(0)
    model = build_encoder("lenet", 2, input_shape=tuple(x.shape[1:]))
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(rank)
    steps = share.per_epoch // batch
    pairs, start = 0, 0.0
    for epoch in range(1 + epochs):
        if epoch == 1:
            if world > 1:
                dist.barrier()
            pairs, start = 0, time.perf_counter()
        order = rng.permutation(len(share.left))
        for step in range(steps):
            pos = order[step * batch : (step + 1) * batch]
            pairs += step_on(model, optimizer, x, share.left[pos], share.right[pos], sampling, "batch", 0.25, rng)[0]
    if world > 1:
        dist.barrier()
    return pairs / (time.perf_counter() - start)


def ddp_worker(rank: int, world: int, port: int, args: tuple, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    keep_freed_memory()
    results.put(epochs_of_steps(*args[:2], rank, world, *args[2:]))
    dist.destroy_process_group()


def ddp(world: int, args: tuple) -> float:
    with socket.socket() as s:  # a free loopback port for the process group
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=ddp_worker, args=(r, world, port, args, results)) for r in range(world)]
    for worker in workers:
        worker.start()
    rates = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(rates)


def main() -> None:
    parser = job_parser(__doc__, "its data, pairs, workers, batch size")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs after one warm-up epoch")
    args = parser.parse_args()
    cfg = load_job(REPO / "jobs" / f"{args.job}.yaml").train
    data = prepare(args.job, args.data_root, args.workdir, torch.device("cpu"))
    world = cfg.num_workers
    step_args = (str(data.store.directory), str(data.pair_set.directory), cfg.batch_size, args.epochs)
    torch.set_num_threads(world)
    keep_freed_memory()  # as the training workers (and the DDP processes here) do
    before = epochs_of_steps(*step_args[:2], 0, 1, *step_args[2:])
    ddp_rate = ddp(world, step_args)
    after = epochs_of_steps(*step_args[:2], 0, 1, *step_args[2:])
    plain = (before + after) / 2
    print(f"{args.job}, batch mode, {cfg.batch_size} similar pairs per step and process; {machine()}")
    print("| path | pairs scored / s | vs plain |")
    print("|---|---|---|")
    print(
        f"| plain loop, 1 process x {world} threads (before / after) | {plain:,.0f} ({before:,.0f} / {after:,.0f}) "
        f"| 1.00 |"
    )
    print(f"| DDP over gloo, {world} processes x 1 thread, no Ray | {ddp_rate:,.0f} | {ddp_rate / plain:.2f} |")


if __name__ == "__main__":
    main()
