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
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from encoders import contrastive_loss_terms
from pipeline.pairs import NegativeSampler


@dataclass(frozen=True)
class StepPairs:
    samples: np.ndarray  # ids to encode, each once
    left: np.ndarray  # positions into ``samples``
    right: np.ndarray
    label: np.ndarray  # 0 similar, 1 dissimilar
    weight: np.ndarray  # per pair, sums to 1


def per_pair_step(
    left: np.ndarray, right: np.ndarray, sampler: NegativeSampler, ratio: float, rng: np.random.Generator
) -> StepPairs:
    neg_i, neg_j = sampler.sample(round(len(left) * ratio), rng)
    a, b = np.concatenate([left, neg_i]), np.concatenate([right, neg_j])
    samples, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    n = len(a)
    label = np.concatenate([np.zeros(len(left), np.int8), np.ones(len(neg_i), np.int8)])
    return StepPairs(samples, inverse[:n], inverse[n:], label, np.full(n, 1.0 / n))


def in_batch_step(
    left: np.ndarray, right: np.ndarray, sampler: NegativeSampler, ratio: float, degree: np.ndarray
) -> StepPairs:
    samples, inverse = np.unique(np.concatenate([left, right]), return_inverse=True)
    u, v = np.triu_indices(len(samples), k=1)
    dissimilar = ~sampler.is_similar(samples[u], samples[v])
    u, v = u[dissimilar], v[dissimilar]
    n_sim = len(left)
    sim_weight = np.full(n_sim, 1.0 / n_sim)
    importance = 1.0 / (degree[samples[u]] * degree[samples[v]])
    dis_weight = importance / importance.sum() if len(u) else importance
    share = ratio / (1 + ratio)
    return StepPairs(
        samples=samples,
        left=np.concatenate([inverse[:n_sim], u]),
        right=np.concatenate([inverse[n_sim:], v]),
        label=np.concatenate([np.zeros(n_sim, np.int8), np.ones(len(u), np.int8)]),
        weight=np.concatenate([(1 - share) * sim_weight, share * dis_weight]),
    )


def step_pairs(
    mode: str,
    left: np.ndarray,
    right: np.ndarray,
    sampler: NegativeSampler,
    ratio: float,
    degree: np.ndarray,
    rng: np.random.Generator,
) -> StepPairs:
    """The pairs of one step in ``mode`` ("per_pair" or "batch") for the similar pairs ``(left, right)``."""
    if mode == "batch":
        return in_batch_step(left, right, sampler, ratio, degree)
    return per_pair_step(left, right, sampler, ratio, rng)


def mixed_precision(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision`` "bf16" (or "auto" on a GPU); otherwise plain fp32."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def weighted_loss(
    model: torch.nn.Module, features: torch.Tensor, pairs: StepPairs, margin: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``pairs.samples`` once; return (weighted loss, per-pair loss, per-pair distance, labels)."""
    device = features.device
    z = model(features[torch.from_numpy(pairs.samples).to(device)]).float()  # fp32 loss under bf16 autocast
    a, b = torch.from_numpy(pairs.left).to(device), torch.from_numpy(pairs.right).to(device)
    y = torch.from_numpy(pairs.label).to(device)
    per_pair, distance = contrastive_loss_terms(z[a], z[b], y, margin)
    loss = (per_pair * torch.from_numpy(pairs.weight).to(device, per_pair.dtype)).sum()
    return loss, per_pair, distance, y
