"""A user's own samples from Parquet or NumPy files.

- Parquet: one row per sample; the feature column holds a list (or fixed-size list) of numbers per row, the
  label column (optional) an integer; every other scalar column is kept as metadata (e.g. azimuth).
- NumPy: ``.npy`` holds the features alone, ``(n, ...)``; ``.npz`` holds named arrays: the feature array,
  the label array (optional) and any other 1-D arrays of length n as metadata.

Features become float32 ``(n, *feature_shape)`` (default: the file's own shape, ``(d,)`` for Parquet lists).
Every problem is a ``DataError`` naming the file, the column or array, and what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import DataError

SUFFIXES = (".parquet", ".npy", ".npz")


@dataclass(frozen=True)
class FileSamples:
    features: np.ndarray  # float32 (n, *shape)
    labels: np.ndarray  # int64 (n,); -1 where there are no labels
    metadata: dict[str, np.ndarray]


def read_samples(
    path: str | Path, feature_column: str, label_column: str | None, feature_shape: list[int] | None
) -> FileSamples:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; set data.path (and data.test_path) to your files")
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use one of {list(SUFFIXES)}")
    if path.suffix == ".parquet":
        features, labels, metadata = _read_parquet(path, feature_column, label_column)
    else:
        features, labels, metadata = _read_numpy(path, feature_column, label_column)
    n = len(features)
    if n == 0:
        raise DataError(f"{path}: no samples")
    if feature_shape:
        if math.prod(feature_shape) != math.prod(features.shape[1:]):
            raise DataError(
                f"{path}: data.feature_shape {list(feature_shape)} holds {math.prod(feature_shape)} values, but each "
                f"sample has {math.prod(features.shape[1:])} (shape {list(features.shape[1:])}); fix data.feature_shape"
            )
        features = features.reshape(n, *feature_shape)
    bad = ~np.isfinite(features.reshape(n, -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} samples have NaN or infinite features (first rows: "
            f"{np.flatnonzero(bad)[:5].tolist()}); clean the source data"
        )
    return FileSamples(features, labels, metadata)


def _labels(values: np.ndarray, path: Path, name: str) -> np.ndarray:
    if values.dtype.kind not in "iub" and not (values.dtype.kind == "f" and np.all(values == np.round(values))):
        raise DataError(f"{path}: label column {name!r} must hold integers, got {values.dtype}")
    return values.astype(np.int64)


def _read_parquet(path: Path, feature_column: str, label_column: str | None):
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}); re-export it") from None
    names = table.column_names
    for column in [feature_column] + ([label_column] if label_column else []):
        if column not in names:
            raise DataError(f"{path}: no column {column!r}; its columns are {names} (set data.feature_column / "
                            f"data.label_column)")
    column = table.column(feature_column).combine_chunks()
    if not (pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type)
            or pa.types.is_large_list(column.type)):
        raise DataError(f"{path}: column {feature_column!r} must hold a list of numbers per row, got {column.type}")
    if not pa.types.is_integer(column.type.value_type) and not pa.types.is_floating(column.type.value_type):
        raise DataError(f"{path}: column {feature_column!r} must hold numbers, got {column.type.value_type}")
    if column.null_count:
        raise DataError(f"{path}: column {feature_column!r} has {column.null_count} empty rows")
    lengths = pa.compute.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataError(f"{path}: column {feature_column!r} rows differ in length (row {row} has {lengths[row]} "
                        f"values, row 0 has {lengths[0]}); every sample needs the same number of features")
    width = int(lengths[0]) if len(lengths) else 0
    features = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(column), width)
    labels = (_labels(table.column(label_column).to_numpy(zero_copy_only=False), path, label_column)
              if label_column else np.full(len(features), -1, np.int64))
    metadata = {}
    for name in names:
        if name in (feature_column, label_column):
            continue
        kind = table.schema.field(name).type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind):
            metadata[name] = table.column(name).to_numpy(zero_copy_only=False)
    return features, labels, metadata


def _read_numpy(path: Path, feature_column: str, label_column: str | None):
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, zipfile errors, ...
        raise DataError(f"{path}: not a readable NumPy file ({exc.__class__.__name__}: {exc})") from None
    if isinstance(data, np.ndarray):
        arrays = {feature_column: data}
    else:
        arrays = {name: data[name] for name in data.files}
    if feature_column not in arrays:
        raise DataError(f"{path}: no array {feature_column!r}; it holds {sorted(arrays)} (set data.feature_column)")
    if label_column and label_column not in arrays:
        raise DataError(f"{path}: no array {label_column!r}; it holds {sorted(arrays)} (set data.label_column, "
                        f"or null when there are no labels)")
    features = arrays[feature_column]
    if features.ndim < 2 or features.dtype.kind not in "iuf":
        raise DataError(f"{path}: array {feature_column!r} must be numbers shaped (n, ...), got {features.dtype} "
                        f"{features.shape}")
    n = len(features)
    labels = _labels(arrays[label_column], path, label_column) if label_column else np.full(n, -1, np.int64)
    if len(labels) != n:
        raise DataError(f"{path}: {len(labels)} labels for {n} samples")
    metadata = {name: a for name, a in arrays.items()
                if name not in (feature_column, label_column) and a.ndim == 1 and len(a) == n}
    return features.astype(np.float32), labels, metadata
