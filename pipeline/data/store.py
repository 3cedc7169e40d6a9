"""The sample store: every source ingested once into a sharded Parquet table with a written-down schema.

Rows (ordered by id) are cut into shards of ``ROWS_PER_SHARD``; ``manifest.json`` lists every shard with its
row count and sha256 and is written last. Schema (version 2), one row per sample:
    id            int64    dense, stable for a given data configuration: training samples first (0..n_train-1)
    split         string   "train" | "test"
    label         int32    class label (nullable)
    origin_id     int64    the sample a transformed copy came from; itself for originals
    transform     string   the transform that made this copy (null for originals)
    source_index  int64    row in the original source (e.g. index in the MNIST file)
    features      fixed_size_list<float32>[d]   flattened; the shape is in the schema metadata
    <metadata>    any further columns (e.g. azimuth, elevation, lighting), as the source gave them
Schema metadata: ``drlim.schema_version``, ``drlim.feature_shape`` (JSON list).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import DataError, StageError
from pipeline.infrastructure.atomic import atomic_path, reserve
from pipeline.infrastructure.tables import ShardedTable

SCHEMA_VERSION = FLOAT32_VERSION = 2  # float32 features
FLOAT32 = np.dtype(np.float32)
STORED_DTYPE_VERSION = 3  # features in their own dtype (uint8 pixels), divided by the feature divisor when read
ROWS_PER_SHARD = 32_768
BASE_COLUMNS = ("id", "split", "label", "origin_id", "transform", "source_index", "features")


def schema_version(dtype: np.dtype) -> int:
    return SCHEMA_VERSION if np.dtype(dtype) == np.float32 else STORED_DTYPE_VERSION


def sample_schema(
    feature_shape: tuple[int, ...], metadata: list[pa.Field] | None = None, dtype: np.dtype = FLOAT32
) -> pa.Schema:
    dim = int(np.prod(feature_shape))
    return pa.schema(
        [
            *(metadata or []),
            pa.field("id", pa.int64(), nullable=False),
            pa.field("split", pa.string(), nullable=False),
            pa.field("label", pa.int32()),
            pa.field("origin_id", pa.int64(), nullable=False),
            pa.field("transform", pa.string()),
            pa.field("source_index", pa.int64()),
            pa.field("features", pa.list_(pa.from_numpy_dtype(dtype), dim), nullable=False),
        ],
        metadata={
            "drlim.schema_version": str(schema_version(dtype)),
            "drlim.feature_shape": json.dumps(list(feature_shape)),
        },
    )


def sample_table(
    split: str,
    ids: np.ndarray,
    features: np.ndarray,
    labels: np.ndarray,
    origin: np.ndarray,
    transform: list[str | None] | None,
    source_index: np.ndarray,
    metadata: dict[str, np.ndarray] | None,
    meta_fields: list[pa.Field],
    dtype: np.dtype = FLOAT32,
) -> pa.Table:
    """Rows of one split with the ids given, in the store's schema (``features`` ``(n, *shape)``, stored as
    ``dtype``)."""
    n = len(ids)
    flat = np.ascontiguousarray(features, dtype=dtype).reshape(n, -1)
    return pa.table(
        {
            **{f.name: pa.array((metadata or {})[f.name], f.type) for f in meta_fields},
            "id": np.asarray(ids, dtype=np.int64),
            "split": pa.array([split] * n, pa.string()),
            "label": pa.array(np.asarray(labels).astype(np.int32)),
            "origin_id": np.asarray(origin, dtype=np.int64),
            "transform": pa.nulls(n, pa.string()) if transform is None else pa.array(transform, pa.string()),
            "source_index": pa.array(np.asarray(source_index).astype(np.int64)),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1]),
        },
        schema=sample_schema(features.shape[1:], meta_fields, dtype),
    )


def store_manifest(
    shards: list[dict],
    splits: dict[str, int],
    feature_shape: list[int],
    metadata_columns: list[str],
    provenance: dict,
    dtype: np.dtype = FLOAT32,
    divisor: float = 1.0,
) -> dict:
    """The manifest of a store whose shards (in id order) are written; features stored as ``dtype`` are the
    samples' values times ``divisor`` (uint8 pixels: 255)."""
    stored = (
        {} if np.dtype(dtype) == np.float32 else {"feature_dtype": np.dtype(dtype).name, "feature_divisor": divisor}
    )
    return {
        **stored,
        "schema_version": schema_version(dtype),
        "shards": shards,
        # Identity of the whole store (what later stages key their outputs on).
        "sha256": hashlib.sha256(json.dumps([sh["sha256"] for sh in shards]).encode()).hexdigest(),
        "rows": sum(sh["rows"] for sh in shards),
        "splits": splits,
        "feature_shape": list(feature_shape),
        "metadata_columns": metadata_columns,
        "provenance": provenance,
    }


class SampleStore(ShardedTable):
    """Read access to a finished sample store (``SampleStore.open(location)``)."""

    KIND = "sample store"
    SCHEMA_VERSION = STORED_DTYPE_VERSION
    READS = (FLOAT32_VERSION, STORED_DTYPE_VERSION)
    STAGE = "the data stage"

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.manifest["feature_shape"])

    @property
    def feature_dtype(self) -> np.dtype:
        """How the features are stored (float32, or e.g. uint8 pixels)."""
        return np.dtype(self.manifest.get("feature_dtype", "float32"))

    @property
    def feature_divisor(self) -> float:
        """The stored features divided by this are the samples' values (1 for float32)."""
        return float(self.manifest.get("feature_divisor", 1.0))

    @property
    def feature_bytes(self) -> int:
        """The stored features of every split, in bytes."""
        return int(self.manifest["rows"] * math.prod(self.feature_shape) * self.feature_dtype.itemsize)

    def as_float(self, stored: np.ndarray) -> np.ndarray:
        """Stored features as the samples' float32 values (divided in float64, then rounded: uint8 pixels / 255
        give exactly what ``pixels / 255.0`` in NumPy gives)."""
        if stored.dtype == np.float32:
            return stored
        return (stored / np.float64(self.feature_divisor)).astype(np.float32)

    def files_of(self, split: str) -> list[Path]:
        """The shards that hold rows of ``split`` (in id order)."""
        first = np.concatenate([[0], np.cumsum([shard["rows"] for shard in self.manifest["shards"]])])
        names = [name for name in ("train", "validation", "test") if self.manifest["splits"].get(name)]
        start = sum(self.manifest["splits"][name] for name in names[: names.index(split)]) if split in names else 0
        stop = start + self.manifest["splits"].get(split, 0)
        return [path for path, a, b in zip(self.files, first[:-1], first[1:]) if a < stop and b > start]

    @staticmethod
    def read_shard(path: Path, split: str, columns: list[str]) -> pa.Table:
        """The rows of ``split`` in one shard file (ordered by id, as written)."""
        return pq.read_table(path, filters=[("split", "=", split)], columns=columns)

    def read_features(self, path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, features (n, d) float32, flattened)`` of the rows of ``split`` in one shard file."""
        ids, stored = _ids_and_features(SampleStore.read_shard(path, split, ["id", "features"]))
        return ids, self.as_float(stored)

    def column(self, split: str, name: str) -> np.ndarray:
        """One column of a split, ordered by id, read shard by shard."""
        return np.concatenate(
            [self.read_shard(path, split, [name]).column(name).to_numpy() for path in self.files_of(split)]
        )

    def _read(self, split: str, columns: list[str], ids: np.ndarray | None = None) -> pa.Table:
        """``columns`` of the rows of ``split`` (only those with ``ids``, when given), from its shards."""
        where: list[tuple] = [("split", "=", split)]
        if ids is not None:
            where.append(("id", "in", pa.array(ids, pa.int64())))
        return pq.read_table([str(p) for p in self.files_of(split)], filters=where, columns=columns)

    def split(self, name: str, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, features (n, *shape) float32, labels)`` of one split (only the rows ``ids``, when given), ordered
        by id."""
        table = self._read(name, ["id", "label", "features"], ids)
        if table.num_rows == 0:
            raise StageError(f"sample store {self.directory} has no rows in split {name!r}")
        ids, flat = _ids_and_features(table)
        order = np.argsort(ids, kind="stable")
        features = self.as_float(flat.reshape(len(ids), *self.feature_shape)[order])
        labels = table.column("label").to_numpy(zero_copy_only=False)[order]
        return ids[order], features, labels

    def head(self, name: str, n: int) -> np.ndarray:
        """The features (float32, ``(n, *shape)``) of the first ``n`` samples of a split, reading one batch of rows
        (e.g. a model signature's example)."""
        for file in self.files_of(name):
            with pq.ParquetFile(file) as shard:
                for batch in shard.iter_batches(batch_size=max(n, 1024), columns=["split", "features"]):
                    batch = batch.filter(pc.equal(batch.column("split"), name))
                    if batch.num_rows:
                        rows = batch.slice(0, n).column("features").flatten().to_numpy()
                        return self.as_float(rows.reshape(-1, *self.feature_shape))
        raise StageError(f"sample store {self.directory} has no rows in split {name!r}")

    def feature_matrix(self, name: str = "train") -> np.ndarray:
        """Features of one split, ordered by id, as a read-only memory map ``(n, *shape)`` as stored
        (``feature_dtype``; ``as_float`` gives the values): rows are read from disk when touched, so a worker can
        gather rows by id without holding the split in memory.

        Made on first use from the shards, one record batch at a time, as ``features-<split>.npy`` beside them
        (a derived file: written to a temporary name and renamed, remade when unreadable or of another shape,
        safe to delete).
        """
        n = self.manifest["splits"].get(name, 0)
        if n == 0:
            raise StageError(f"sample store {self.directory} has no rows in split {name!r}")
        path = self.directory / f"features-{name}.npy"
        shape = (n, *self.feature_shape)
        if path.is_file():
            try:
                matrix = np.load(path, mmap_mode="r")
                if matrix.shape == shape and matrix.dtype == self.feature_dtype:
                    return matrix
            except (OSError, ValueError):
                pass
        what = f"the {name} features for training ({path.name})"
        with atomic_path(path, what) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.feature_dtype, shape=shape)
            reserve(tmp, what)  # a sparse map would crash its writer (SIGBUS) on a full disk
            row, last_id = 0, -1
            for file in self.files:
                with pq.ParquetFile(file) as shard:
                    for batch in shard.iter_batches(columns=["id", "split", "features"]):
                        batch = batch.filter(pc.equal(batch.column("split"), name))
                        ids = batch.column("id").to_numpy()
                        if len(ids) and (ids[0] <= last_id or (np.diff(ids) <= 0).any()):
                            raise StageError(
                                f"sample store {self.directory}: rows are not ordered by id; "
                                "delete it and re-run the data stage"
                            )
                        values = batch.column("features").flatten().to_numpy()
                        out[row : row + len(ids)] = values.reshape(len(ids), *self.feature_shape)
                        row += len(ids)
                        last_id = ids[-1] if len(ids) else last_id
            out.flush()
            del out
        return np.load(path, mmap_mode="r")

    @property
    def held_out_split(self) -> str:
        """The split to evaluate on: "test" when the source has one, else "train" (then said in the logs)."""
        return "test" if self.manifest["splits"].get("test") else "train"

    @property
    def metadata_columns(self) -> list[str]:
        return list(self.manifest.get("metadata_columns", []))

    def metadata(self, name: str, columns: list[str], ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Metadata ``columns`` of one split (only the rows ``ids``, when given), ordered by id."""
        missing = sorted(set(columns) - set(self.metadata_columns))
        if missing:
            raise DataError(
                f"sample store {self.directory} has no metadata column(s) {missing}; its metadata columns are "
                f"{self.metadata_columns or 'none'} (fix the rule's column names or the source data)"
            )
        table = self._read(name, ["id", *columns], ids)
        order = np.argsort(table.column("id").to_numpy(), kind="stable")
        return {c: table.column(c).to_numpy(zero_copy_only=False)[order] for c in columns}

    def origins(self, name: str, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(origin_id, transform)`` of one split (only the rows ``ids``, when given), ordered by id (transform is
        None for originals)."""
        table = self._read(name, ["id", "origin_id", "transform"], ids)
        order = np.argsort(table.column("id").to_numpy(), kind="stable")
        transform = np.asarray(table.column("transform").to_pylist(), dtype=object)
        return table.column("origin_id").to_numpy()[order], transform[order]


def _ids_and_features(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    ids = table.column("id").to_numpy()
    features = table.column("features").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
    return ids, np.ascontiguousarray(features)
