"""A torchvision ResNet-18 backbone with a projection head, for larger (and colour) images.

Trained from scratch (no pretrained download): DrLIM learns the invariances from its own pairs. Small images
(below 64 px) get a CIFAR-style stem, a 3x3 stride-1 convolution without max pooling, so that 28x28 inputs keep
a useful spatial resolution through the four stages.
"""

from __future__ import annotations

import torch
from torch import nn


class ResNetEncoder(nn.Module):
    """ResNet-18 features (512-d after global pooling) -> Linear -> ReLU -> Linear to ``output_dim``."""

    def __init__(self, input_shape: tuple[int, ...], output_dim: int, *, projection: int) -> None:
        """Options and their defaults: ``pipeline/config/choices.py`` (``ENCODERS``)."""
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"takes images (channels, height, width), the data has shape {tuple(input_shape)}; "
                f"set data.feature_shape, e.g. [1, 28, 28]"
            )
        if projection < 1:
            raise ValueError(f"projection must be >= 1, got {projection}")
        self.input_shape = tuple(int(d) for d in input_shape)
        channels, height, width = self.input_shape
        # Imported here: torchvision.models costs every process that imports encoders ~1.5 s.
        from torchvision.models import resnet18

        backbone = resnet18(weights=None, num_classes=1)
        if min(height, width) < 64:
            backbone.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            backbone.maxpool = nn.Identity()
        elif channels != 3:
            backbone.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Linear(512, projection), nn.ReLU(inplace=True), nn.Linear(projection, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
