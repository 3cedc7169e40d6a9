"""Siamese encoders G_W and their losses (``encoders.losses``). Knows nothing of Ray or MLflow.

Encoders are built by name (``build_encoder("lenet", output_dim=2, input_shape=(1, 28, 28))``); the registry
names the valid choices when a name is wrong, and an encoder refuses inputs of a shape it cannot take.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from encoders.lenet import LeNetEncoder
from encoders.losses import contrastive_loss, contrastive_loss_terms, pair_distance
from encoders.mlp import MLPEncoder
from encoders.resnet import ResNetEncoder

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "lenet": LeNetEncoder,
    "mlp": MLPEncoder,
    "resnet18": ResNetEncoder,
}
_BUILT_IN = ("output_dim", "input_shape")


def encoder_options(name: str) -> list[str]:
    """The keyword options an encoder accepts besides ``output_dim``."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return [p for p in inspect.signature(ENCODERS[name]).parameters if p not in _BUILT_IN]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the valid options when ``options`` has a key the encoder does not take."""
    valid = encoder_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"encoder {name!r} has no option(s) {unknown}; valid options: {valid}")


def build_encoder(
    name: str, output_dim: int, options: dict[str, Any] | None = None, input_shape: tuple[int, ...] | None = None
) -> nn.Module:
    """The encoder ``name`` for samples of ``input_shape`` (the sample store's feature shape)."""
    check_options(name, options or {})
    cls = ENCODERS[name]
    kwargs = dict(options or {})
    if "input_shape" in inspect.signature(cls).parameters:
        if input_shape is None:
            raise ValueError(f"encoder {name!r} needs the input shape of the samples")
        kwargs["input_shape"] = tuple(input_shape)
    elif input_shape is not None and tuple(input_shape) != tuple(cls.input_shape):
        raise ValueError(
            f"encoder {name!r} takes samples of shape {tuple(cls.input_shape)}, the data has {tuple(input_shape)}; "
            f"choose encoder.name: mlp for vectors, or set data.feature_shape to reshape the features"
        )
    return cls(output_dim=output_dim, **kwargs)


__all__ = [
    "ENCODERS",
    "LeNetEncoder",
    "MLPEncoder",
    "ResNetEncoder",
    "build_encoder",
    "check_options",
    "encoder_options",
    "contrastive_loss",
    "contrastive_loss_terms",
    "pair_distance",
]
