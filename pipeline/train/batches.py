"""What one training step scores: a set of samples to encode once, and weighted pairs among them.

The target is the paper's loss over all pairs at a similar:dissimilar ratio of 1 : r,

    L = 1/(1+r) * mean over similar pairs S of L_sim  +  r/(1+r) * mean over dissimilar pairs D of L_dis,

where D (all pairs that are neither similar nor self-pairs, ~N^2/2) is never materialised. Two estimators
(``train.mode``):

- ``per_pair`` -- the paper's literal procedure: ``B`` similar pairs drawn uniformly from S plus ``r * B``
  dissimilar pairs drawn uniformly from D (``NegativeSampler``, rejection of similar and self pairs); every
  pair weighs ``1 / (B + r B)``. Unbiased for L; costs up to two encoder passes per pair.
- ``batch`` -- draw ``B`` similar pairs uniformly from S, encode their (up to ``2B``) distinct samples once,
  and score the ``B`` drawn similar pairs plus *every* dissimilar pair among those samples: O(B^2) pairs for
  the encoder cost of 2B samples. The similar half is the plain mean over the drawn pairs (unbiased). For the
  dissimilar half, a sample u is an endpoint of a drawn edge with probability ~ B d_u / |S| (d_u = its
  degree in the similar graph), so an in-batch pair (u, v) appears with probability ~ d_u d_v (B / |S|)^2;
  each is weighted by 1 / (d_u d_v), normalised to sum to 1 over the step -- a self-normalised importance
  sampling estimate of the mean over D (consistent; its bias is O(1 / pairs per step), with thousands of
  pairs per step). The halves are weighted 1/(1+r) and r/(1+r), as in L.

Several workers: each holds only the pairs of the samples it owns (``PairShare``), draws its similar pairs
from those, and scores only dissimilar pairs that include an owned sample (the only ones whose similarity it
knows); degrees become each worker's own odds of drawing a sample, and ``ShareSampling`` scales each worker's
halves so that the average over workers (what DDP applies) is L again. With one worker, all of this reduces
to the estimators above (a worker holds every pair in both directions, and its odds of drawing a sample are
twice its degree).

Similar pairs may weigh by how they were found (``train.source_weights``: w_s for source s): the similar half
then targets the weighted mean sum_S w_p L_sim(p) / sum_S w_p. Drawing uniformly from S and weighting a drawn
pair w_p / (B * mean_S w) keeps it unbiased; the normaliser is the mean over the whole set (from the manifest's
counts by source), the same for every worker, so the average over workers is that target again.

The loss is ``train.loss`` (``encoders/losses``): a pairwise loss (``contrastive``, ``neg``) is the weighted sum
above with its own L_sim and L_dis; ``infonce`` couples a step's pairs through one normaliser, estimated from the
same weights (argued in ``encoders/losses/infonce.py``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from encoders.losses import PairLoss
from pipeline.pairs.negatives import NegativeSampler
from pipeline.pairs.shards import PairShare


@dataclass(frozen=True)
class StepPairs:
    samples: np.ndarray  # ids to encode, each once
    left: np.ndarray  # positions into ``samples``
    right: np.ndarray
    label: np.ndarray  # 0 similar, 1 dissimilar
    weight: np.ndarray  # per pair; sums to 1 for one worker (see ShareSampling for several)


@dataclass(frozen=True)
class ShareSampling:
    """How a worker draws steps from its share of the pairs (``PairShare``) so that, averaged over the workers
    (DDP averages their gradients), each step still estimates the loss over *all* pairs.

    A worker draws similar pairs from ``E_r``, the pairs of its owned samples (directed: over all workers each
    similar pair is held twice, once from each end), and scores dissimilar pairs that start at an owned sample,
    ``D_r`` (ordered). The halves of its loss are scaled by ``world * |E_r| / |E|`` and ``world * |D_r| / |D|``
    (``E``, ``D`` counted in both directions; both scales are 1 for one worker), which makes the average over
    workers the loss over ``E`` and ``D`` even when the shards split the samples unevenly.
    """

    sampler: NegativeSampler  # draws from D_r; exact for pairs starting at an owned sample
    owned: np.ndarray  # bool per sample
    touches: np.ndarray  # per sample: the worker's similar pairs that include it (>= 1), its odds of being in a step
    similar_scale: float
    dissimilar_scale: float

    @classmethod
    def from_share(cls, share: PairShare) -> ShareSampling:
        n = len(share.owned)
        sampler = NegativeSampler(n, share.left, share.right, anchors=np.flatnonzero(share.owned))
        touches = np.bincount(share.left, minlength=n) + np.bincount(share.right, minlength=n)
        return cls(
            sampler=sampler,
            owned=share.owned,
            touches=np.maximum(touches, 1).astype(np.float64),
            similar_scale=share.world * len(share.left) / max(2 * share.similar_pairs, 1),
            dissimilar_scale=share.world * sampler.n_dissimilar / (n * (n - 1) - 2 * share.similar_pairs),
        )


def per_pair_step(
    left: np.ndarray,
    right: np.ndarray,
    sampling: ShareSampling,
    ratio: float,
    rng: np.random.Generator,
    similar_weight: np.ndarray | float = 1.0,
) -> StepPairs:
    neg_i, neg_j = sampling.sampler.sample(round(len(left) * ratio), rng)
    a, b = np.concatenate([left, neg_i]), np.concatenate([right, neg_j])
    samples, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    n = len(a)
    label = np.concatenate([np.zeros(len(left), np.int8), np.ones(len(neg_i), np.int8)])
    weight = np.concatenate(
        [
            np.broadcast_to(sampling.similar_scale * similar_weight / n, len(left)),
            np.full(len(neg_i), sampling.dissimilar_scale / n),
        ]
    )
    return StepPairs(samples, inverse[:n], inverse[n:], label, weight)


def in_batch_step(
    left: np.ndarray, right: np.ndarray, sampling: ShareSampling, ratio: float, similar_weight: np.ndarray | float = 1.0
) -> StepPairs:
    samples, inverse = np.unique(np.concatenate([left, right]), return_inverse=True)
    u, v = np.triu_indices(len(samples), k=1)
    own_u, own_v = sampling.owned[samples[u]], sampling.owned[samples[v]]
    # Only pairs with an owned sample: the worker knows every similar pair of those, none of the others'.
    keep = own_u | own_v
    u, v, own_u, own_v = u[keep], v[keep], own_u[keep], own_v[keep]
    first, second = np.where(own_u, samples[u], samples[v]), np.where(own_u, samples[v], samples[u])
    dissimilar = ~sampling.sampler.is_similar(first, second)
    u, v, own_u, own_v = u[dissimilar], v[dissimilar], own_u[dissimilar], own_v[dissimilar]
    n_sim = len(left)
    sim_weight = np.broadcast_to(similar_weight / n_sim, n_sim)
    # An unordered pair stands for its ordered pairs in D_r (one per owned sample in it); a sample is in the
    # step with odds ~ touches.
    touches = sampling.touches
    importance = (own_u.astype(np.float64) + own_v) / (touches[samples[u]] * touches[samples[v]])
    dis_weight = importance / importance.sum() if len(u) else importance
    share = ratio / (1 + ratio)
    return StepPairs(
        samples=samples,
        left=np.concatenate([inverse[:n_sim], u]),
        right=np.concatenate([inverse[n_sim:], v]),
        label=np.concatenate([np.zeros(n_sim, np.int8), np.ones(len(u), np.int8)]),
        weight=np.concatenate(
            [(1 - share) * sampling.similar_scale * sim_weight, share * sampling.dissimilar_scale * dis_weight]
        ),
    )


def step_pairs(
    mode: str,
    left: np.ndarray,
    right: np.ndarray,
    sampling: ShareSampling,
    ratio: float,
    rng: np.random.Generator,
    similar_weight: np.ndarray | float = 1.0,
) -> StepPairs:
    """The pairs of one step in ``mode`` ("per_pair" or "batch") for the similar pairs ``(left, right)``, each
    weighing ``similar_weight`` (per pair, mean 1 over the whole set; see the module docstring)."""
    if mode == "batch":
        return in_batch_step(left, right, sampling, ratio, similar_weight)
    return per_pair_step(left, right, sampling, ratio, rng, similar_weight)


def mixed_precision(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision`` "bf16" (or "auto" on a GPU); otherwise plain fp32."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def weighted_loss(
    model: torch.nn.Module, x: torch.Tensor, pairs: StepPairs, loss: PairLoss
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``x`` (the features of ``pairs.samples``, in that order) once; return (weighted ``loss``, per-pair
    loss, per-pair distance, labels)."""
    device = x.device
    z = model(x).float()  # fp32 loss under bf16 autocast
    a, b = torch.from_numpy(pairs.left).to(device), torch.from_numpy(pairs.right).to(device)
    y = torch.from_numpy(pairs.label).to(device)
    weight = torch.from_numpy(pairs.weight).to(device, z.dtype)
    total, per_pair, distance = loss.weighted(z, a, b, y, weight)
    return total, per_pair, distance, y
