"""A fully connected encoder for vector data (and the paper's NORB net: one hidden layer of 20 units)."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLPEncoder(nn.Module):
    """Flattens ``(n, *input_shape)`` inputs and maps them through ``layers`` hidden layers to ``output_dim``."""

    def __init__(
        self, input_shape: tuple[int, ...], output_dim: int, *, hidden: int, layers: int, activation: str
    ) -> None:
        """Options and their defaults: ``pipeline/config/choices.py`` (``ENCODERS``)."""
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if hidden < 1 or layers < 0:
            raise ValueError(f"hidden must be >= 1 and layers >= 0, got hidden={hidden}, layers={layers}")
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_dim = output_dim
        widths = [math.prod(self.input_shape)] + [hidden] * layers
        blocks: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            blocks += [nn.Linear(a, b), ACTIVATIONS[activation]()]
        blocks.append(nn.Linear(widths[-1], output_dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
