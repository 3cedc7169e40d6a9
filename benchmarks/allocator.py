"""The training step with glibc's default malloc settings against ``keep_freed_memory`` (what training workers
set), in the main thread and in a second thread (where Ray Train runs a worker's training function).

Each variant runs in a fresh process (malloc settings cannot be undone), ``--epochs`` epochs of the plain loop
(``_common.train_step``: the workers' step, ``batch_size`` similar pairs of the job), ``--threads`` torch
threads; the variants alternate for ``--rounds`` rounds so that machine drift hits them alike. Reported:
pairs/s and the share of the process's CPU time spent in the kernel.

    python benchmarks/allocator.py --data-root ../shared/data
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time

import numpy as np
import torch
import torch.multiprocessing as mp
from _common import REPO, job_parser, load, machine, new_model, prepare, train_step

from pipeline.config import load_job
from pipeline.data import SampleStore
from pipeline.pairs import PairSet
from pipeline.train.allocator import keep_freed_memory

VARIANTS = (("default", False, False), ("default", False, True), ("kept", True, False), ("kept", True, True))


def measure(
    store_dir: str, pairs_dir: str, kept: bool, in_thread: bool, threads: int, batch: int, epochs: int, results
) -> None:
    """Child process: (pairs/s, kernel share of CPU time) of ``epochs`` epochs after one warm-up epoch."""
    if kept:
        keep_freed_memory()
    torch.set_num_threads(threads)
    data = load(SampleStore.open(store_dir), PairSet.open(pairs_dir), torch.device("cpu"))
    out = {}

    def loop() -> None:
        model = new_model(data)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        steps = math.ceil(len(data.left) / batch)
        for _ in range(steps):  # warm-up epoch
            train_step(model, optimizer, data, "batch", batch, 0.25, rng)
        cpu, start, pairs = os.times(), time.perf_counter(), 0
        for _ in range(epochs * steps):
            pairs += train_step(model, optimizer, data, "batch", batch, 0.25, rng)[0]
        seconds, end = time.perf_counter() - start, os.times()
        user, system = end.user - cpu.user, end.system - cpu.system
        out["result"] = (pairs / seconds, system / max(user + system, 1e-9))

    if in_thread:
        worker = threading.Thread(target=loop)
        worker.start()
        worker.join()
    else:
        loop()
    results.put(out["result"])


def main() -> None:
    parser = job_parser(__doc__, "its data, pairs and batch size")
    parser.add_argument("--epochs", type=int, default=2, help="measured epochs per variant and round")
    parser.add_argument("--rounds", type=int, default=2, help="times each variant runs (alternating)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a Ray Train CPU worker has 1)")
    args = parser.parse_args()
    batch = load_job(REPO / "jobs" / f"{args.job}.yaml").train.batch_size
    data = prepare(args.job, args.data_root, args.workdir, torch.device("cpu"))
    torch.set_num_threads(args.threads)  # as the children run (and as machine() reports)
    context = mp.get_context("spawn")
    runs: dict[tuple, list] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            results = context.Queue()
            child = context.Process(
                target=measure,
                args=(
                    str(data.store.directory),
                    str(data.pair_set.directory),
                    variant[1],
                    variant[2],
                    args.threads,
                    batch,
                    args.epochs,
                    results,
                ),
            )
            child.start()
            runs[variant].append(results.get())
            child.join()
    base = statistics.median(r[0] for r in runs[VARIANTS[0]])
    print(f"{args.job}, batch mode, {batch} similar pairs per step, {args.threads} torch thread(s); {machine()}")
    print(
        "| malloc | loop runs in | pairs scored / s (median; each round) | kernel share of CPU time "
        "| vs default, main thread |\n|---|---|---|---|---|"
    )
    for (name, _, in_thread), values in runs.items():
        rate = statistics.median(v[0] for v in values)
        each = " / ".join(f"{v[0]:,.0f}" for v in values)
        kernel = statistics.median(v[1] for v in values)
        print(
            f"| {name} | {'a second thread' if in_thread else 'the main thread'} | {rate:,.0f} ({each}) "
            f"| {kernel:.0%} | {rate / base:.2f}x |"
        )


if __name__ == "__main__":
    main()
