"""Siamese encoders G_W and the contrastive loss. Knows nothing of Ray or MLflow.

Encoders are built by name (``build_encoder("lenet", output_dim=2)``); the registry names the valid
choices when a name is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from encoders.lenet import LeNetEncoder
from encoders.loss import contrastive_loss, contrastive_loss_terms, pair_distance

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "lenet": LeNetEncoder,
}


def encoder_options(name: str) -> list[str]:
    """The keyword options an encoder accepts besides ``output_dim``."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return [p for p in inspect.signature(ENCODERS[name]).parameters if p != "output_dim"]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the valid options when ``options`` has a key the encoder does not take."""
    valid = encoder_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"encoder {name!r} has no option(s) {unknown}; valid options: {valid}")


def build_encoder(name: str, output_dim: int, options: dict[str, Any] | None = None) -> nn.Module:
    check_options(name, options or {})
    return ENCODERS[name](output_dim=output_dim, **(options or {}))


__all__ = [
    "ENCODERS",
    "LeNetEncoder",
    "build_encoder",
    "check_options",
    "encoder_options",
    "contrastive_loss",
    "contrastive_loss_terms",
    "pair_distance",
]
