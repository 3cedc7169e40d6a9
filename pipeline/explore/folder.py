"""An embeddings Parquet file or folder (a run's ``embeddings.parquet``, the parts ``drlim embed`` writes) read into
map points one record batch at a time, into arrays sized from the files' footers: a folder of millions of rows is
never held as a table, only as the compact arrays a map needs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import DataError
from pipeline.explore.points import NO_LABEL, MapPoints

log = logging.getLogger(__name__)

BASE = ("id", "split", "label", "origin_id", "transform", "embedding")  # the embeddings schema's columns


def embedding_files(path: Path) -> list[Path]:
    """The Parquet files of ``path`` (a file, or every ``.parquet`` below a folder in path order, hidden and
    ``_`` files skipped)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder; give a run id, a model URI or an embeddings Parquet folder")
    files = sorted(
        p for p in path.rglob("*.parquet") if p.is_file() and not any(part.startswith((".", "_")) for part in p.parts)
    )
    if not files:
        raise DataError(
            f"{path} holds no .parquet files of embeddings; point at a run's embeddings.parquet or at a folder "
            "written by drlim embed"
        )
    return files


def _check(file: Path, schema: pa.Schema) -> int:
    """The embedding size of ``file``, or a ``DataError`` naming what is wrong."""
    if "embedding" not in schema.names:
        raise DataError(
            f"{file}: no 'embedding' column (it has {schema.names}); an embeddings file has the columns "
            f"{list(BASE)} (as drlim embed writes them)"
        )
    kind = schema.field("embedding").type
    if not pa.types.is_fixed_size_list(kind) or not pa.types.is_floating(kind.value_type) or kind.list_size < 2:
        raise DataError(
            f"{file}: column 'embedding' is {kind}, not a fixed-size list of at least 2 floats; a map needs 2-D "
            "or 3-D embeddings"
        )
    return int(kind.list_size)


def read_embeddings(path: Path, title: str = "") -> MapPoints:
    """Every row of the embeddings at ``path`` as map points (extra numeric or text columns become metadata)."""
    files = embedding_files(path)
    footers = [pq.ParquetFile(f) for f in files]
    dims = {_check(f, p.schema_arrow) for f, p in zip(files, footers)}
    if len(dims) > 1:
        raise DataError(f"{path}: its files hold embeddings of different sizes {sorted(dims)}; keep one run's files")
    dim = min(dims.pop(), 3)
    n = sum(p.metadata.num_rows for p in footers)
    names = footers[0].schema_arrow.names
    extra = [c for c in names if c not in BASE]
    position = np.empty((n, dim), np.float32)
    ids = np.empty(n, np.int64)
    labels = np.full(n, NO_LABEL, np.int64)
    text: dict[str, list] = {c: [] for c in ("split", "transform") if c in names}
    metadata: dict[str, list] = {c: [] for c in extra}
    row = 0
    for parquet in footers:
        for batch in parquet.iter_batches(batch_size=65_536):
            end = row + batch.num_rows
            flat = batch.column("embedding").flatten().to_numpy(zero_copy_only=False)
            position[row:end] = flat.reshape(batch.num_rows, -1)[:, :dim]
            ids[row:end] = batch.column("id").to_numpy() if "id" in names else np.arange(row, end)
            if "label" in names:
                labels[row:end] = batch.column("label").fill_null(NO_LABEL).to_numpy()
            for name, chunks in (*text.items(), *metadata.items()):
                chunks.append(batch.column(name).to_numpy(zero_copy_only=False))
            row = end
        parquet.close()
    log.info("Read %d embeddings (%d-D) from %d file(s) under %s", n, dim, len(files), path)
    joined = {name: np.concatenate(chunks) if chunks else np.empty(0) for name, chunks in text.items()}
    return MapPoints(
        embedding=position,
        ids=ids,
        labels=labels if "label" in names else None,
        split=joined.get("split"),
        transform=joined.get("transform"),
        metadata={name: np.concatenate(chunks) for name, chunks in metadata.items() if chunks},
        title=title or path.name,
    )
