"""What every loss offers the training step: its options, validated, and the weighted loss of a step.

A step (``pipeline/train/batches.py``) encodes its samples once into ``z`` and scores pairs ``(left, right)``
of rows of ``z`` with labels ``y`` (0 similar, 1 dissimilar) and weights ``w``; the weights already make the
step an estimate of the loss over all pairs. A pairwise loss scores each pair on its own,

    L_step = sum_p w_p * l(D_p, y_p),

and needs only ``terms``; a loss coupling the pairs of a step (``infonce``) overrides ``weighted``.
"""

from __future__ import annotations

import torch

# Keeps the gradient of sqrt finite when two embeddings coincide (D = 0 for a dissimilar pair).
EPS = 1e-16


def squared_distance(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """D^2 between matching rows: smooth at D = 0, where D itself is not."""
    return ((z1 - z2) ** 2).sum(dim=1)


def log_similarity(squared: torch.Tensor, dof: float = 1.0) -> torch.Tensor:
    """log q for the heavy-tailed kernel q = (1 + D^2 / a)^(-a) of the neighbour-embedding losses, from D^2.

    ``dof`` a = 1 is the Cauchy kernel 1 / (1 + D^2) of t-SNE and UMAP; a < 1 has heavier tails, which pull
    a cluster's own neighbours tighter and let sub-clusters separate (Kobak, Linderman, Steinerberger, Hamprecht,
    Berens, ECML PKDD 2019, "Heavy-tailed kernels reveal a finer cluster structure in t-SNE visualisations");
    a -> infinity is the Gaussian exp(-D^2)."""
    return -dof * torch.log1p(squared / dof)


def distance_of(squared: torch.Tensor) -> torch.Tensor:
    """D from D^2, with a finite gradient at D = 0."""
    return torch.sqrt(squared.clamp_min(EPS))


class PairLoss:
    """A loss over similar/dissimilar pairs. Subclasses take their options as keyword arguments; they are
    registered, with the options' defaults, in ``pipeline/config/choices.py`` (``LOSSES``), and built by name
    (``build_loss``), which validates the options."""

    def terms(self, z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pair loss and distance D for matching rows of ``z1``, ``z2``; ``y`` holds 0 (similar) / 1."""
        raise NotImplementedError(f"{type(self).__name__} scores a whole step; call weighted()")

    def weighted(
        self, z: torch.Tensor, left: torch.Tensor, right: torch.Tensor, y: torch.Tensor, weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss of the step, per-pair loss, per-pair distance) for the pairs ``(left, right)`` of rows of ``z``."""
        per_pair, distance = self.terms(z[left], z[right], y)
        return (per_pair * weight).sum(), per_pair, distance
