"""Build an encoder by name for samples of a given shape.

The names, their classes and their options' defaults are registered in ``pipeline/config/choices.py``
(``ENCODERS``), which the job configuration checks without importing torch.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from pipeline.config.choices import ENCODERS


def build_encoder(
    name: str, output_dim: int, options: dict[str, Any] | None = None, input_shape: tuple[int, ...] | None = None
) -> nn.Module:
    """The encoder ``name`` for samples of ``input_shape`` (the sample store's feature shape)."""
    cls = ENCODERS[name].load()
    context: dict[str, Any] = {"output_dim": output_dim}
    if "input_shape" in inspect.signature(cls).parameters:
        if input_shape is None:
            raise ValueError(f"encoder {name!r} needs the input shape of the samples")
        context["input_shape"] = tuple(input_shape)
    elif input_shape is not None and tuple(input_shape) != tuple(cls.input_shape):
        raise ValueError(
            f"encoder {name!r} takes samples of shape {tuple(cls.input_shape)}, the data has {tuple(input_shape)}; "
            f"choose encoder.name: mlp for vectors, or set data.feature_shape to reshape the features"
        )
    encoder: nn.Module = ENCODERS.build(name, options, **context)
    return encoder
