"""Negative sampler throughput and memory at N = 1 000 000 samples, k = 5 similar partners each.

One process, one core (numpy's integer generation and ``searchsorted`` are single-threaded). The similar graph
is a random directed 5-NN-like graph (5 partners per sample); the sampler holds it as sorted edge keys and a
Bloom bitmap. Memory is the sampler's own arrays (exact byte counts) and the peak traced by ``tracemalloc``
while drawing.

    python benchmarks/negative_sampler.py
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from pipeline.pairs import NegativeSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--draw", type=int, default=1_000_000, help="negatives per call")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    left = np.repeat(np.arange(args.n, dtype=np.int64), args.k)
    right = (left + rng.integers(1, args.n, len(left))) % args.n

    start = time.perf_counter()
    sampler = NegativeSampler(args.n, left, right)
    build = time.perf_counter() - start
    own_bytes = sampler._keys.nbytes + sampler._bloom.nbytes

    tracemalloc.start()
    drawn, start = 0, time.perf_counter()
    for call in range(args.calls):
        i, j = sampler.sample(args.draw, np.random.default_rng([0, call]))
        drawn += len(i)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # Correctness on what was drawn last: no self pair, no similar pair.
    assert not (i == j).any() and not sampler.is_similar(i, j).any()
    print(
        f"N = {args.n:,}, k = {args.k}, {sampler.n_similar:,} similar pairs, "
        f"{sampler.n_dissimilar:,} implicit dissimilar pairs"
    )
    print("| measure | value |")
    print("|---|---|")
    print(f"| build (sort the edge keys, fill the Bloom bitmap) | {build:.2f} s |")
    per_sample = own_bytes / args.n
    print(f"| sampler memory (edge keys + bitmap) | {own_bytes / 2**20:.0f} MiB ({per_sample:.0f} bytes per sample) |")
    print(f"| peak extra memory while drawing {args.draw:,} per call | {peak / 2**20:.0f} MiB |")
    print(f"| negatives per second, one core | {drawn / seconds:,.0f} |")


if __name__ == "__main__":
    main()
