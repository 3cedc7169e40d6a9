"""What ``drlim embed`` reads and computes, without Ray: numpy in, numpy and Arrow out.

1. ``inspect_input`` reads only a file's header (``data.formats.read_header``, the data stage's reader): its rows,
   which array or column holds the features and the labels, their dtype and, when the header tells, the shape of
   one sample. The driver plans the ids from these counts (prefix sums in file order) without reading any data,
   and refuses a shape the model cannot take before anything starts;
2. ``embed_input`` reads one file (``formats.read_samples``: every bad-input message names the file), shapes its
   features for the model (``prepare``), embeds them batch by batch (``predict_batches``) and returns the
   file's part of the embeddings table (``evaluate.embeddings.embeddings_table``).

uint8 features are images in [0, 255] and are scaled by 1/255, as the MNIST and NORB stores are (``scale``);
a model trained on a user's own uint8 files saw them unscaled (the data stage keeps user values as they are):
embed those with ``scale_uint8=False`` (``--no-scale``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from pipeline.data.formats import read_header, read_samples
from pipeline.data.listing import SourceFile
from pipeline.errors import DataError
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.infrastructure.tracking import ModelInput

log = logging.getLogger(__name__)

SPLIT = "input"  # the embeddings table's split of everything drlim embed writes
BATCH_BYTES = 16 << 20  # features per model call: big enough to keep the matrix kernels busy, small for memory


@dataclass(frozen=True)
class InputFile:
    """One input file as its header describes it; ``first_id`` is the id of its first row."""

    file: SourceFile
    rows: int
    feature_column: str
    label_column: str | None
    scale: float  # 1/255 for uint8 features, else 1
    sample_shape: tuple[int, ...] | None  # one sample's shape when the header tells it (npy, npz, fixed-size lists)
    first_id: int = 0


def inspect_input(file: SourceFile, key: str | None, label_column: str | None, scale_uint8: bool = True) -> InputFile:
    """``file``'s header facts (``formats.read_header``: ``key`` names the features, default ``features``, or an
    ``.npz``'s only array, or a Parquet file's only list column; ``label_column`` the labels, default ``label`` where
    present) and how its features are scaled."""
    header = read_header(file, key, label_column)
    scale = 1 / 255 if scale_uint8 and header.dtype == np.uint8 else 1.0
    return InputFile(file, header.rows, header.feature_column, header.label_column, scale, header.sample_shape)


def plan_ids(inputs: list[InputFile]) -> list[InputFile]:
    """The inputs with their first ids: prefix sums of the row counts, in file order."""
    starts = np.concatenate([[0], np.cumsum([f.rows for f in inputs])[:-1]]).astype(int)
    return [replace(f, first_id=int(s)) for f, s in zip(inputs, starts)]


def check_shape(name: str, sample_shape: tuple[int, ...], model: ModelInput, model_uri: str) -> None:
    """One line when a sample's values cannot be reshaped to what the model takes."""
    if model.shape is not None and math.prod(sample_shape) != math.prod(model.shape):
        raise DataError(
            f"{name}: each sample has {math.prod(sample_shape)} values (shape {list(sample_shape)}), but {model_uri} "
            f"takes {list(model.shape)} ({math.prod(model.shape)} values); give features of that size (a Parquet "
            f"list column or an (n, ...) array), or the model trained on these"
        )


def prepare(features: np.ndarray, scale: float, model: ModelInput, name: str, model_uri: str) -> np.ndarray:
    """``features`` (float32 ``(n, *sample_shape)``) scaled, and reshaped to the model's input when the sizes
    agree (a Parquet row of 784 values becomes ``(1, 28, 28)``); else one ``DataError`` naming the file."""
    check_shape(name, features.shape[1:], model, model_uri)
    if scale != 1.0:
        features = features * np.float32(scale)
    if model.shape is not None:
        features = features.reshape(len(features), *model.shape)
    return np.ascontiguousarray(features, dtype=model.dtype)


def batch_rows(sample_shape: tuple[int, ...], itemsize: int = 4) -> int:
    """Samples per model call: ``BATCH_BYTES`` of features, at least 64, at most 65 536."""
    return int(np.clip(BATCH_BYTES // max(1, math.prod(sample_shape) * itemsize), 64, 65536))


def predict_batches(predict: Callable[[np.ndarray], object], features: np.ndarray, batch_size: int) -> np.ndarray:
    """``(n, d)`` float32 outputs of ``predict`` over ``features`` in batches of ``batch_size`` rows."""
    out = [
        np.asarray(predict(features[i : i + batch_size]), dtype=np.float32) for i in range(0, len(features), batch_size)
    ]
    return np.concatenate(out).reshape(len(features), -1) if out else np.empty((0, 0), np.float32)


def embed_input(
    predict: Callable[[np.ndarray], object],
    entry: InputFile,
    model: ModelInput,
    model_uri: str,
    batch_size: int | None = None,
) -> pa.Table:
    """The embeddings table of one input file: ids ``first_id..``, its labels (-1: none), the embedding."""
    samples = read_samples(entry.file, entry.feature_column, entry.label_column, None)
    if len(samples.features) != entry.rows:
        raise DataError(
            f"{entry.file.name} changed since the input was listed ({entry.rows} rows, now "
            f"{len(samples.features)}); run again once the source is complete"
        )
    features = prepare(samples.features, entry.scale, model, entry.file.name, model_uri)
    embedding = predict_batches(predict, features, batch_size or batch_rows(features.shape[1:]))
    ids = np.arange(entry.first_id, entry.first_id + entry.rows, dtype=np.int64)
    return embeddings_table(ids, SPLIT, samples.labels, embedding)
