"""kNN graph benchmarks: the Ray pair stage's search against single-process FAISS and scikit-learn, and an
approximate graph at 1 000 000 samples.

``exact``: the full MNIST training set (60 000 x 784), k = 5, self excluded. The Ray stage (``knn_graph``,
one shared ``IndexFlatL2``, query shards in parallel tasks) against one process calling FAISS with all cores,
and against ``sklearn.neighbors.NearestNeighbors(algorithm="brute")``; same machine, same run. The Ray graph
must equal FAISS's.

``approx``: 1 000 000 samples of 64 dimensions -- MNIST training digits shifted by -2..2 px in x and y (25
copies, the first 1 000 000), projected on their first 64 principal components: real, clustered data of
the size the issue names. IVF-Flat through the Ray stage; recall@5 against exact search on 1 000 random queries;
peak memory is the largest sum of resident memory over this process and its Ray processes (sampled).

    python benchmarks/knn_graph.py --data-root ../shared/data --part exact
    python benchmarks/knn_graph.py --data-root ../shared/data --part approx
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from pathlib import Path

import faiss
import numpy as np
import ray

from pipeline.data.mnist import load_mnist
from pipeline.data.transforms import shift_x, shift_y
from pipeline.pairs.knn import build_flat_index, knn_graph, knn_recall, knn_search, make_index


def tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants, from /proc (Linux)."""
    parent, rss = {}, {}
    for stat in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in stat.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid = int(stat.parent.name)
        parent[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    tree, frontier = {root}, [root]
    while frontier:
        children = [p for p, pp in parent.items() if pp in frontier and p not in tree]
        tree.update(children)
        frontier = children
    return sum(rss.get(p, 0) for p in tree)


class PeakMemory:
    """Samples the resident memory of this process and all its descendants (Ray's workers and stores)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(os.getpid()))
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def exact(data_root: str, k: int) -> None:
    from sklearn.neighbors import NearestNeighbors

    images, _ = load_mnist(data_root, train=True, download=False)
    x = (images.reshape(len(images), -1) / 255.0).astype(np.float32)
    n = len(x)
    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    ray_graph, ray_s = timed(knn_graph, x, k, num_tasks=2 * cpus)
    ray.shutdown()
    faiss.omp_set_num_threads(cpus)
    faiss_graph, faiss_s = timed(lambda: knn_search(build_flat_index(x), x, np.arange(n), k))
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", n_jobs=cpus).fit(x)
    (_, sk), sk_s = timed(nn.kneighbors, x)
    sk_graph = np.array([[j for j in row if j != i][:k] for i, row in enumerate(sk)])
    same = np.array_equal(ray_graph, faiss_graph)
    agree = np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(faiss_graph, sk_graph)])
    print(f"MNIST training set: {n:,} x {x.shape[1]}, k = {k}, {cpus} cores")
    print("| method | seconds | ratio to single-process FAISS |")
    print("|---|---|---|")
    for name, s in [("Ray stage (knn_graph, %d tasks)" % (2 * cpus), ray_s), ("FAISS, one process", faiss_s),
                    ("sklearn brute force", sk_s)]:
        print(f"| {name} | {s:.1f} | {s / faiss_s:.2f}x |")
    print(f"\nRay graph equals FAISS's exactly: {same}; sklearn agrees on {agree:.4%} of neighbours (ties aside)")


def shifted_mnist_64d(data_root: str, n: int) -> np.ndarray:
    images, _ = load_mnist(data_root, train=True, download=False)
    x = (images[:, None] / 255.0).astype(np.float32)
    pca = faiss.PCAMatrix(784, 64)
    pca.train(x.reshape(len(x), -1))
    blocks, have = [], 0
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            if have >= n:
                break
            block = shift_y(shift_x(x, dx), dy).reshape(len(x), -1)
            blocks.append(pca.apply(np.ascontiguousarray(block)))
            have += len(block)
    return np.concatenate(blocks)[:n]


def approx(data_root: str, k: int, n: int, nlist: int | None, nprobe: int) -> None:
    cpus = os.cpu_count() or 1
    x, prep_s = timed(shifted_mnist_64d, data_root, n)
    options = {"nprobe": nprobe, **({"nlist": nlist} if nlist else {})}
    backend = make_index("ivf", options)
    with PeakMemory() as memory:
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        start = time.perf_counter()
        graph = knn_graph(x, k, num_tasks=2 * cpus, backend=backend)
        graph_s = time.perf_counter() - start
        ray.shutdown()
    recall, recall_s = timed(knn_recall, x, graph, 1000)
    print(f"{len(x):,} x {x.shape[1]} (shifted MNIST, PCA-64; built in {prep_s:.0f} s), k = {k}, {cpus} cores, "
          f"IVF-Flat {backend.options}")
    print("| measure | value |")
    print("|---|---|")
    print(f"| graph (train + add + Ray search) | {graph_s:.0f} s ({graph_s / 60:.1f} min) |")
    print(f"| recall@{k} vs exact, 1 000 queries | {recall:.4f} (checked in {recall_s:.0f} s) |")
    print(f"| peak resident memory, driver + Ray | {memory.peak / 2**30:.2f} GiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw/")
    parser.add_argument("--part", choices=["exact", "approx"], required=True)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--n", type=int, default=1_000_000, help="approx: samples")
    parser.add_argument("--nlist", type=int, default=None, help="approx: IVF cells (default 4 sqrt(n))")
    parser.add_argument("--nprobe", type=int, default=16, help="approx: cells searched per query")
    args = parser.parse_args()
    if args.part == "exact":
        exact(args.data_root, args.k)
    else:
        approx(args.data_root, args.k, args.n, args.nlist, args.nprobe)


if __name__ == "__main__":
    main()
