"""The paper's MNIST encoder: a small LeNet-like convolutional network.

Hadsell et al. describe two convolutional layers with a subsampling layer between them and a fully
connected output layer. The sizes below reproduce that shape on 28x28 MNIST padded to 32x32:
C1 15 maps 6x6 -> 27x27, S2 3x3 average subsampling -> 9x9, C3 30 maps 9x9 -> 1x1, F 30 -> output_dim.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LeNetEncoder(nn.Module):
    """Maps ``(n, 1, 28, 28)`` float images in [0, 1] to ``(n, output_dim)`` embeddings."""

    input_shape = (1, 28, 28)

    activations = {"relu": torch.relu, "tanh": torch.tanh}

    def __init__(self, output_dim: int, *, c1: int, c3: int, activation: str, pool: str) -> None:
        """Options and their defaults: ``pipeline/config/choices.py`` (``ENCODERS``)."""
        super().__init__()
        if activation not in self.activations:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(self.activations)}")
        self.output_dim = output_dim
        self.act = self.activations[activation]
        self.c1 = nn.Conv2d(1, c1, kernel_size=6)
        if pool not in ("avg", "max"):
            raise ValueError(f"unknown pool {pool!r}; choose one of ['avg', 'max']")
        self.s2 = nn.AvgPool2d(3, stride=3) if pool == "avg" else nn.MaxPool2d(3, stride=3)
        self.c3 = nn.Conv2d(c1, c3, kernel_size=9)
        self.fc = nn.Linear(c3, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (2, 2, 2, 2))
        x = self.act(self.c1(x))
        x = self.s2(x)
        x = self.act(self.c3(x))
        return self.fc(torch.flatten(x, 1))
