"""The contrastive loss of DrLIM (Hadsell, Chopra, LeCun 2006, eq. 4).

    L(W, Y, X1, X2) = (1 - Y) * 1/2 * D^2  +  Y * 1/2 * max(0, m - D)^2,   D = ||G(X1) - G(X2)||_2

Y = 0 marks a similar pair (pulled together), Y = 1 a dissimilar pair (pushed apart until D >= m). Option:
``margin`` m (the job's ``train.margin``).
"""

from __future__ import annotations

import torch

from encoders.losses.base import PairLoss, distance_of, squared_distance


def pair_distance(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between matching rows of ``z1`` and ``z2``."""
    return distance_of(squared_distance(z1, z2))


def contrastive_loss_terms(
    z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor, margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair loss and distance. ``y`` holds 0 (similar) / 1 (dissimilar)."""
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    y = y.to(z1.dtype)
    squared = squared_distance(z1, z2)
    distance = distance_of(squared)
    # The similar term uses D^2 directly: it is smooth at D = 0, where sqrt is not.
    similar = 0.5 * squared
    dissimilar = 0.5 * torch.clamp(margin - distance, min=0) ** 2
    return (1 - y) * similar + y * dissimilar, distance


def contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean contrastive loss over a batch of pairs."""
    per_pair, _ = contrastive_loss_terms(z1, z2, y, margin)
    return per_pair.mean()


class ContrastiveLoss(PairLoss):
    def __init__(self, *, margin: float) -> None:
        self.margin = margin

    def terms(self, z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return contrastive_loss_terms(z1, z2, y, self.margin)
