"""Losses over similar / dissimilar pairs, built by name (``train.loss``): ``contrastive`` (the paper's, the
default), ``neg`` (negative sampling with the Cauchy similarity, UMAP-like) and ``infonce`` (InfoNCE with the
Cauchy similarity, t-SNE-like). Their names, options and defaults are registered in
``pipeline/config/choices.py`` (``LOSSES``).
"""

from __future__ import annotations

from collections.abc import Mapping

from encoders.losses.base import PairLoss
from encoders.losses.contrastive import ContrastiveLoss, contrastive_loss, contrastive_loss_terms, pair_distance
from encoders.losses.infonce import InfoNCELoss
from encoders.losses.neg import NegLoss
from pipeline.config.choices import LOSSES


def build_loss(name: str = "contrastive", options: Mapping[str, float] | None = None, **settings: float) -> PairLoss:
    """The loss ``name`` with ``options`` (the others at their defaults); ``settings`` are fields of the job's
    ``train`` section a loss may take (the contrastive loss's ``margin``), ignored by the others."""
    loss: PairLoss = LOSSES.build(name, options, settings=settings)
    return loss


__all__ = [
    "ContrastiveLoss",
    "InfoNCELoss",
    "NegLoss",
    "PairLoss",
    "build_loss",
    "contrastive_loss",
    "contrastive_loss_terms",
    "pair_distance",
]
