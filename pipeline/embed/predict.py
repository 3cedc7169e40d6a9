"""What ``drlim embed`` reads and computes, without Ray: numpy in, numpy and Arrow out.

1. ``inspect_input`` reads only a file's header (Parquet footer, ``.npy`` header, the ``.npz`` member's header):
   its rows, which array or column holds the features and the labels, their dtype and, when the header tells,
   the shape of one sample. The driver plans the ids from these counts (prefix sums in file order) without
   reading any data, and refuses a shape the model cannot take before anything starts;
2. ``embed_input`` reads one file (``files.read_samples``: every bad-input message names the file), shapes its
   features for the model (``prepare``), embeds them batch by batch (``predict_batches``) and returns the
   file's part of the embeddings table (``evaluate.embeddings.embeddings_table``).

uint8 features are images in [0, 255] and are scaled by 1/255, as the MNIST and NORB stores are (``scale``);
a model trained on a user's own uint8 files saw them unscaled (the data stage keeps user values as they are):
embed those with ``scale_uint8=False`` (``--no-scale``).
"""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.data.formats import read_samples
from pipeline.data.listing import SourceFile
from pipeline.errors import DataError
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.infrastructure.tracking import ModelInput

log = logging.getLogger(__name__)

DEFAULT_FEATURES = "features"  # the data stage's default feature column / npz array (data.feature_column)
DEFAULT_LABELS = "label"  # used when a file has it; an explicit --label-column must be there
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
    """``file``'s header facts; ``key`` names the features (default: ``features``, or an ``.npz``'s only array, or a
    Parquet file's only list column), ``label_column`` the labels (default: ``label`` where present)."""
    try:
        if file.suffix == ".parquet":
            facts = _parquet_facts(file, key, label_column)
        elif file.suffix in (".npy", ".npz"):
            facts = _numpy_facts(file, key, label_column)
        else:
            raise DataError(f"{file.name}: unsupported file type {file.suffix!r}; use .parquet, .npy or .npz")
    except DataError:
        raise
    except Exception as exc:  # pyarrow, zipfile and numpy's header parser raise many kinds
        kind = "Parquet" if file.suffix == ".parquet" else "NumPy"
        raise DataError(f"{file.name}: not a readable {kind} file ({exc.__class__.__name__}: {exc}); re-export "
                        f"it") from None
    rows, features, labels, dtype, shape = facts
    if dtype.kind not in "iuf":
        raise DataError(f"{file.name}: features {features!r} must be numbers, got {dtype}")
    if shape == ():
        raise DataError(f"{file.name}: array {features!r} must hold one sample per row, shaped (n, ...), got "
                        f"({rows},)")
    scale = 1 / 255 if scale_uint8 and dtype == np.uint8 else 1.0
    return InputFile(file, rows, features, labels, scale, shape)


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


def _label(name: str, names: list[str], label_column: str | None, what: str,
           integers: Callable[[str], bool]) -> str | None:
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
    lists = [f.name for f in schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)
             or pa.types.is_fixed_size_list(f.type)]
    features = _choose(file.name, names, lists, key, "column")
    kind = schema.field(features).type
    if features not in lists or not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        raise DataError(f"{file.name}: column {features!r} must hold a list of numbers per row, got {kind}; choose "
                        f"the feature column with --key")
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


def plan_ids(inputs: list[InputFile]) -> list[InputFile]:
    """The inputs with their first ids: prefix sums of the row counts, in file order."""
    starts = np.concatenate([[0], np.cumsum([f.rows for f in inputs])[:-1]]).astype(int) if inputs else []
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
    out = [np.asarray(predict(features[i : i + batch_size]), dtype=np.float32)
           for i in range(0, len(features), batch_size)]
    return np.concatenate(out).reshape(len(features), -1) if out else np.empty((0, 0), np.float32)


def embed_input(predict: Callable[[np.ndarray], object], entry: InputFile, model: ModelInput, model_uri: str,
                batch_size: int | None = None) -> pa.Table:
    """The embeddings table of one input file: ids ``first_id..``, its labels (-1: none), the embedding."""
    samples = read_samples(entry.file, entry.feature_column, entry.label_column, None)
    if len(samples.features) != entry.rows:
        raise DataError(f"{entry.file.name} changed since the input was listed ({entry.rows} rows, now "
                        f"{len(samples.features)}); run again once the source is complete")
    features = prepare(samples.features, entry.scale, model, entry.file.name, model_uri)
    embedding = predict_batches(predict, features, batch_size or batch_rows(features.shape[1:]))
    ids = np.arange(entry.first_id, entry.first_id + entry.rows, dtype=np.int64)
    return embeddings_table(ids, SPLIT, samples.labels, embedding)
