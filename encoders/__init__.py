"""Siamese encoders G_W and the contrastive loss. Knows nothing of Ray or MLflow.

Encoders are built by name (``build_encoder("lenet", output_dim=2)``); the registry names the valid
choices when a name is wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from encoders.lenet import LeNetEncoder
from encoders.loss import contrastive_loss, contrastive_loss_terms, pair_distance

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "lenet": LeNetEncoder,
}


def build_encoder(name: str, output_dim: int) -> nn.Module:
    try:
        factory = ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}") from None
    return factory(output_dim=output_dim)


__all__ = [
    "ENCODERS",
    "LeNetEncoder",
    "build_encoder",
    "contrastive_loss",
    "contrastive_loss_terms",
    "pair_distance",
]
