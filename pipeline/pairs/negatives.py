"""Lazy dissimilar pairs: drawn uniformly from all pairs that are neither similar nor self-pairs.

There are ~N^2/2 dissimilar pairs, so they are never materialised. The similar pairs are held as sorted
directed edge keys ``i * N + j`` (a CSR adjacency flattened with its row offsets folded into the key) plus a
one-hash Bloom bitmap of those keys with 16 bits per key: memory O(N*k). Membership of a batch of candidates is
one bitmap lookup each; only the ~6% the bitmap cannot rule out (false positives and true similar pairs) go on
to an exact ``np.searchsorted`` -- a random candidate is almost never similar, so this is what makes drawing
fast (BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np


class NegativeSampler:
    """Uniform sampler over the implicit dissimilar pairs of ``n`` samples given the similar pairs.

    ``(left, right)`` are the similar pairs, in either orientation. With ``anchors`` (sample ids), the sampler
    draws *ordered* pairs ``(a, b)`` with ``a`` uniform over ``anchors`` and ``b`` over all samples, and
    ``(left, right)`` must be every similar pair of each anchor, anchor first: that is all a training worker
    holds of the pair set (``PairSet.read_share``), and ``is_similar(a, b)`` is exact for ``a`` in ``anchors``.
    The workers' anchors partition the samples, so together they draw uniformly from all dissimilar pairs.
    """

    def __init__(self, n_samples: int, left: np.ndarray, right: np.ndarray, anchors: np.ndarray | None = None) -> None:
        if n_samples < 2:
            raise ValueError(f"need at least 2 samples to draw pairs, got {n_samples}")
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        if len(left) and (min(left.min(), right.min()) < 0 or max(left.max(), right.max()) >= n_samples):
            raise ValueError(f"pair ids must lie in [0, {n_samples}); re-run the pair stage for this sample store")
        self.n_samples = n_samples
        distinct = left != right
        left, right = left[distinct], right[distinct]
        if anchors is None:
            keys = np.concatenate([left * n_samples + right, right * n_samples + left])
        else:
            anchors = np.asarray(anchors, dtype=np.int64)
            is_anchor = np.zeros(n_samples, dtype=bool)
            is_anchor[anchors] = True
            if not is_anchor[left].all():
                raise ValueError("with anchors, every similar pair must start at an anchor (anchor first)")
            keys = left * n_samples + right
        self._anchors = anchors
        self._n_first = n_samples if anchors is None else len(anchors)
        keys.sort()  # sort + adjacent-difference: np.unique is ~100x slower on 10^7 int64 keys here
        self._keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
        # Unordered similar pairs; with anchors, the ordered ones starting at an anchor.
        self.n_similar = len(self._keys) // 2 if anchors is None else len(self._keys)
        self._bloom_bits = max(10, int(np.ceil(np.log2(max(1, len(self._keys)) * 16))))
        self._bloom = np.zeros(1 << (self._bloom_bits - 3), dtype=np.uint8)
        slots = self._slots(self._keys)
        np.bitwise_or.at(self._bloom, slots >> np.uint64(3), (1 << (slots & np.uint64(7))).astype(np.uint8))
        if self.n_dissimilar <= 0:
            raise ValueError("every pair is similar: there is no dissimilar pair to sample")

    @property
    def n_dissimilar(self) -> int:
        """Dissimilar pairs to draw from: unordered ones; with anchors, the ordered ones starting at an anchor."""
        if self._anchors is None:
            return self.n_samples * (self.n_samples - 1) // 2 - self.n_similar
        return self._n_first * (self.n_samples - 1) - self.n_similar

    def degree(self) -> np.ndarray:
        """Number of similar partners of each sample (of each anchor, with anchors; 0 for the others)."""
        return np.bincount(self._keys // self.n_samples, minlength=self.n_samples)

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        """Bloom bitmap slot of each key: a multiplicative hash, the top ``_bloom_bits`` bits."""
        mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps modulo 2^64, as intended
        return mixed >> np.uint64(64 - self._bloom_bits)

    def is_similar(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        keys = np.asarray(i, dtype=np.int64) * self.n_samples + np.asarray(j, dtype=np.int64)
        if len(self._keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        slots = self._slots(keys)
        maybe = (self._bloom[slots >> np.uint64(3)] >> (slots & np.uint64(7)).astype(np.uint8)) & 1 == 1
        found = np.zeros(keys.shape, dtype=bool)
        candidates = keys[maybe]
        pos = np.minimum(np.searchsorted(self._keys, candidates), len(self._keys) - 1)
        found[maybe] = self._keys[pos] == candidates
        return found

    def sample(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``size`` dissimilar pairs ``(i, j)``, i != j, each (unordered; with anchors, ordered) pair equally likely."""
        out_i, out_j, have = [np.empty(0, np.int64)], [np.empty(0, np.int64)], 0
        # Oversample by the expected rejection rate (self and similar pairs) so one round almost always suffices.
        reject = min(0.99, (self._n_first + len(self._keys)) / (self._n_first * self.n_samples))
        while have < size:
            draw = int((size - have) / (1 - reject) * 1.05) + 16
            i = rng.integers(0, self._n_first, draw, dtype=np.int64)
            if self._anchors is not None:
                i = self._anchors[i]
            j = rng.integers(0, self.n_samples, draw, dtype=np.int64)
            ok = (i != j) & ~self.is_similar(i, j)
            out_i.append(i[ok])
            out_j.append(j[ok])
            have += int(ok.sum())
        return np.concatenate(out_i)[:size], np.concatenate(out_j)[:size]

    @staticmethod
    def rng_for(seed: int, epoch: int, rank: int) -> np.random.Generator:
        """The generator a worker uses: deterministic for (seed, epoch, rank), independent across them."""
        return np.random.default_rng([seed, epoch, rank])
