"""MNIST from torchvision's layout (ROOT/MNIST/raw/*-ubyte): read here, downloaded through torchvision."""

from __future__ import annotations

import logging
import math
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

    Downloads through torchvision when files are missing and ``download`` is set; any failure, and any file
    that is not a whole IDX file, becomes a ``DataError`` that names the file or folder and how to fix it.
    """
    root = Path(root).expanduser().resolve()
    missing = _missing(root)
    if missing and not download:
        raise DataError(
            f"MNIST not found: {raw_dir(root)} lacks {', '.join(missing)}. Point --data-root (or data.root, "
            f"or DRLIM_DATA_ROOT) at a folder holding MNIST/raw/, or set data.download: true"
        )
    if missing:
        _download(root, train)
    prefix = "train" if train else "t10k"
    images = read_idx(raw_dir(root) / f"{prefix}-images-idx3-ubyte", ndim=3)
    labels = read_idx(raw_dir(root) / f"{prefix}-labels-idx1-ubyte", ndim=1).astype(np.int64)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(
            f"MNIST files under {raw_dir(root)} are inconsistent: images {images.shape}, labels "
            f"{labels.shape}; replace them with the original IDX files"
        )
    return images, labels


def _download(root: Path, train: bool) -> None:
    from torchvision.datasets import MNIST

    log.info("MNIST missing under %s; downloading through torchvision", root)
    try:
        MNIST(root=str(root), train=train, download=True)
    except Exception as exc:  # torchvision raises URLError, RuntimeError, AssertionError, ...
        raise DataError(
            f"MNIST download failed under {raw_dir(root)}: {exc.__class__.__name__}: {exc}. Put the four IDX files "
            f"({', '.join(RAW_FILES)}) there, or point --data-root / DRLIM_DATA_ROOT at a folder that has "
            f"MNIST/raw/"
        ) from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format): magic 0x0800 + ndim, ndim big-endian int32 sizes, data."""
    fix = "replace it with the original IDX file (or delete it and set data.download: true)"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"MNIST could not read the files: {path}: {exc.strerror or exc}; {fix}") from None
    header = 4 * (1 + ndim)
    if len(raw) < header:
        raise DataError(f"MNIST could not read the files: {path} holds {len(raw)} bytes, less than the {header} of an "
                        f"IDX header; the file is truncated, {fix}")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise DataError(f"MNIST could not read the files: {path} is not an IDX file of {ndim}-D unsigned bytes "
                        f"({len(raw)} bytes, magic {magic:#010x}, expected {0x0800 + ndim:#010x}); {fix}")
    dims = np.frombuffer(raw[4:header], dtype=">u4").astype(np.int64)
    expected = math.prod(dims.tolist())
    if len(raw) - header != expected:
        raise DataError(f"MNIST could not read the files: {path} holds {len(raw) - header} data bytes, its header "
                        f"announces {expected} ({dims.tolist()}); the file is truncated or corrupt, {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


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
