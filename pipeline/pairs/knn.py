"""k nearest neighbours in input space with FAISS: index backends.

Backends (``pairs.index``): ``flat`` is exact L2 search; ``ivf`` (inverted lists, ``nprobe`` of ``nlist``
cells searched) and ``hnsw`` (a navigable small-world graph) are approximate, for large N; any other FAISS index
is named by its index-factory string (``FactoryIndex``, e.g. ``PCA64,IVF2048,Flat`` for 784-d rows at 1M).
An index may be built in parts (``knn_parts.py``): ``trained`` gives each part the same empty index (for IVF:
the same trained centroids, so every part routes a query to the same cells and the merged result equals one whole
index's), and rows are added with their sample ids. Recall@k of an approximate index is measured against brute force
(``knn_parts.exact_nearest``).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import faiss
import numpy as np

from pipeline.config.choices import INDEXES, is_factory_string
from pipeline.errors import ConfigError


def training_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """The sorted rows (of ``n``) an index trains on: ``size`` of them, drawn with ``seed``."""
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


class IndexBackend:
    """A FAISS index type: its options (registered with their defaults in ``pipeline/config/choices.py``,
    ``INDEXES``, and validated there), how to train, fill and search it."""

    exact: ClassVar[bool] = False

    def __init__(self, **options: int | None) -> None:
        self.options: dict[str, Any] = dict(options)

    def check(self, d: int) -> None:
        """Raise ``ConfigError`` when the index cannot take ``d``-dimensional rows (before any work starts)."""

    def training_size(self, n: int) -> int:
        """How many of ``n`` rows the index trains on (0: it needs no training); records derived options."""
        return 0

    def trained(self, d: int, sample: np.ndarray | None, seed: int = 0) -> faiss.Index:
        """An empty index for ``d``-dimensional rows, trained on ``sample`` when it needs training, that takes
        rows with their ids (``add_with_ids``)."""
        raise NotImplementedError

    def configure(self, index: faiss.Index) -> None:
        """Apply the search options to a (deserialised) index."""

    def route(self, index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Where each query is searched (IVF: its ``nprobe`` nearest cells, as ``(distances, cells)``): the same for
        every part, so the first part to see a query shard routes it and the others reuse that."""
        return None

    def search(
        self, index: faiss.Index, queries: np.ndarray, k: int, route: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return index.search(queries, k)

    def build(self, x: np.ndarray, seed: int = 0) -> faiss.Index:
        """One whole index over ``x`` (row i has id i)."""
        size = self.training_size(len(x))
        index = self.trained(x.shape[1], x[training_rows(len(x), size, seed)] if size else None, seed)
        index.add_with_ids(x, np.arange(len(x), dtype=np.int64))
        self.configure(index)
        return index


class FlatIndex(IndexBackend):
    exact = True

    def trained(self, d: int, sample: np.ndarray | None, seed: int = 0) -> faiss.Index:
        return faiss.IndexIDMap(faiss.IndexFlatL2(d))


class IVFIndex(IndexBackend):
    """IVF-Flat; ``nlist`` defaults to 2 sqrt(N) cells, trained on at most ``train_size`` (64 per cell) rows.

    Fewer cells than FAISS's usual 4-16 sqrt(N): the pair stage queries every indexed row, so routing the queries
    (N x nlist distances) and training (~nlist^2) are paid in full rather than amortised over later searches.
    Scanning the same fraction of the rows (``nprobe`` 8 of 2 sqrt(N) against 16 of 4 sqrt(N)) finds as many
    true neighbours, with a quarter of the training and half the routing (BENCHMARKS.md, the pair stage at scale).
    """

    def __init__(self, *, nlist: int | None, nprobe: int, train_size: int | None) -> None:
        super().__init__(nlist=nlist, nprobe=nprobe, train_size=train_size)

    def training_size(self, n: int) -> int:
        nlist = self.options["nlist"] or max(1, int(2 * math.sqrt(n)))
        if nlist > n:
            raise ValueError(f"index 'ivf': nlist={nlist} exceeds the {n} samples; lower pairs.index_options.nlist")
        train_size = min(n, self.options["train_size"] or 64 * nlist)
        self.options = {**self.options, "nlist": nlist, "train_size": train_size}  # record what was used
        return train_size

    def trained(self, d: int, sample: np.ndarray | None, seed: int = 0) -> faiss.Index:
        if sample is None:
            raise ValueError("index 'ivf' trains on a sample of the rows (training_size)")
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, int(self.options["nlist"]))
        index.cp.seed = seed
        index.train(sample)
        return index

    def configure(self, index: faiss.Index) -> None:
        faiss.extract_index_ivf(index).nprobe = int(self.options["nprobe"])

    def route(self, index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ivf = faiss.extract_index_ivf(index)
        return ivf.quantizer.search(queries, ivf.nprobe)

    def search(
        self, index: faiss.Index, queries: np.ndarray, k: int, route: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        cell_distances, cells = route if route is not None else self.route(index, queries)
        # Queries of one cell scan the same inverted lists: in cell order they find them in cache (~1.3x faster).
        order = np.argsort(cells[:, 0], kind="stable")
        ivf: Any = faiss.extract_index_ivf(index)  # the Python wrapper's signature, not the stub's
        distances, ids = ivf.search_preassigned(queries[order], k, cells[order], cell_distances[order])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return distances[back], ids[back]


class HNSWIndex(IndexBackend):
    """HNSW-Flat with ``m`` links per node; ``ef_construction`` / ``ef_search`` trade speed for recall."""

    def __init__(self, *, m: int, ef_construction: int, ef_search: int) -> None:
        super().__init__(m=m, ef_construction=ef_construction, ef_search=ef_search)

    def trained(self, d: int, sample: np.ndarray | None, seed: int = 0) -> faiss.Index:
        graph = faiss.IndexHNSWFlat(d, int(self.options["m"]))
        graph.hnsw.efConstruction = int(self.options["ef_construction"])
        return faiss.IndexIDMap(graph)

    def configure(self, index: faiss.Index) -> None:
        id_map: Any = index  # an IndexIDMap around the graph
        graph: Any = faiss.downcast_index(id_map.index)
        graph.hnsw.efSearch = int(self.options["ef_search"])


class FactoryIndex(IndexBackend):
    """Any FAISS index, by its index-factory string (``description``): e.g. ``PCA64,IVF2048,Flat,RFlat`` (a PCA to
    64 dimensions, IVF over it, and the ``k_factor`` x k candidates re-ranked by exact distance: at 784-d and 1M
    rows a fraction of exact search's time at recall@5 ~0.92, where the PCA alone finds ~0.7), ``HNSW32`` or
    ``IVF4096,PQ16``. Recall is measured against exact search, as for every approximate index.

    Trained (when it needs it) on ``train_size`` rows: 64 per IVF cell, else 32 768. ``nprobe``, ``ef_search`` and
    ``k_factor`` apply to the IVF, HNSW or re-ranking inside it, if any. Indexes that cannot take ids themselves
    are wrapped in an id map.
    """

    def __init__(
        self, description: str, /, *, nprobe: int, ef_search: int, k_factor: int, train_size: int | None
    ) -> None:
        super().__init__(nprobe=nprobe, ef_search=ef_search, k_factor=k_factor, train_size=train_size)
        self.description = description

    def check(self, d: int) -> None:
        self._made(d)

    def _made(self, d: int) -> faiss.Index:
        try:
            return faiss.index_factory(d, self.description)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            reason = re.sub(r"^Error in .*? at \S+:\d+: ", "", first)
            raise ConfigError(
                f"pairs.index: FAISS cannot make the index {self.description!r} for {d}-dimensional rows "
                f"({reason}); see the FAISS wiki's 'The index factory', or use flat, ivf or hnsw"
            ) from None

    def training_size(self, n: int) -> int:
        cells = re.search(r"IVF(\d+)", self.description)
        default = 64 * int(cells.group(1)) if cells else 32_768
        size = min(n, self.options["train_size"] or default)
        self.options = {**self.options, "train_size": size}
        return size

    def trained(self, d: int, sample: np.ndarray | None, seed: int = 0) -> faiss.Index:
        index = self._made(d)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.cp.seed = seed
        if not _takes_ids(index):
            index = faiss.IndexIDMap(index)
        if not index.is_trained:
            if sample is None:
                raise ValueError(f"index {self.description!r} trains on a sample of the rows (training_size)")
            index.train(sample)
        return index

    def configure(self, index: faiss.Index) -> None:
        parameters = faiss.ParameterSpace()
        for name, option in (("nprobe", "nprobe"), ("efSearch", "ef_search"), ("k_factor_rf", "k_factor")):
            with contextlib.suppress(RuntimeError):  # raised when the index has no such part inside it
                parameters.set_index_parameter(index, name, int(self.options[option]))


def _takes_ids(index: faiss.Index) -> bool:
    """Whether ``add_with_ids`` works on ``index`` itself: IVF indexes, also behind a pre-transform (a PCA)."""
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return isinstance(index, faiss.IndexIVF)


def make_index(name: str, options: Mapping[str, int | None] | None = None) -> IndexBackend:
    """The backend ``name`` (a choice, or a FAISS index-factory string) with ``options``; errors name the valid
    choices."""
    backend: IndexBackend
    if is_factory_string(name):
        backend = INDEXES.build("factory", options, name)
    else:
        backend = INDEXES.build(name, options)
    return backend


def drop_self(neighbors: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """From ``k + 1`` neighbours per query, remove the query itself (or the farthest when self is absent).

    Self may be missing from its own list when exact duplicates tie with it; it is never kept.
    """
    is_self = neighbors == query_ids[:, None]
    keep = ~is_self
    no_self = ~is_self.any(axis=1)
    keep[no_self, -1] = False
    # A row may contain its own id at most once; after this, every row keeps exactly k entries.
    return neighbors[keep].reshape(len(neighbors), k)
