"""The estimator in a notebook: ``DrLIM().fit_transform(X)`` on MNIST digits, in this process, against umap-learn and
parametric CNE (contrastive-ne) run the way a notebook runs them, on the same samples, scored by the same code.

    pip install -e ".[peers]"
    python benchmarks/estimator.py --data-root ../shared/data            # 5 000 training digits, 2 000 held out

Every method fits on the same seeded sample of MNIST's training digits (flattened to 784 values in [0, 1]) and
maps held-out digits of MNIST's test set it never saw (``transform``). Each row gives the fit's wall seconds
(``fit_transform`` of the training digits, the method's defaults; the held-out digits' ``transform`` after it) and,
from ``pipeline.evaluate`` (the code of ``drlim run``'s metrics): trustworthiness@5 of the held-out map, the
leave-one-out 5-NN accuracy inside it, and the 5-NN classifier trained on the training digits' map and applied
to the held-out map (Parametric UMAP's measure). "with labels": ``fit(X, y)`` (DrLIM: label pairs; UMAP: its
supervised ``y=``). Methods run one after another in this process, each with the machine's cores.

Logs go to stderr; stdout gets one Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.data.mnist import load_mnist
from pipeline.evaluate.metrics import knn_accuracy, trustworthiness

log = logging.getLogger("benchmarks.estimator")


def digits(root: Path, n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded samples of MNIST's training and test digits: flat float32 rows in [0, 1], and their labels."""
    rng = np.random.default_rng(seed)
    out = []
    for train, n in ((True, n_train), (False, n_test)):
        images, labels = load_mnist(root, train=train, download=False)
        rows = np.sort(rng.choice(len(images), n, replace=False))
        out += [images[rows].reshape(n, -1).astype(np.float32) / 255, labels[rows]]
    return tuple(out)


def classifier_accuracy(train_map: np.ndarray, y: np.ndarray, test_map: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(5).fit(train_map, y).score(test_map, y_test))


def row(name: str, fit: Callable[[], object], transform: Callable[[np.ndarray], np.ndarray], data: tuple) -> str:
    x, y, test, y_test = data
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the table
        train_map = fit()
    seconds = time.perf_counter() - start
    test_map = transform(test)
    train_map = np.asarray(train_map)
    scores = (
        trustworthiness(test, test_map, 5),
        knn_accuracy(test_map, y_test, 5),
        classifier_accuracy(train_map, y, test_map, y_test),
    )
    log.info("%s: %.1f s, %s", name, seconds, scores)
    return f"| {name} | {seconds:.1f} | " + " | ".join(f"{s:.4f}" for s in scores) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding MNIST/raw/")
    parser.add_argument("--train", type=int, default=5000, help="training digits (default: %(default)s)")
    parser.add_argument("--test", type=int, default=2000, help="held-out digits (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["drlim", "drlim+y", "umap", "umap+y", "cne", "pca"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    data = digits(args.data_root, args.train, args.test, args.seed)
    x, y = data[0], data[1]
    rows = []
    for method in args.methods:
        if method.startswith("drlim"):
            from pipeline import DrLIM

            model = DrLIM(random_state=args.seed)
            labels = y if method.endswith("+y") else None
            name = "DrLIM(), fit in this process" + (", with labels" if labels is not None else "")
            rows.append(row(name, lambda m=model, given=labels: m.fit_transform(x, given), model.transform, data))
        elif method.startswith("umap"):
            import umap

            model = umap.UMAP(random_state=args.seed)
            labels = y if method.endswith("+y") else None
            name = "umap-learn UMAP()" + (", with labels" if labels is not None else "")
            rows.append(row(name, lambda m=model, given=labels: m.fit_transform(x, given), model.transform, data))
        elif method == "cne":
            import cne

            model = cne.CNE(parametric=True, seed=args.seed)
            # Its parametric fit needs an ``init`` array (0.4 reads only its length; None fails there).
            start = np.zeros((len(x), 2), np.float32)
            rows.append(
                row(
                    "contrastive-ne CNE(parametric=True)",
                    lambda m=model, init=start: m.fit_transform(x, init=init),
                    model.transform,
                    data,
                )
            )
        elif method == "pca":
            from sklearn.decomposition import PCA

            model = PCA(2, random_state=args.seed)
            rows.append(row("PCA", lambda m=model: m.fit_transform(x), model.transform, data))
        else:
            parser.error(f"unknown method {method!r}")
    print(f"{args.train} training digits, {args.test} held out (seed {args.seed}); scores on the held-out map\n")
    print("| method | fit seconds | trust@5 | 5-NN (leave-one-out) | 5-NN classifier (train map -> test map) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
