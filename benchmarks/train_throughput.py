"""Training-step throughput: batch mode vs per-pair mode vs a plain PyTorch Siamese loop, one process.

Same model (the paper's LeNet), same data, same machine, same run; results are ratios within this run, so
machine load affects every row alike. Rows:

- ``plain loop``: the textbook Siamese loop -- index both sides of B similar pairs and r*B random pairs
  (no rejection of similar or self pairs), encode left and right separately, contrastive loss;
- ``per_pair``: the pipeline's per-pair mode (negatives from ``NegativeSampler``, each sample encoded once);
- ``batch``: the pipeline's batch mode (every pair among the samples of B similar pairs scored), also with
  channels-last memory format and with ``torch.compile`` to decide whether either is worth keeping.

    python benchmarks/train_throughput.py --data-root ../shared/data
    python benchmarks/train_throughput.py --data-root DATA --device cuda    # GPU machine (bf16 autocast)
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import job_parser, machine, new_model, prepare, train_step

from encoders import contrastive_loss
from pipeline.train.batches import mixed_precision


def plain_step(model, optimizer, data, mode, batch_size, ratio, rng) -> tuple[int, int]:
    device = data.features.device
    pos = rng.integers(0, len(data.left), batch_size)
    n_neg = round(batch_size * ratio)
    n = len(data.features)
    a = torch.from_numpy(np.concatenate([data.left[pos], rng.integers(0, n, n_neg)])).to(device)
    b = torch.from_numpy(np.concatenate([data.right[pos], rng.integers(0, n, n_neg)])).to(device)
    y = torch.cat([torch.zeros(batch_size, device=device), torch.ones(n_neg, device=device)])
    with mixed_precision(device):
        z1, z2 = model(data.features[a]), model(data.features[b])
    loss = contrastive_loss(z1.float(), z2.float(), y, margin=1.0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return len(y), 2 * len(y)


VARIANTS = {
    # name: (step function, mode, ratio, memory format, compile)
    "plain loop, r=1": (plain_step, None, 1.0, None, False),
    "per_pair, r=1": (train_step, "per_pair", 1.0, None, False),
    "per_pair, r=0.25": (train_step, "per_pair", 0.25, None, False),
    "batch, w=0.25": (train_step, "batch", 0.25, None, False),
    "batch, channels-last": (train_step, "batch", 0.25, torch.channels_last, False),
    "batch, torch.compile": (train_step, "batch", 0.25, None, True),
}


def measure(name, data, batch_size, steps, warmup, seed=0) -> tuple[float, float, float]:
    step_fn, mode, ratio, memory_format, compiled = VARIANTS[name]
    model = new_model(data, seed)
    features = data.features
    if memory_format is not None:
        model = model.to(memory_format=memory_format)
        data.features = features.contiguous(memory_format=memory_format)
    if compiled:
        model = torch.compile(model, dynamic=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(warmup):
        step_fn(model, optimizer, data, mode, batch_size, ratio, rng)
    warm = time.perf_counter() - start
    pairs = encoded = 0
    start = time.perf_counter()
    for _ in range(steps):
        scored, samples = step_fn(model, optimizer, data, mode, batch_size, ratio, rng)
        pairs, encoded = pairs + scored, encoded + samples
    if features.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    data.features = features
    return pairs / seconds, encoded / seconds, warm


def main() -> None:
    parser = job_parser(__doc__, "its pairs")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (compilation happens here)")
    parser.add_argument("--batch-size", type=int, default=64, help="similar pairs per step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast on cuda)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = prepare(args.job, args.data_root, args.workdir, torch.device(args.device))
    print(
        f"{args.job}: {len(data.features)} samples, {len(data.left)} similar pairs; {machine()}; "
        f"{args.steps} timed steps of {args.batch_size} similar pairs after {args.warmup} warm-up steps"
    )
    print("| variant | pairs scored / s | encoder samples / s | warm-up s |")
    print("|---|---|---|---|")
    results = {}
    for name in args.variants:
        results[name] = measure(name, data, args.batch_size, args.steps, args.warmup)
        print(f"| {name} | {results[name][0]:,.0f} | {results[name][1]:,.0f} | {results[name][2]:.1f} |", flush=True)
    if "batch, w=0.25" in results and "per_pair, r=1" in results:
        ratio = results["batch, w=0.25"][0] / results["per_pair, r=1"][0]
        print(f"\nbatch mode scores {ratio:.0f}x the pairs per second of per_pair mode (r=1)")


if __name__ == "__main__":
    main()
