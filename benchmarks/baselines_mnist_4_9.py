"""Classical baselines on the DrLIM MNIST 4/9 test set, with the same metrics as `drlim run`.

PCA, Isomap and LLE are fit on the test set itself (transductive); DrLIM maps the test set without seeing it.

    python benchmarks/baselines_mnist_4_9.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import time

from sklearn.decomposition import PCA
from sklearn.manifold import Isomap, LocallyLinearEmbedding

from pipeline.data.mnist import load_mnist, select_digits
from pipeline.evaluate.metrics import knn_accuracy, trustworthiness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    args = parser.parse_args()
    images, labels = load_mnist(args.data_root, train=False, download=False)
    idx = select_digits(labels, [4, 9], None)
    x, y = images[idx].reshape(len(idx), -1) / 255.0, labels[idx]
    methods = {
        "PCA": PCA(n_components=2, random_state=0),
        "Isomap (k=12)": Isomap(n_neighbors=12, n_components=2),
        "LLE (k=12)": LocallyLinearEmbedding(n_neighbors=12, n_components=2, random_state=0),
    }
    print(f"| method ({len(y)} test fours and nines) | trustworthiness@5 | trustworthiness@12 | 5-NN accuracy | seconds |")
    print("|---|---|---|---|---|")
    for name, method in methods.items():
        start = time.perf_counter()
        z = method.fit_transform(x)
        seconds = time.perf_counter() - start
        print(f"| {name} | {trustworthiness(x, z, 5):.3f} | {trustworthiness(x, z, 12):.3f} | "
              f"{knn_accuracy(z, y, 5):.3f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
