"""The encoder registry: build an encoder by name for samples of a given shape.

The names and their options are listed import-light in ``catalog.py`` (what the job configuration checks);
``ENCODERS`` maps each name to its class, and a test keeps the two in step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from encoders.catalog import check_options
from encoders.lenet import LeNetEncoder
from encoders.mlp import MLPEncoder
from encoders.resnet import ResNetEncoder

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "lenet": LeNetEncoder,
    "mlp": MLPEncoder,
    "resnet18": ResNetEncoder,
}


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
