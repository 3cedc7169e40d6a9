"""Negative sampling (NEG) with the Cauchy similarity: UMAP's loss and, through a normalisation constant, the
spectrum from UMAP-like towards t-SNE-like embeddings (Damrich, Böhm, Hamprecht, Kobak, ICLR 2023, "From
t-SNE to UMAP with contrastive learning").

    q = (1 + D^2 / a)^(-a),   xi = q / Zbar,
    l_similar    = -rho * log(xi / (xi + 1)) = rho * softplus(-log q + log Zbar),
    l_dissimilar = -log(1 / (xi + 1))        =       softplus( log q - log Zbar).

The softplus forms are the same values, computed without forming xi / (xi + 1), which rounds to 0 or 1 for
pairs far apart or a large Zbar. Options: ``normalization`` Zbar (default 1: UMAP's loss), ``exaggeration``
rho (the weight of attraction, default 1), ``dof`` a (the kernel's tail, default 1: the Cauchy kernel
1 / (1 + D^2); a < 1 heavier-tailed, ``base.log_similarity``).

Under the step's weights (``pipeline/train/batches.py``) the loss estimates 1/(1+r) * [rho * E_S l_similar +
r * E_D l_dissimilar], E_S / E_D the means over all similar / dissimilar pairs: NEG with r noise pairs per
similar pair, drawn uniformly from the dissimilar pairs. For Zbar >> 1, xi << 1 for every pair (q <= 1), so
l_similar ~ rho * (-log q + log Zbar) and l_dissimilar ~ q / Zbar: the gradient is that of
rho * E_S[-log q] + (r / Zbar) * E_D[q], which points where the ``infonce`` loss rho' * E_S[-log q] +
log E_D[q] (t-SNE's) does for rho' = rho * Zbar * c / r, c = E_D[q]. A larger Zbar thus weakens repulsion,
moving towards t-SNE; Zbar ~ r / c is t-SNE's balance (rho' = 1), Zbar = 1 is UMAP's strong repulsion.
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import softplus

from encoders.losses.base import PairLoss, distance_of, log_similarity, squared_distance


class NegLoss(PairLoss):
    def __init__(self, *, exaggeration: float, normalization: float, dof: float) -> None:
        self.exaggeration = exaggeration
        self.normalization = normalization
        self.dof = dof

    def terms(self, z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        squared = squared_distance(z1, z2)
        # -log xi = -log q + log Zbar, from D^2: smooth at D = 0.
        neg_log_xi = math.log(self.normalization) - log_similarity(squared, self.dof)
        similar = self.exaggeration * softplus(neg_log_xi)
        dissimilar = softplus(-neg_log_xi)
        return torch.where(y == 0, similar, dissimilar), distance_of(squared)
