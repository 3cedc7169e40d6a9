"""What one training step scores: a set of samples to encode once, and weighted pairs among them.

Two modes (``train.mode``):

- ``per_pair`` -- the paper's literal procedure: ``B`` similar pairs plus ``r * B`` dissimilar pairs drawn
  lazily and uniformly (``NegativeSampler``); every pair weighs ``1 / (B + r B)``, so the loss is the mean
  contrastive loss over the drawn pairs.
- ``batch`` -- encode the samples of ``B`` similar pairs once and also score *every* other pair among them
  as dissimilar (unless it is similar). This scores O(B^2) pairs for the encoder cost of 2B samples. Samples
  enter the batch with probability roughly proportional to their degree d in the similar graph, so pair
  (u, v) is weighted by 1 / (d_u d_v) (importance weights, self-normalised); the similar and dissimilar
  halves are weighted 1 : r, which is what ``per_pair`` mode optimises in expectation.
"""

from __future__ import annotations

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


def weighted_loss(
    model: torch.nn.Module, features: torch.Tensor, pairs: StepPairs, margin: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``pairs.samples`` once; return (weighted loss, per-pair loss, per-pair distance, labels)."""
    device = features.device
    z = model(features[torch.from_numpy(pairs.samples).to(device)])
    a, b = torch.from_numpy(pairs.left).to(device), torch.from_numpy(pairs.right).to(device)
    y = torch.from_numpy(pairs.label).to(device)
    per_pair, distance = contrastive_loss_terms(z[a], z[b], y, margin)
    loss = (per_pair * torch.from_numpy(pairs.weight).to(device, per_pair.dtype)).sum()
    return loss, per_pair, distance, y
