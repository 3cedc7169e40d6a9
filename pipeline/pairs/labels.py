"""Similar pairs from labels (``pairs.sources: [..., label]``): prior knowledge that samples of one class belong
together, as UMAP's supervised ``y=`` and the paper's prior-knowledge pairs use it.

Each labelled training sample is paired with ``pairs.k`` others of its own label, drawn uniformly with a fixed
seed (all of them when its class is that small; a draw that repeats collapses into one pair): O(N k) pairs, where
pairing every two samples of a class would be O(N^2). Unlabelled samples (label -1) get no label pairs; the kNN
graph still connects them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import PairsConfig
from pipeline.pairs.pair_sources import PairSource
from pipeline.pairs.shards import both_ways

if TYPE_CHECKING:
    from pipeline.data.store import SampleStore


def label_pairs(labels: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)``: each sample with a label >= 0 and ``k`` others of that label drawn uniformly with
    ``seed`` (every other one in a class of at most ``k + 1``)."""
    rng = np.random.default_rng(seed)
    lefts, rights = [], []
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == label)
        g = len(members)
        if g < 2:
            continue
        # Offsets 1..g-1 from each member's position in its class: never the member itself.
        take = min(k, g - 1)
        offsets = np.tile(np.arange(1, g), (g, 1)) if take == g - 1 else rng.integers(1, g, (g, take))
        lefts.append(np.repeat(members, take))
        rights.append(members[(np.arange(g)[:, None] + offsets) % g].ravel())
    if not lefts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(lefts).astype(np.int64), np.concatenate(rights).astype(np.int64)


class LabelPairs(PairSource):
    """``label``: each labelled sample with ``pairs.k`` others of its label, over the whole training split."""

    name = "label"
    per_shard = False

    def store_rows(self, store: SampleStore, cfg: PairsConfig) -> np.ndarray:
        left, right = label_pairs(store.column("train", "label"), cfg.k)
        return both_ways(left, right, self.name)
