"""Image transforms that make the transformed copies of a sample (the paper's translated MNIST).

A job names transforms and their parameters, e.g. ``data.transforms: {shift_x: [-6, -3, 3, 6]}``; ingest
stores one copy of every sample per (transform, parameter), tagged ``"shift_x=-6"`` and carrying the id of
the sample it came from (``origin_id``). The pair stage can then pair copies of one origin (and copies of
neighbours' origins), which is how DrLIM learns invariance to the transform.

Add a transform as a function ``(images (n, c, h, w) float32, parameter) -> images`` and register it by one line
in ``pipeline/config/choices.py`` (``TRANSFORMS``, which the job configuration checks); parameters are numbers from
the job file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.config.choices import TRANSFORMS
from pipeline.errors import DataError

if TYPE_CHECKING:
    from pipeline.config import DataConfig


def _shift(images: np.ndarray, pixels: float, axis: int) -> np.ndarray:
    """Translate by whole ``pixels`` along ``axis`` (positive: right/down), filling with zeros."""
    step = int(pixels)
    if step != pixels:
        raise ValueError(f"shifts are whole pixels, got {pixels}")
    out = np.zeros_like(images)
    size = images.shape[axis]
    if abs(step) >= size:
        return out
    src = [slice(None)] * images.ndim
    dst = [slice(None)] * images.ndim
    src[axis] = slice(max(0, -step), size - max(0, step))
    dst[axis] = slice(max(0, step), size - max(0, -step))
    out[tuple(dst)] = images[tuple(src)]
    return out


def shift_x(images: np.ndarray, pixels: float) -> np.ndarray:
    return _shift(images, pixels, axis=-1)


def shift_y(images: np.ndarray, pixels: float) -> np.ndarray:
    return _shift(images, pixels, axis=-2)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise about the centre (bilinear), filling with zeros."""
    # Imported here: torch and torchvision cost every process that imports the data stage ~650 MB and ~1.5 s.
    import torch
    from torchvision.transforms.v2 import functional as TF

    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return TF.rotate(tensor, float(degrees), interpolation=TF.InterpolationMode.BILINEAR).numpy()


@dataclass(frozen=True)
class SplitArrays:
    """The samples of one split to store, originals first: features ``(n, *shape)`` float32, labels, source rows.

    Transformed copies name the row (within this split) of the sample they came from in ``origin`` and their
    transform in ``transform``; both default to "every row is an original".
    """

    name: str
    features: np.ndarray
    labels: np.ndarray
    source_index: np.ndarray
    origin: np.ndarray | None = None
    transform: list[str | None] | None = None
    metadata: dict[str, np.ndarray] | None = None


def transform_tag(name: str, value: float) -> str:
    return f"{name}={value:g}"


def transformed_copies(images: np.ndarray, spec: dict[str, list[float]]) -> list[tuple[str, np.ndarray]]:
    """One ``(tag, copies of all images)`` per (transform, parameter), in the order of ``spec``."""
    if images.ndim != 4:
        raise ValueError(f"transforms need images shaped (n, channels, height, width), got {images.shape}")
    return [
        (transform_tag(name, v), TRANSFORMS[name].load()(images, v)) for name, values in spec.items() for v in values
    ]


def with_copies(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    source_index: np.ndarray,
    cfg: DataConfig,
    metadata: dict[str, np.ndarray] | None = None,
    where: str | None = None,
) -> SplitArrays:
    """The originals of a split followed by their transformed copies, one block per (transform, parameter)."""
    if not cfg.transforms:
        return SplitArrays(name, images, labels, source_index, metadata=metadata or None)
    if images.ndim != 4:
        raise DataError(
            f"{where or f'the {name} samples'}: data.transforms {cfg.transforms} need images shaped "
            f"(channels, height, width) per sample, these have shape {list(images.shape[1:])}; set "
            f"data.feature_shape"
        )
    copies = transformed_copies(images.astype(np.float32), cfg.transforms)
    blocks = 1 + len(copies)
    n = len(images)
    return SplitArrays(
        name,
        features=np.concatenate([images.astype(np.float32)] + [c for _, c in copies]),
        labels=np.tile(labels, blocks),
        source_index=np.tile(source_index, blocks),
        origin=np.tile(np.arange(n), blocks),
        transform=[None] * n + [tag for tag, _ in copies for _ in range(n)],
        metadata={k: np.tile(v, blocks) for k, v in metadata.items()} if metadata else None,
    )
