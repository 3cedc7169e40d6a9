"""Memory one training worker needs for its pair data, by number of workers, against one worker holding all.

A training worker reads only its own pair shards (``PairSet.read_share``): the pairs of the samples it owns,
then builds its negative sampler and weights from them (``ShareSampling.from_share``). So the pair memory per
worker should fall roughly as 1 / workers; what does not fall are the per-sample arrays every worker keeps for
all N samples (``owned``, ``touches``). This measures it on a synthetic pair set: N samples, each linked to k
random others (~N*k unordered similar pairs, 2*N*k directed rows), in ``--shards`` shards, built once in
``--workdir`` (reused when present). Each worker count runs worker 0 in a fresh spawned process, which reports
its peak resident memory increase (``VmHWM`` from /proc/self/status, after imports) over reading the share and
building the sampler, with both kept alive, and the time taken; the 1-worker row is the baseline.

    python benchmarks/pair_share_memory.py
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.pairs import PairSet
from pipeline.pairs.shards import both_ways, write_pair_shards
from pipeline.train.batches import ShareSampling


def peak_rss() -> int:
    """This process's peak resident memory so far (``VmHWM``), in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def build(directory: Path, n: int, k: int, num_shards: int, seed: int) -> PairSet:
    """The synthetic pair set in ``directory``, written once and reused when its parameters match."""
    params = {"n": n, "k": k, "seed": seed}
    if (directory / "manifest.json").is_file():
        pairs = PairSet.open(directory)
        if pairs.manifest["provenance"] == params and pairs.manifest["num_shards"] == num_shards:
            return pairs
    rng = np.random.default_rng(seed)
    left = np.repeat(np.arange(n, dtype=np.int64), k)
    right = (left + rng.integers(1, n, len(left))) % n  # k random partners each, never itself
    write_pair_shards(directory, both_ways(left, right, "knn"), n, num_shards, params)
    return PairSet.open(directory)


def measure(directory: str, world: int) -> tuple[int, int, int, float]:
    """Worker 0 of ``world``: (directed pairs held, peak RSS increase in bytes, seconds)."""
    pairs = PairSet.open(directory)
    before, start = peak_rss(), time.perf_counter()
    share = pairs.read_share(0, world)
    sampling = ShareSampling.from_share(share)
    seconds = time.perf_counter() - start
    grown = peak_rss() - before  # the peak, while the share and the sampler are both alive
    del sampling
    return len(share.left), grown, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="samples")
    parser.add_argument("--k", type=int, default=5, help="random similar partners per sample")
    parser.add_argument("--shards", type=int, default=16, help="pair shards (at least the largest worker count)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8], help="worker counts to measure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the pair set is built and reused (default: a folder in the temp directory)",
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.gettempdir()) / "drlim-pair-share-memory"
    directory = workdir / f"n{args.n}-k{args.k}-s{args.shards}-seed{args.seed}"
    start = time.perf_counter()
    pairs = build(directory, args.n, args.k, args.shards, args.seed)
    build_s = time.perf_counter() - start

    rows = []
    for world in (1, *[w for w in args.workers if w != 1]):  # the 1-worker baseline first
        with mp.get_context("spawn").Pool(1) as pool:  # fresh process: a clean peak per worker count
            rows.append((world, *pool.apply(measure, (str(directory), world))))

    from _common import machine  # imports torch: only in this process, not in the measured ones

    print(f"`python {' '.join(sys.argv)}`; {machine()}")
    print(
        f"N = {args.n:,} samples, k = {args.k}, {pairs.manifest['similar_pairs']:,} unordered similar pairs "
        f"in {args.shards} shards at {directory} (built or reused in {build_s:.1f} s)"
    )
    print("| workers | directed pairs held by worker 0 | peak RSS increase (MiB) | ratio to 1 worker | seconds |")
    print("|---|---|---|---|---|")
    base = rows[0][2]
    for world, held, grown, seconds in rows:
        print(f"| {world} | {held:,} | {grown / 2**20:.0f} | {grown / base:.2f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
