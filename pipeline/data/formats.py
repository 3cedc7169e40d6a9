"""A user's own samples from Parquet or NumPy files.

- Parquet: one row per sample; the feature column holds a list (or fixed-size list) of numbers per row, the
  label column (optional) an integer; every other scalar column is kept as metadata (e.g. azimuth).
- NumPy: ``.npy`` holds the features alone, ``(n, ...)``; ``.npz`` holds named arrays: the feature array,
  the label array (optional) and any other 1-D arrays of length n as metadata.

Features become float32 ``(n, *feature_shape)`` (default: the file's own shape, ``(d,)`` for Parquet lists).
Every problem is a ``DataError`` naming the file, the column or array, and what to do. Files are read through
their pyarrow filesystem (``sources.SourceFile``), so a file on object storage reads like a local one.

Paths in a job file (``data.path``, ``data.test_path``) are absolute, or relative to the data root; a relative
path may not climb out of the data root with ``..`` (``paths.climbs_out``, checked when the job is validated).
"""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.data.listing import SUFFIXES, SourceFile, local_file
from pipeline.data.store import BASE_COLUMNS
from pipeline.errors import DataError

log = logging.getLogger(__name__)

FLOAT32_MAX = float(np.finfo(np.float32).max)
LABEL_RANGE = (-1, int(np.iinfo(np.int32).max))  # the store keeps labels as int32, -1 = unlabelled


@dataclass(frozen=True)
class FileSamples:
    features: np.ndarray  # float32 (n, *shape)
    labels: np.ndarray  # int64 (n,); -1 where there are no labels
    metadata: dict[str, np.ndarray]


def read_samples(
    file: SourceFile | str | Path, feature_column: str, label_column: str | None, feature_shape: Sequence[int] | None
) -> FileSamples:
    """The samples of one Parquet / NumPy file (a local path, or a listed ``SourceFile`` on any filesystem); any
    problem is a ``DataError`` naming the file."""
    file = file if isinstance(file, SourceFile) else local_file(Path(file).expanduser())
    path = file.name
    if file.suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {file.suffix!r}; use one of {list(SUFFIXES)}")
    if file.suffix == ".parquet":
        features, labels, metadata = _read_parquet(file, feature_column, label_column)
    else:
        features, labels, metadata = _read_numpy(file, feature_column, label_column)
    n = len(features)
    if n == 0:
        raise DataError(f"{path}: no samples (0 rows); point data.path / data.test_path at a file with samples")
    if features[0].size == 0:
        raise DataError(
            f"{path}: {feature_column!r} holds 0 features per sample (shape {list(features.shape)}); "
            f"every sample needs at least one value"
        )
    features = _float32(features, path, feature_column)
    if feature_shape:
        if math.prod(feature_shape) != math.prod(features.shape[1:]):
            raise DataError(
                f"{path}: data.feature_shape {list(feature_shape)} holds {math.prod(feature_shape)} values, but each "
                f"sample has {math.prod(features.shape[1:])} (shape {list(features.shape[1:])}); fix data.feature_shape"
            )
        features = features.reshape(n, *feature_shape)
    return FileSamples(features, labels, metadata)


def _float32(values: np.ndarray, path: str, column: str) -> np.ndarray:
    """Numeric features as float32, refusing NaN, infinities and values float32 cannot hold."""
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            raise DataError(
                f"{path}: {column!r}: {int(bad.sum())} samples have NaN or infinite features (first rows: "
                f"{np.flatnonzero(bad)[:5].tolist()}); clean the source data"
            )
    with np.errstate(over="ignore"):
        features = values.astype(np.float32)
    if values.dtype == np.float32:  # checked above, and a cast to its own type cannot overflow
        return features
    bad = ~np.isfinite(features.reshape(len(features), -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f"{path}: {column!r}: {int(bad.sum())} samples have values beyond float32's range "
            f"(±{FLOAT32_MAX:.3g}; first rows: {np.flatnonzero(bad)[:5].tolist()}); rescale them"
        )
    return features


def _labels(values: np.ndarray, path: str, name: str) -> np.ndarray:
    if values.ndim != 1:
        raise DataError(f"{path}: labels {name!r} must be one integer per sample, got shape {list(values.shape)}")
    if values.dtype.kind not in "iubf" or (values.dtype.kind == "f" and not np.all(values == np.round(values))):
        raise DataError(
            f"{path}: label column {name!r} must hold integers, got {values.dtype} (first values: "
            f"{values[:3].tolist()}); set data.label_column to an integer column, or null for none"
        )
    low, high = LABEL_RANGE
    if len(values) and (values.min() < low or values.max() > high):
        raise DataError(
            f"{path}: label column {name!r} holds values outside {low}..{high} (from {values.min()} to "
            f"{values.max()}); use class numbers from 0, -1 for unlabelled"
        )
    return values.astype(np.int64)


def _metadata(path: str, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The metadata columns, less those named like the store's own columns (which would shadow them)."""
    reserved = sorted(set(columns) & set(BASE_COLUMNS))
    if reserved:
        log.warning(
            "%s: column(s) %s not kept as metadata: the sample store has its own columns of those names "
            "(ids are 0..n-1 in file order, source_index is the row); rename them to keep them",
            path,
            reserved,
        )
    return {name: values for name, values in columns.items() if name not in BASE_COLUMNS}


def _read_parquet(file: SourceFile, feature_column: str, label_column: str | None):
    path = file.name
    table = _parquet_table(file)
    names = table.column_names
    for column in [feature_column] + ([label_column] if label_column else []):
        if column not in names:
            raise DataError(
                f"{path}: no column {column!r}; its columns are {names} (set data.feature_column / data.label_column)"
            )
    features = _parquet_features(path, table.column(feature_column).combine_chunks(), feature_column)
    labels = _parquet_labels(table, path, label_column) if label_column else np.full(len(features), -1, np.int64)
    metadata = {}
    for name in names:
        if name in (feature_column, label_column):
            continue
        kind = table.schema.field(name).type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind):
            metadata[name] = table.column(name).to_numpy(zero_copy_only=False)
    return features, labels, _metadata(path, metadata)


def _parquet_labels(table: pa.Table, path: str, name: str) -> np.ndarray:
    column = table.column(name)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        raise DataError(
            f"{path}: label column {name!r} must hold integers, got {column.type}; set data.label_column "
            f"to an integer column, or null for none"
        )
    if column.null_count:
        raise DataError(
            f"{path}: label column {name!r} has {column.null_count} missing (null) labels; fill them in "
            f"(-1 = unlabelled)"
        )
    return _labels(column.to_numpy(zero_copy_only=False), path, name)


def _parquet_table(file: SourceFile) -> pa.Table:
    try:
        with file.filesystem.open_input_file(file.path) as handle:
            parquet = pq.ParquetFile(handle)
            names = parquet.schema_arrow.names
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise DataError(
                    f"{file.name}: column(s) {duplicates} appear more than once; give every column its own name"
                )
            return parquet.read()
    except (pa.ArrowException, OSError, ValueError, MemoryError) as exc:
        problem = f"{exc.__class__.__name__}: {exc}"
        raise DataError(f"{file.name}: not a readable Parquet file ({problem}); re-export it") from None


def _parquet_features(path: str, column: pa.Array, name: str) -> np.ndarray:
    """The feature column (a list of numbers per row) as an ``(n, d)`` array of its own dtype."""
    if not (
        pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type)
    ):
        raise DataError(
            f"{path}: column {name!r} must hold a list of numbers per row, got {column.type}; write "
            f"the features as a list column (e.g. list<float>) or set data.feature_column"
        )
    if not pa.types.is_integer(column.type.value_type) and not pa.types.is_floating(column.type.value_type):
        raise DataError(
            f"{path}: column {name!r} must hold numbers, got lists of {column.type.value_type}; "
            f"convert the features to integers or floats"
        )
    if column.null_count:
        rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[:5].tolist()
        raise DataError(
            f"{path}: column {name!r} has {column.null_count} empty (null) rows (first rows: {rows}); "
            f"drop them or fill them in"
        )
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataError(
            f"{path}: column {name!r} rows differ in length (row {row} has {lengths[row]} "
            f"values, row 0 has {lengths[0]}); every sample needs the same number of features"
        )
    values = column.flatten()
    if values.null_count:
        raise DataError(
            f"{path}: column {name!r} has {values.null_count} missing (null) values inside its lists; "
            f"fill them in or drop those rows"
        )
    width = int(lengths[0]) if len(lengths) else 0
    return values.to_numpy(zero_copy_only=False).reshape(len(column), width)


def _load_numpy(file: SourceFile) -> dict[str, np.ndarray] | np.ndarray:
    """The array of a ``.npy`` file, or every array of a ``.npz`` (read here, so a corrupt member fails here)."""
    try:
        with file.filesystem.open_input_file(file.path) as handle:
            loaded = np.load(handle, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded
            with loaded:
                return {name: loaded[name] for name in loaded.files}
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, zipfile errors, MemoryError, ...
        raise DataError(
            f"{file.name}: not a readable NumPy file ({exc.__class__.__name__}: {exc}); re-export it with "
            f"numpy.save / numpy.savez"
        ) from None


def _read_numpy(file: SourceFile, feature_column: str, label_column: str | None):
    path = file.name
    data = _load_numpy(file)
    arrays = {feature_column: data} if isinstance(data, np.ndarray) else data
    if feature_column not in arrays:
        raise DataError(f"{path}: no array {feature_column!r}; it holds {sorted(arrays)} (set data.feature_column)")
    if label_column and label_column not in arrays:
        raise DataError(
            f"{path}: no array {label_column!r}; it holds {sorted(arrays)} (set data.label_column, "
            f"or null when there are no labels)"
        )
    features = arrays[feature_column]
    if features.ndim < 2 or features.dtype.kind not in "iuf":
        raise DataError(
            f"{path}: array {feature_column!r} must be numbers shaped (n, ...), got {features.dtype} "
            f"{list(features.shape)}"
        )
    n = len(features)
    labels = _labels(arrays[label_column], path, label_column) if label_column else np.full(n, -1, np.int64)
    if len(labels) != n:
        raise DataError(
            f"{path}: {len(labels)} labels for {n} samples (arrays {label_column!r}, {feature_column!r}); "
            f"both need one entry per sample"
        )
    metadata = {
        name: a
        for name, a in arrays.items()
        if name not in (feature_column, label_column) and a.ndim == 1 and len(a) == n and a.dtype.kind in "iufU"
    }
    return features, labels, _metadata(path, metadata)


# --- what a file holds, from its header only (drlim embed plans its ids from these without reading the data) -----

DEFAULT_FEATURES = "features"  # the data stage's default feature column / npz array (data.feature_column)
DEFAULT_LABELS = "label"  # used when a file has it; an explicit --label-column must be there


@dataclass(frozen=True)
class FileHeader:
    """What one file holds, as its header (Parquet footer, ``.npy`` header, an ``.npz`` member's header) tells."""

    file: SourceFile
    rows: int
    feature_column: str
    label_column: str | None
    dtype: np.dtype
    sample_shape: tuple[int, ...] | None  # one sample's shape when the header tells it (npy, npz, fixed-size lists)


def read_header(file: SourceFile, feature_column: str | None, label_column: str | None) -> FileHeader:
    """``file``'s header facts; ``feature_column`` names the feature column or array (default: ``features``, or an
    ``.npz``'s only array, or a Parquet file's only list column), ``label_column`` the labels (default: ``label``
    where the file has it as integers)."""
    try:
        if file.suffix == ".parquet":
            facts = _parquet_facts(file, feature_column, label_column)
        elif file.suffix in (".npy", ".npz"):
            facts = _numpy_facts(file, feature_column, label_column)
        else:
            raise DataError(f"{file.name}: unsupported file type {file.suffix!r}; use .parquet, .npy or .npz")
    except DataError:
        raise
    except Exception as exc:  # pyarrow, zipfile and numpy's header parser raise many kinds
        kind = "Parquet" if file.suffix == ".parquet" else "NumPy"
        raise DataError(
            f"{file.name}: not a readable {kind} file ({exc.__class__.__name__}: {exc}); re-export it"
        ) from None
    rows, features, labels, dtype, shape = facts
    if dtype.kind not in "iuf":
        raise DataError(f"{file.name}: features {features!r} must be numbers, got {dtype}")
    if shape == ():
        raise DataError(f"{file.name}: array {features!r} must hold one sample per row, shaped (n, ...), got ({rows},)")
    return FileHeader(file, rows, features, labels, dtype, shape)


def _choose(name: str, names: list[str], candidates: list[str], key: str | None, what: str) -> str:
    """``key`` when given (and present), else ``features``, else the only candidate."""
    if key is not None:
        if key not in names:
            raise DataError(f"{name} has no {what} {key!r}; it holds {names}")
        return key
    if DEFAULT_FEATURES in names:
        return DEFAULT_FEATURES
    if len(candidates) == 1:
        return candidates[0]
    raise DataError(f"{name} holds {what}s {names}; choose the features with --key")


def _label(
    name: str, names: list[str], label_column: str | None, what: str, integers: Callable[[str], bool]
) -> str | None:
    """``label_column`` (it must be there), else ``label`` when the file has it as integers: a default must never
    fail a file whose ``label`` is something else (names, say): its samples get -1."""
    if label_column is None:
        return DEFAULT_LABELS if DEFAULT_LABELS in names and integers(DEFAULT_LABELS) else None
    if label_column not in names:
        raise DataError(f"{name} has no {what} {label_column!r} for --label-column; it holds {names}")
    return label_column


def _parquet_facts(file: SourceFile, key: str | None, label_column: str | None):
    with file.filesystem.open_input_file(file.path) as handle:
        parquet = pq.ParquetFile(handle)
        schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
    names = schema.names
    lists = [
        f.name
        for f in schema
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type) or pa.types.is_fixed_size_list(f.type)
    ]
    features = _choose(file.name, names, lists, key, "column")
    kind = schema.field(features).type
    if features not in lists or not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        raise DataError(
            f"{file.name}: column {features!r} must hold a list of numbers per row, got {kind}; choose "
            f"the feature column with --key"
        )
    labels = _label(file.name, names, label_column, "column", lambda n: pa.types.is_integer(schema.field(n).type))
    shape = (kind.list_size,) if pa.types.is_fixed_size_list(kind) else None
    return rows, features, labels, np.dtype(kind.value_type.to_pandas_dtype()), shape


def _numpy_facts(file: SourceFile, key: str | None, label_column: str | None):
    with file.filesystem.open_input_file(file.path) as handle:
        if file.suffix == ".npy":
            shape, dtype = _npy_header(handle)
            return _rows(shape), key or DEFAULT_FEATURES, None, dtype, shape[1:]
        with zipfile.ZipFile(handle) as archive:

            def header(name: str) -> tuple[tuple[int, ...], np.dtype]:
                with archive.open(f"{name}.npy") as member:
                    return _npy_header(member)

            names = sorted(n.removesuffix(".npy") for n in archive.namelist() if n.endswith(".npy"))
            label = _label(file.name, names, label_column, "array", lambda n: header(n)[1].kind in "iu")
            features = _choose(file.name, names, [n for n in names if n != label], key, "array")
            shape, dtype = header(features)
    return _rows(shape), features, label, dtype, shape[1:]


def _rows(shape: tuple[int, ...]) -> int:
    if not shape:
        raise ValueError("a 0-d array holds no samples")
    return shape[0]


def _npy_header(handle) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a ``.npy`` stream's header declares (its data is not read)."""
    version = np.lib.format.read_magic(handle)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f".npy format version {version} (re-save it with numpy.save)")
    shape, _, dtype = readers[version](handle)
    return tuple(shape), dtype
