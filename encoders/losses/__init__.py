"""Losses over similar / dissimilar pairs, built by name (``train.loss``): ``contrastive`` (the paper's, the
default), ``neg`` (negative sampling with the Cauchy similarity, UMAP-like) and ``infonce`` (InfoNCE with the
Cauchy similarity, t-SNE-like). Their names and options are in ``encoders/catalog.py`` (import-light).
"""

from __future__ import annotations

from collections.abc import Mapping

from encoders.catalog import DEFAULT_LOSS, LOSS_OPTIONS, check_loss, check_loss_options
from encoders.losses.base import PairLoss
from encoders.losses.contrastive import ContrastiveLoss, contrastive_loss, contrastive_loss_terms, pair_distance
from encoders.losses.infonce import InfoNCELoss
from encoders.losses.neg import NegLoss

LOSSES: dict[str, type[PairLoss]] = {cls.name: cls for cls in (ContrastiveLoss, NegLoss, InfoNCELoss)}


def build_loss(name: str = DEFAULT_LOSS, options: Mapping[str, float] | None = None,
               margin: float | None = None) -> PairLoss:
    """The loss ``name`` with ``options`` (the others at their defaults). ``margin`` (the job's
    ``train.margin``) is the margin of a loss that has one and ignored by the others."""
    check_loss_options(name, options or {})
    kwargs = dict(options or {})
    if margin is not None and "margin" in LOSS_OPTIONS[name]:
        kwargs.setdefault("margin", margin)
    return LOSSES[name](**kwargs)


__all__ = [
    "DEFAULT_LOSS",
    "LOSSES",
    "LOSS_OPTIONS",
    "ContrastiveLoss",
    "InfoNCELoss",
    "NegLoss",
    "PairLoss",
    "build_loss",
    "check_loss",
    "check_loss_options",
    "contrastive_loss",
    "contrastive_loss_terms",
    "pair_distance",
]
