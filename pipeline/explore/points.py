"""The points of an interactive map as plain arrays, whoever computed them: a run's evaluate stage, an embeddings
folder, a test. Pure numpy (FAISS only for the input-space neighbours)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import DataError

NO_LABEL = -1
LIMIT_QUANTILES = (0.005, 0.995)  # a map's limits: a few strays do not set the scale (they lie at or past the edge)


@dataclass
class SimilarPairs:
    """Similar pairs among a map's points: ``rows`` (m, 2) index the points (i < j), ``source`` (m,) indexes
    ``names`` (how the pair set found each pair), and ``degree`` (n,) is each point's number of similar pairs in
    the whole pair set (-1: the sample is not in it, e.g. a test sample), so a page can say how many it leaves out."""

    rows: np.ndarray
    source: np.ndarray
    names: list[str]
    degree: np.ndarray


@dataclass
class MapPoints:
    """One row per point. Only ``embedding`` and ``ids`` are required; the rest is shown when given."""

    embedding: np.ndarray  # (n, d) float, d >= 2 (the first three are drawn)
    ids: np.ndarray  # (n,) int: the sample ids, which link two maps of the same samples
    labels: np.ndarray | None = None  # (n,) int, NO_LABEL for none
    split: np.ndarray | None = None  # (n,) str
    transform: np.ndarray | None = None  # (n,) str, None for originals
    metadata: dict[str, np.ndarray] = field(default_factory=dict)  # (n,) numbers or strings each
    thumbnails: np.ndarray | None = None  # (n, h, w) grayscale in [0, 1]
    pairs: SimilarPairs | None = None
    neighbours: np.ndarray | None = None  # (n, k) rows of each point's nearest in input space (same split), -1: none
    title: str = ""

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.embedding.ndim != 2 or self.embedding.shape[0] != n or self.embedding.shape[1] < 2:
            raise DataError(
                f"a map needs an (n, d >= 2) embedding for its {n} ids, got shape {self.embedding.shape}; "
                "a 1-D embedding cannot be drawn as a map"
            )
        columns = {"labels": self.labels, "split": self.split, "transform": self.transform, **self.metadata}
        for name, column in columns.items():
            if column is not None and len(column) != n:
                raise DataError(f"map column {name!r} has {len(column)} values for {n} points")
        if self.thumbnails is not None and len(self.thumbnails) != n:
            raise DataError(f"{len(self.thumbnails)} thumbnails for {n} points")

    def __len__(self) -> int:
        return len(self.ids)


def robust_limits(
    points: np.ndarray, quantiles: tuple[float, float] = LIMIT_QUANTILES, pad: float = 0.05
) -> np.ndarray:
    """``[[low, high]]`` per axis: the quantiles of ``points`` (n, d), widened by ``pad`` of the span."""
    low, high = np.quantile(points, quantiles, axis=0)
    span = np.where(high > low, high - low, 1.0)
    return np.stack([low - pad * span, high + pad * span], axis=1)


def within(points: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Whether each point (n, d) lies inside ``limits`` (d, 2)."""
    return np.asarray(((points >= limits[:, 0]) & (points <= limits[:, 1])).all(axis=1))


def input_neighbours(features: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` nearest rows in input space (exact L2, itself excluded) among the rows of its own group
    (a split: the neighbours trustworthiness is scored on); -1 where a group has fewer than ``k + 1`` rows."""
    import faiss

    x = np.ascontiguousarray(features.reshape(len(features), -1), dtype=np.float32)
    out = np.full((len(x), k), -1, dtype=np.int64)
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        take = min(k, len(rows) - 1)
        if take < 1:
            continue
        index = faiss.IndexFlatL2(x.shape[1])
        index.add(x[rows])
        _, found = index.search(x[rows], take + 1)
        for i, row in enumerate(rows):  # drop the row itself (not always first among exact duplicates)
            others = found[i][found[i] != i][:take]
            out[row, : len(others)] = rows[others]
    return out


def pairs_among(
    ids: np.ndarray, left: np.ndarray, right: np.ndarray, source: np.ndarray, names: list[str]
) -> SimilarPairs:
    """The similar pairs whose two ends are among ``ids``, as point rows; ``left``/``right``: sample ids of the pair
    set's directed rows (both directions, as it stores them). Each point's degree counts its pairs in the whole
    set (-1 for ids with none)."""
    once = left < right
    left, right, source = left[once], right[once], source[once]
    order = np.argsort(ids)
    sorted_ids = ids[order]

    def rows_of(values: np.ndarray) -> np.ndarray:
        at = np.searchsorted(sorted_ids, values).clip(0, len(ids) - 1)
        return np.where(sorted_ids[at] == values, order[at], -1)

    a, b = rows_of(left), rows_of(right)
    kept = (a >= 0) & (b >= 0)
    ends = np.concatenate([a[a >= 0], b[b >= 0]])
    degree = np.bincount(ends, minlength=len(ids)).astype(np.int32)
    degree[degree == 0] = -1
    rows = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)[kept]
    return SimilarPairs(rows, source[kept].astype(np.int8), list(names), degree)
