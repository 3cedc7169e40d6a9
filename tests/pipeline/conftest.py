"""Shared builders of small synthetic input files (Parquet, NumPy, MNIST IDX) for the pipeline tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.mnist import RAW_FILES, raw_dir


def feature_list(x: np.ndarray) -> pa.Array:
    """``(n, d)`` features as a Parquet-ready fixed-size list column (element type from ``x``'s dtype)."""
    return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])


def write_parquet(path: Path, x: np.ndarray, **columns) -> Path:
    """``x`` as the ``features`` column plus any further columns (arrays or Arrow arrays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"features": feature_list(x), **columns}), path)
    return path


def vectors(n: int = 12, d: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def write_vectors(path: Path, n: int = 12, d: int = 6, seed: int = 0, **columns) -> Path:
    """A valid sample file: ``n`` random ``d``-vectors with integer labels (Parquet, ``.npy`` or ``.npz``)."""
    x = vectors(n, d, seed)
    labels = np.arange(n) % 3
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, x)
    elif path.suffix == ".npz":
        np.savez(path, features=x, label=labels, **columns)
    else:
        write_parquet(path, x, label=labels, **columns)
    return path


def idx_bytes(data: np.ndarray) -> bytes:
    """``data`` (uint8) in MNIST's IDX format."""
    magic = (0x0800 + data.ndim).to_bytes(4, "big")
    return magic + b"".join(int(s).to_bytes(4, "big") for s in data.shape) + data.astype(np.uint8).tobytes()


def write_mnist(root: Path, per_split: int = 40, seed: int = 0) -> Path:
    """Tiny MNIST-shaped IDX files (random 28x28 digits, labels cycling 0..9) under ``root/MNIST/raw``."""
    rng = np.random.default_rng(seed)
    folder = raw_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES:
        data = rng.integers(0, 256, (per_split, 28, 28)) if "images" in name else np.arange(per_split) % 10
        (folder / name).write_bytes(idx_bytes(np.asarray(data, dtype=np.uint8)))
    return folder


@pytest.fixture(scope="session")
def sample_files() -> SimpleNamespace:
    """The builders above, for test modules (which cannot import one another)."""
    return SimpleNamespace(
        feature_list=feature_list,
        write_parquet=write_parquet,
        vectors=vectors,
        write_vectors=write_vectors,
        idx_bytes=idx_bytes,
        write_mnist=write_mnist,
    )
