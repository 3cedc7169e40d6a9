"""Every row of a sample store mapped by the trained encoder, as a Parquet folder: one part per store shard.

``embed_shard`` (pure: a store shard in, a part of the embeddings table out) runs as one task per shard through
an ``Executor`` (Ray tasks, or this process for a small store), so a million rows never pass through the driver:
scoring reads back only the held-out split's embeddings, a few numbers a row. Parts keep the shards' names (id
order); the folder is written under a hidden name and renamed once every part is there (complete or absent). The
tasks run on the driver's node, where the run's folder is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipeline.data.store import SampleStore
from pipeline.errors import StageError
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.evaluate.inference import embed
from pipeline.infrastructure.atomic import atomic_dir, no_space_as_error
from pipeline.infrastructure.executor import Executor

log = logging.getLogger(__name__)

COLUMNS = ["id", "split", "label", "origin_id", "transform", "features"]


def embed_shard(model: torch.nn.Module, store: SampleStore, shard: str, directory: Path, batch_size: int) -> int:
    """Embed every row of the store shard ``shard`` and write its part of the embeddings table into
    ``directory`` under the shard's name; returns the rows written."""
    store = store.here()
    table = pq.read_table(store.directory / shard, columns=COLUMNS)
    n = table.num_rows
    stored = table.column("features").combine_chunks().flatten().to_numpy().reshape(n, *store.feature_shape)
    embedding = embed(model, store.as_float(stored), batch_size, progress=False)
    part = embeddings_table(
        table.column("id").to_numpy(),
        table.column("split").to_numpy(zero_copy_only=False),
        table.column("label").to_numpy(),
        embedding,
        table.column("origin_id").to_numpy(),
        np.asarray(table.column("transform").to_pylist(), dtype=object),
    )
    with no_space_as_error(directory, "the embeddings"):
        pq.write_table(part, directory / shard)
    return n


def embed_store(
    model: torch.nn.Module, store: SampleStore, output: Path, run: Executor, batch_size: int = 1024
) -> Path:
    """``output``: a folder of the embeddings of every row of ``store`` (every split), one part per shard."""
    model = model.cpu().eval()
    names = [path.name for path in store.files]
    log.info("Embedding all %d samples of the store (%d part(s))", sum(store.manifest["splits"].values()), len(names))
    with atomic_dir(output, "the embeddings") as directory:
        done = run.gather(
            # On this node: the folder is this node's (spread over nodes, the parts would need shared storage).
            [run.task(embed_shard, model, store, name, directory.resolve(), batch_size, here=True) for name in names],
            "embed every row",
            unit="part",
        )
        missing = [name for name in names if not (directory / name).is_file()]
        if missing or sum(done) != sum(store.manifest["splits"].values()):
            raise StageError(
                f"parts {missing[:3]} of the embeddings are missing from {directory}; on a cluster the run's "
                f"workspace must be on a filesystem every node sees"
            )
    return output


def read_split(folder: Path, split: str) -> pa.Table:
    """The embeddings table's rows of ``split`` in ``folder``, ordered by id."""
    table = pq.read_table(folder, filters=[("split", "=", split)])
    return table.sort_by("id")
