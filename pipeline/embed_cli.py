"""``drlim embed``: embed images from a file with a model taken from the MLflow registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.errors import DataError
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.io import atomic_path
from pipeline.tracking import Tracker


def read_images(path: Path, key: str | None = None) -> np.ndarray:
    """Images from .npy/.npz as float32 ``(n, 1, 28, 28)`` in [0, 1] (uint8 input is scaled by 1/255)."""
    if not path.is_file():
        raise DataError(f"input file {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npy/.npz file ({exc.__class__.__name__}: {exc})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        names = list(data.files)
        if key is None and len(names) != 1:
            raise DataError(f"{path} holds arrays {names}; choose one with --key")
        if key is not None and key not in names:
            raise DataError(f"{path} has no array {key!r}; it holds {names}")
        data = data[key or names[0]]
    images = np.asarray(data)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise DataError(f"{path}: images must have shape (n, 28, 28) or (n, 1, 28, 28), got {images.shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    images = images.astype(np.float32)
    if not np.isfinite(images).all():
        raise DataError(f"{path}: images contain NaN or infinite values")
    return images


def embed_file(
    tracker: Tracker, model_uri: str, input_path: Path, output_path: Path, key: str | None = None
) -> int:
    """Embed the images of ``input_path`` with ``model_uri`` from ``tracker``'s store into a Parquet file."""
    images = read_images(input_path, key)
    model = tracker.load_model(model_uri)
    embedding = np.asarray(model.predict(images), dtype=np.float32)
    ids = np.arange(len(images), dtype=np.int64)
    with atomic_path(output_path) as tmp:
        pq.write_table(embeddings_table(ids, "input", np.full(len(ids), -1), embedding), tmp)
    return len(ids)
