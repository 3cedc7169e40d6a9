"""MNIST, read through torchvision from its standard layout (ROOT/MNIST/raw/*-ubyte)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.errors import DataError

log = logging.getLogger(__name__)

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def raw_dir(root: str | Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def _missing(root: Path) -> list[str]:
    return [name for name in RAW_FILES if not (raw_dir(root) / name).is_file()]


def load_mnist(root: str | Path, train: bool, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (n, 28, 28), labels int64 (n,))`` of one MNIST split.

    Downloads through torchvision when files are missing and ``download`` is set; any failure becomes a
    ``DataError`` that names the folder it looked in and how to fix it.
    """
    from torchvision.datasets import MNIST

    root = Path(root).expanduser().resolve()
    missing = _missing(root)
    if missing and not download:
        raise DataError(
            f"MNIST not found: {raw_dir(root)} lacks {', '.join(missing)}. Point --data-root (or data.root, "
            f"or DRLIM_DATA_ROOT) at a folder holding MNIST/raw/, or set data.download: true"
        )
    if missing:
        log.info("MNIST missing under %s; downloading through torchvision", root)
    try:
        dataset = MNIST(root=str(root), train=train, download=bool(missing))
    except Exception as exc:  # torchvision raises URLError, RuntimeError, AssertionError, ...
        what = "download failed" if missing else "could not read the files"
        raise DataError(
            f"MNIST {what} under {raw_dir(root)}: {exc.__class__.__name__}: {exc}. Put the four IDX files "
            f"({', '.join(RAW_FILES)}) there, or point --data-root / DRLIM_DATA_ROOT at a folder that has "
            f"MNIST/raw/"
        ) from None
    images = dataset.data.numpy()
    labels = dataset.targets.numpy().astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(
            f"MNIST files under {raw_dir(root)} are inconsistent: images {images.shape}, labels "
            f"{labels.shape}; replace them with the original IDX files"
        )
    return images, labels


def select_digits(labels: np.ndarray, digits: list[int], per_digit: int | None) -> np.ndarray:
    """Indices of the first ``per_digit`` samples of each digit (all when None), in dataset order."""
    chosen = []
    for digit in digits:
        idx = np.flatnonzero(labels == digit)
        if per_digit is not None:
            if len(idx) < per_digit:
                raise DataError(f"MNIST has only {len(idx)} samples of digit {digit}, the job asks for {per_digit}")
            idx = idx[:per_digit]
        chosen.append(idx)
    return np.sort(np.concatenate(chosen))
