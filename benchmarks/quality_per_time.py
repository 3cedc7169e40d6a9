"""Held-out quality after equal wall-clock training budgets: batch mode vs per-pair mode.

Translated MNIST with the paper's invariance recipe (``jobs/mnist_translated_invariant.yaml``: 30 000
samples, 619 907 similar pairs). Each mode trains the same LeNet from the same seed with the same optimiser
(Adam, constant learning rate, so a snapshot does not depend on the total budget), the same batch size (similar
pairs per step) and the same similar:dissimilar ratio. At each budget the clock stops, and the model is
scored on the held-out test digits: trustworthiness@5 and 5-NN accuracy on the 1 991 test originals,
translation-invariance ratio on all 9 955 test samples (originals and their shifted copies).

    python benchmarks/quality_per_time.py --data-root ../shared/data --budgets 1 2 5
    python benchmarks/quality_per_time.py --data-root DATA --device cuda --budgets 1 2 5   # GPU machine, bf16

Prints a Markdown table and writes a PNG of quality against time next to ``--plot``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, new_model, prepare, train_step

from pipeline.evaluate import embed, invariance_ratio, knn_accuracy, trustworthiness


def scores(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, origin: np.ndarray, original: np.ndarray) -> dict:
    model.eval()
    z = embed(model, x, batch_size=2048)
    model.train()
    return {
        "trust5": trustworthiness(x[original], z[original], 5),
        "knn5": knn_accuracy(z[original], y[original], 5),
        "invariance": invariance_ratio(z, origin),
    }


def run(mode, data, test, budgets, batch_size, ratio, lr, seed) -> list[dict]:
    model = new_model(data, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    rows, trained, steps, pairs, encoded = [], 0.0, 0, 0, 0
    for budget in budgets:
        while trained < budget * 60:
            start = time.perf_counter()
            scored, samples = train_step(model, optimizer, data, mode, batch_size, ratio, rng)
            if data.features.device.type == "cuda":
                torch.cuda.synchronize()
            trained += time.perf_counter() - start
            steps, pairs, encoded = steps + 1, pairs + scored, encoded + samples
        row = {
            "mode": mode,
            "minutes": budget,
            "steps": steps,
            "pairs": pairs,
            "encoded": encoded,
            **scores(model, *test),
        }
        print(
            f"  {mode:8s} {budget:5.1f} min  {steps:7d} steps  trust@5 {row['trust5']:.4f}  "
            f"invariance {row['invariance']:.4f}  5-NN {row['knn5']:.4f}",
            flush=True,
        )
        rows.append(row)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode]
        minutes = [r["minutes"] for r in mine]
        axes[0].plot(minutes, [r["trust5"] for r in mine], "o-", label=mode)
        axes[1].plot(minutes, [r["invariance"] for r in mine], "o-", label=mode)
    axes[0].set(xlabel="training minutes", ylabel="trustworthiness@5 (test originals)", title="higher is better")
    axes[1].set(xlabel="training minutes", ylabel="translation-invariance ratio (test)", title="lower is better")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("Translated MNIST, invariance recipe: quality per wall-clock")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw/")
    parser.add_argument("--workdir", default="/tmp/drlim-bench", help="sample store and pair set (reused)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[1, 2, 5], help="minutes, increasing")
    parser.add_argument("--modes", nargs="+", default=["per_pair", "batch"], choices=["per_pair", "batch"])
    parser.add_argument("--batch-size", type=int, default=128, help="similar pairs per step")
    parser.add_argument("--ratio", type=float, default=0.25, help="dissimilar:similar, as in the job")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast on cuda)")
    parser.add_argument("--plot", type=Path, default=Path("docs/images/quality_per_time.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    data = prepare("mnist_translated_invariant", args.data_root, args.workdir, device)
    _, x, y = data.store.split("test")
    origin, transform = data.store.origins("test")
    test = (x, y, origin, np.array([t is None for t in transform]))
    print(
        f"{machine()}; {len(data.left)} similar pairs; budgets {args.budgets} min; batch {args.batch_size}, "
        f"ratio {args.ratio}, Adam lr {args.lr}"
    )
    rows = [
        row
        for mode in args.modes
        for row in run(mode, data, test, args.budgets, args.batch_size, args.ratio, args.lr, seed=0)
    ]
    print("\n| mode | minutes | steps | pairs scored | samples encoded | trust@5 | 5-NN acc. | invariance ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['minutes']:g} | {r['steps']:,} | {r['pairs']:,} | {r['encoded']:,} | "
            f"{r['trust5']:.4f} | {r['knn5']:.4f} | {r['invariance']:.4f} |"
        )
    plot(rows, args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
