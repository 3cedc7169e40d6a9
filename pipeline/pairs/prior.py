"""Similar pairs from prior knowledge in metadata columns: a declarative rule, evaluated exactly.

A rule says which metadata must be equal and which must be close:

    same: [object]                          # equal values
    adjacent:                               # |a - b| <= step, measured around the circle when period is set
      azimuth: {step: 20, period: 360}
      elevation: {step: 5}
    max_differing: 1                        # optional: at most this many adjacent columns may differ

Columns the rule does not name (e.g. lighting) are free. For the NORB airplane (18 azimuths 20 degrees apart,
9 elevations 5 degrees apart, 6 lightings) ``max_differing: 1`` gives the paper's neighbourhood: the same view
under every lighting, plus the neighbouring azimuths and elevations, each under every lighting.

Pairs are found by comparing all samples within each ``same`` group, in blocks: exact, O(g^2) per group of
size g, which suits metadata-defined groups (views of one object); ``MAX_GROUP`` guards against a rule so
broad that one group holds most of a large data set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import PairsConfig
from pipeline.errors import DataError
from pipeline.pairs.pair_sources import PairSource
from pipeline.pairs.shards import both_ways

if TYPE_CHECKING:
    from pipeline.data.store import SampleStore

MAX_GROUP = 50_000
_BLOCK = 1024
_TOLERANCE = 1e-9  # metadata such as angles is often stored as floats


def circular_difference(a: np.ndarray, b: np.ndarray, period: float | None) -> np.ndarray:
    d = np.abs(a - b)
    if not period:
        return d
    d = d % period
    return np.minimum(d, period - d)


def _group_ids(meta: dict[str, np.ndarray], same: list[str], n: int) -> np.ndarray:
    if not same:
        return np.zeros(n, dtype=np.int64)
    keys = np.stack([np.unique(np.asarray(meta[c]), return_inverse=True)[1].ravel() for c in same], axis=1)
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()


def prior_pairs(
    meta: dict[str, np.ndarray],
    same: list[str],
    adjacent: dict[str, dict[str, float]],
    max_differing: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs ``(i, j)``, ``i < j``, that satisfy the rule; ``meta`` maps column name -> values (n,)."""
    n = len(next(iter(meta.values())))
    groups = _group_ids(meta, same, n)
    values = {c: np.asarray(meta[c], dtype=np.float64) for c in adjacent}
    lefts, rights = [], []
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        if len(members) > MAX_GROUP:
            raise ValueError(
                f"prior rule: {len(members)} samples share {same or 'nothing'}, more than {MAX_GROUP}; "
                f"add a column to 'same' so groups stay small"
            )
        for start in range(0, len(members), _BLOCK):
            rows = members[start : start + _BLOCK]
            ok = rows[:, None] < members[None, :]
            differing = np.zeros(ok.shape, dtype=np.int64)
            for column, spec in adjacent.items():
                d = circular_difference(
                    values[column][rows][:, None], values[column][members][None, :], spec.get("period")
                )
                ok &= d <= spec["step"] + _TOLERANCE
                differing += d > _TOLERANCE
            if max_differing is not None:
                ok &= differing <= max_differing
            r, c = np.nonzero(ok)
            lefts.append(rows[r])
            rights.append(members[c])
    if not lefts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(lefts).astype(np.int64), np.concatenate(rights).astype(np.int64)


class PriorPairs(PairSource):
    """``prior``: the pairs of the metadata rule ``pairs.prior``, over the whole training split at once."""

    name = "prior"
    per_shard = False

    def store_rows(self, store: SampleStore, cfg: PairsConfig) -> np.ndarray:
        assert cfg.prior is not None  # the configuration pairs the source with its rule
        meta = store.metadata("train", cfg.prior.columns)
        adjacent = {c: a.model_dump() for c, a in cfg.prior.adjacent.items()}
        try:
            left, right = prior_pairs(meta, cfg.prior.same, adjacent, cfg.prior.max_differing)
        except ValueError as exc:
            raise DataError(f"pairs.prior: {exc}") from None
        return both_ways(left, right, self.name)
