"""MNIST from torchvision's layout (ROOT/MNIST/raw/*-ubyte): read here, downloaded through torchvision.

``MnistSource`` (``data.source: mnist``) gives two parts: the chosen digits of the training set and of the test
set (``data.digits``, ``train_per_digit``, ``test_per_digit``), as float32 images in [0, 1].
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.sources import DataSource, PartSamples, SourcePart
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


def ensure_mnist(root: Path, download: bool) -> None:
    """The four IDX files under ``root`` (downloaded through torchvision when missing and ``download`` is set);
    a ``DataError`` naming the folder and the fix otherwise."""
    missing = _missing(root)
    if missing and not download:
        raise DataError(
            f"MNIST not found: {raw_dir(root)} lacks {', '.join(missing)}. Point --data-root (or data.root, "
            f"or DRLIM_DATA_ROOT) at a folder holding MNIST/raw/, or set data.download: true"
        )
    for train in (True, False):
        if _missing(root):
            _download(root, train)


def load_mnist(root: str | Path, train: bool, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (n, 28, 28), labels int64 (n,))`` of one MNIST split.

    Downloads through torchvision when files are missing and ``download`` is set; any failure, and any file
    that is not a whole IDX file, becomes a ``DataError`` that names the file or folder and how to fix it.
    """
    root = Path(root).expanduser().resolve()
    ensure_mnist(root, download)
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


IDX_FIX = "replace it with the original IDX file (or delete it and set data.download: true)"


def check_idx(path: Path, ndim: int) -> None:
    """Refuse an IDX file whose header is not that of ``ndim``-D unsigned bytes or announces another size, reading
    its header only (``read_idx`` checks the same on the whole file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 * (1 + ndim))
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"MNIST could not read the files: {path}: {exc.strerror or exc}; {IDX_FIX}") from None
    _idx_dims(path, head, size, ndim)


def _idx_dims(path: Path, raw: bytes, size: int, ndim: int) -> np.ndarray:
    """The dims an IDX file of ``size`` bytes announces in its header ``raw[:4 * (1 + ndim)]``, checked."""
    fix = IDX_FIX
    header = 4 * (1 + ndim)
    if size < header:
        raise DataError(
            f"MNIST could not read the files: {path} holds {size} bytes, less than the {header} of an "
            f"IDX header; the file is truncated, {fix}"
        )
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise DataError(
            f"MNIST could not read the files: {path} is not an IDX file of {ndim}-D unsigned bytes "
            f"({size} bytes, magic {magic:#010x}, expected {0x0800 + ndim:#010x}); {fix}"
        )
    dims = np.frombuffer(raw[4:header], dtype=">u4").astype(np.int64)
    expected = math.prod(dims.tolist())
    if size - header != expected:
        raise DataError(
            f"MNIST could not read the files: {path} holds {size - header} data bytes, its header "
            f"announces {expected} ({dims.tolist()}); the file is truncated or corrupt, {fix}"
        )
    return dims


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format): magic 0x0800 + ndim, ndim big-endian int32 sizes, data."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"MNIST could not read the files: {path}: {exc.strerror or exc}; {IDX_FIX}") from None
    dims = _idx_dims(path, raw, len(raw), ndim)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim)).reshape(dims)


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


@dataclass(frozen=True)
class MnistPart(SourcePart):
    """The chosen digits of one MNIST split."""

    root: Path
    digits: tuple[int, ...]
    per_digit: int | None

    def read(self) -> PartSamples:
        images, labels = load_mnist(self.root, train=self.split == "train", download=False)
        rows = select_digits(labels, list(self.digits), self.per_digit)
        # Stored as the uint8 pixels they are; read as pixels / 255 (in float64, then rounded to float32).
        return PartSamples(images[rows, None], labels[rows], rows, divisor=255.0)


class MnistSource(DataSource):
    def parts(self) -> list[SourcePart]:
        root = self.root.expanduser().resolve()
        ensure_mnist(root, self.cfg.download)
        for name in RAW_FILES:  # a corrupt file is named before anything is read or written
            check_idx(raw_dir(root) / name, ndim=3 if "images" in name else 1)
        parts: list[SourcePart] = []
        for split, prefix, per_digit in (
            ("train", "train", self.cfg.train_per_digit),
            ("test", "t10k", self.cfg.test_per_digit),
        ):
            size = sum((raw_dir(root) / name).stat().st_size for name in RAW_FILES if name.startswith(prefix))
            parts.append(
                MnistPart(
                    f"MNIST's {split} digits under {raw_dir(root)}",
                    split,
                    size,
                    root,
                    tuple(self.cfg.digits),
                    per_digit,
                )
            )
        return parts

    def fingerprint(self) -> dict[str, int]:
        return {
            name: (raw_dir(self.root) / name).stat().st_size
            for name in RAW_FILES
            if (raw_dir(self.root) / name).is_file()
        }
