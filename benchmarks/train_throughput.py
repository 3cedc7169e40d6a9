"""Training-step throughput of the two modes, same model and machine, in one process.

Measures pairs scored per second and encoder samples per second for ``per_pair`` mode (the paper's
procedure: B similar + r*B sampled dissimilar pairs, both sides encoded) and ``batch`` mode (the samples of
B similar pairs encoded once, every pair among them scored), on the MNIST 4/9 training set and its 5-NN
pairs. Results are ratios within this run, so machine load affects both sides alike.

    python benchmarks/train_throughput.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from encoders import build_encoder
from pipeline.data.mnist import load_mnist, select_digits
from pipeline.pairs import NegativeSampler
from pipeline.pairs.knn import build_flat_index, knn_search
from pipeline.pairs.shards import canonical_pairs, knn_pairs
from pipeline.train.batches import step_pairs, weighted_loss


def run_mode(mode, features, left, right, sampler, degree, batch_size, ratio, steps, seed=0):
    torch.manual_seed(seed)
    model = build_encoder("lenet", 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    pairs_scored = encoded = 0
    start = time.perf_counter()
    for _ in range(steps):
        pos = rng.integers(0, len(left), batch_size)
        step = step_pairs(mode, left[pos], right[pos], sampler, ratio, degree, rng)
        loss, *_ = weighted_loss(model, features, step, margin=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        pairs_scored += len(step.label)
        encoded += len(step.samples)
    seconds = time.perf_counter() - start
    return pairs_scored / seconds, encoded / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = load_mnist(args.data_root, train=True, download=False)
    idx = select_digits(labels, [4, 9], 3000)
    x = (images[idx, None] / 255.0).astype(np.float32)
    flat = x.reshape(len(x), -1)
    left, right, _ = canonical_pairs(*knn_pairs(knn_search(build_flat_index(flat), flat, np.arange(len(x)), 5)))
    sampler = NegativeSampler(len(x), left, right)
    degree = np.maximum(sampler.degree(), 1).astype(np.float64)
    features = torch.from_numpy(x)
    print(f"MNIST 4/9: {len(x)} samples, {len(left)} similar pairs; {args.steps} steps per mode, "
          f"{args.threads} torch threads, batch 64 similar pairs, ratio 0.25 (per_pair also at 1.0)")
    print("| mode | pairs scored / s | encoder samples / s |")
    print("|---|---|---|")
    results = {}
    for name, mode, ratio in [("per_pair, r=1", "per_pair", 1.0), ("per_pair, r=0.25", "per_pair", 0.25),
                              ("batch, w=0.25", "batch", 0.25)]:
        results[name] = run_mode(mode, features, left, right, sampler, degree, 64, ratio, args.steps)
        print(f"| {name} | {results[name][0]:,.0f} | {results[name][1]:,.0f} |")
    ratio = results["batch, w=0.25"][0] / results["per_pair, r=1"][0]
    print(f"\nbatch mode scores {ratio:.0f}x the pairs per second of per_pair mode (r=1)")


if __name__ == "__main__":
    main()
