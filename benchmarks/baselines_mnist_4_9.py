"""Classical baselines on the DrLIM MNIST 4/9 test set, with the same metrics as `drlim run`.

PCA, Isomap and LLE are fit on the test set itself (transductive); DrLIM maps the test set without seeing it.

    python benchmarks/baselines_mnist_4_9.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse

import numpy as np

from pipeline.config import EvaluateConfig
from pipeline.data.mnist import load_mnist, select_digits
from pipeline.evaluate import HeldOut, score
from pipeline.orchestration.report import baselines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    args = parser.parse_args()
    images, labels = load_mnist(args.data_root, train=False, download=False)
    idx = select_digits(labels, [4, 9], None)
    n = len(idx)
    # The same samples, fits and scoring code as `drlim report`, without running DrLIM.
    data = HeldOut(
        "test",
        np.arange(n),
        (images[idx, None] / 255.0).astype(np.float32),
        labels[idx],
        np.arange(n),
        np.full(n, None, dtype=object),
        {},
    )
    print(f"| method ({n} test fours and nines) | trustworthiness@5 | trustworthiness@12 | 5-NN accuracy | seconds |")
    print("|---|---|---|---|---|")
    for name, (embedding, seconds, _) in baselines(data, dim=2).items():
        m = score(data, embedding, EvaluateConfig())
        print(
            f"| {name} | {m['trustworthiness_5']:.3f} | {m['trustworthiness_12']:.3f} | "
            f"{m['knn_accuracy_5']:.3f} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
