"""Pair shards: the Parquet contract between the pair stage and training.

Schema (version 2), one row per *directed* similar pair: both (i, j) and (j, i) of every unordered pair:
    left    int64   sample id
    right   int64   sample id, != left
    label   int8    0 = similar (the paper's Y); dissimilar pairs are never written
    source  dictionary<int8, string>   how the pair was found: knn, ...
Rows go to shard ``mix(left) % num_shards`` (independent of how many tasks produced them), sorted by
(left, right): a shard holds *every* similar pair of the samples hashed to it. That is what lets a training
worker read only its own shards and still reject every similar pair of its samples when it draws negatives
(``PairSet.read_share``). The unordered pairs are the rows with left < right. ``manifest.json`` lists every
shard with its row count and sha256, and is written last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import StageError
from pipeline.io import corrupt_shards, read_json, write_json, write_shards

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
MANIFEST_FILE = "manifest.json"
PAIR_SCHEMA = pa.schema(
    [
        pa.field("left", pa.int64(), nullable=False),
        pa.field("right", pa.int64(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("source", pa.dictionary(pa.int8(), pa.string()), nullable=False),
    ],
    metadata={"drlim.schema_version": str(SCHEMA_VERSION)},
)


def knn_pairs(neighbors: np.ndarray, query_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Directed kNN edges ``(query, neighbour)`` as flat ``(left, right)`` arrays (not yet canonical)."""
    n, k = neighbors.shape
    if query_ids is None:
        query_ids = np.arange(n, dtype=np.int64)
    return np.repeat(np.asarray(query_ids, dtype=np.int64), k), neighbors.reshape(-1).astype(np.int64)


def canonical_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unordered, unique, non-self pairs sorted by (left, right), and the index of each one's first input row."""
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    keep = lo != hi
    lo, hi, rows = lo[keep], hi[keep], np.flatnonzero(keep)
    order = np.lexsort((hi, lo))
    lo, hi, rows = lo[order], hi[order], rows[order]
    first = np.ones(len(lo), dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], rows[first]


def shard_of(left: np.ndarray, num_shards: int) -> np.ndarray:
    """Shard index of each pair: a multiplicative hash of ``left``, so shards balance for any id layout."""
    mixed = (left.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    return (mixed % np.uint64(num_shards)).astype(np.int64)


def owner_of(ids: np.ndarray, num_shards: int, world: int) -> np.ndarray:
    """The training worker that owns each sample: the one that reads the sample's shard."""
    return shard_of(ids, num_shards) % world


@dataclass(frozen=True)
class PairShare:
    """One training worker's part of a pair set: the samples it owns and every similar pair of each.

    ``(left, right)`` are directed, owned sample first, so the worker knows exactly which samples are similar to
    an owned one without the other workers' pairs. Every unordered pair is held by the owners of both its ends,
    once each: over all workers, the pairs held are every similar pair in both directions.
    """

    owned: np.ndarray  # bool per sample
    left: np.ndarray
    right: np.ndarray
    pairs_per_rank: list[int]  # len(left) of every worker
    similar_pairs: int  # unordered similar pairs of the whole set

    @property
    def world(self) -> int:
        return len(self.pairs_per_rank)


def degree_histogram(left: np.ndarray, right: np.ndarray, n: int) -> dict[str, int]:
    degree = np.bincount(np.concatenate([left, right]), minlength=n)
    values, counts = np.unique(degree, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def write_pair_shards(
    directory: Path,
    left: np.ndarray,
    right: np.ndarray,
    source: np.ndarray,
    source_names: list[str],
    n_samples: int,
    num_shards: int,
    provenance: dict,
    row_group_size: int = 65536,
    extra: dict | None = None,
) -> dict:
    """Canonicalise and write pairs as shards plus manifest; return the manifest.

    ``source`` holds indices into ``source_names``; when one pair is found by several sources, the first
    input row wins, so callers order inputs by source priority. ``extra`` adds top-level manifest entries.
    """
    lo, hi, rows = canonical_pairs(left, right)
    src = np.asarray(source)[rows].astype(np.int8)
    # Both directions, sorted by (left, right): lexsort's last key is the primary one.
    out_left, out_right, out_src = np.concatenate([lo, hi]), np.concatenate([hi, lo]), np.concatenate([src, src])
    order = np.lexsort((out_right, out_left))
    out_left, out_right, out_src = out_left[order], out_right[order], out_src[order]
    shard = shard_of(out_left, num_shards)
    directory.mkdir(parents=True, exist_ok=True)

    def table_of(s: int) -> pa.Table:
        mask = shard == s
        return pa.table(
            {
                "left": out_left[mask],
                "right": out_right[mask],
                "label": np.zeros(int(mask.sum()), dtype=np.int8),
                "source": pa.DictionaryArray.from_arrays(pa.array(out_src[mask], pa.int8()), pa.array(source_names)),
            },
            schema=PAIR_SCHEMA,
        )

    shards = write_shards(directory, map(table_of, range(num_shards)), len(out_left), "the pair set",
                          row_group_size=row_group_size)
    similar = len(lo)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "n_samples": n_samples,
        "similar_pairs": similar,
        "dissimilar_pairs_implicit": n_samples * (n_samples - 1) // 2 - similar,
        "counts_by_source": {name: int((src == i).sum()) for i, name in enumerate(source_names)},
        "degree_histogram": degree_histogram(lo, hi, n_samples),
        "num_shards": num_shards,
        "shards": shards,
        "provenance": provenance,
        **(extra or {}),
    }
    write_json(directory / MANIFEST_FILE, manifest)
    return manifest


@dataclass(frozen=True)
class PairSet:
    """A finished set of pair shards, read through its manifest."""

    directory: Path
    manifest: dict

    @classmethod
    def open(cls, directory: str | Path) -> PairSet:
        directory = Path(directory)
        path = directory / MANIFEST_FILE
        if not path.is_file():
            raise StageError(f"no pair set at {directory} (missing {MANIFEST_FILE}); run the pair stage")
        manifest = read_json(path)
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise StageError(
                f"{path}: pair schema version {manifest.get('schema_version')} is not {SCHEMA_VERSION}; "
                f"delete {directory} and re-run the pair stage"
            )
        return cls(directory, manifest)

    @property
    def n_samples(self) -> int:
        return int(self.manifest["n_samples"])

    def corrupt_shards(self) -> list[str]:
        """Shards that are missing or whose checksum differs from the manifest."""
        return corrupt_shards(self.directory, self.manifest["shards"])

    def _stream(self, shard_indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The directed rows ``(left, right)`` of the given shards, read one record batch at a time into arrays
        sized from the manifest (no second copy)."""
        shards = [self.manifest["shards"][i] for i in shard_indices]
        total = sum(shard["rows"] for shard in shards)
        left, right = np.empty(total, np.int64), np.empty(total, np.int64)
        row = 0
        for shard in shards:
            with pq.ParquetFile(self.directory / shard["file"]) as parquet:
                for batch in parquet.iter_batches(columns=["left", "right"]):
                    left[row : row + batch.num_rows] = batch.column(0).to_numpy()
                    right[row : row + batch.num_rows] = batch.column(1).to_numpy()
                    row += batch.num_rows
        if row != total:
            raise StageError(f"{self.directory}: the pair shards hold {row} rows, the manifest says {total}; "
                             "delete the folder and re-run the pair stage")
        return left, right

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Every unordered similar pair once, as ``(left, right)`` with left < right (the whole set: for tools
        and tests; training workers read their share with ``read_share``)."""
        left, right = self._stream(list(range(len(self.manifest["shards"]))))
        once = left < right
        return left[once], right[once]

    def read_share(self, rank: int, world: int) -> PairShare:
        """Worker ``rank`` of ``world``'s share: it owns the samples of shards ``rank, rank + world, ...``
        and reads only those shards, which hold every similar pair of its samples."""
        num_shards = int(self.manifest["num_shards"])
        if not 0 <= rank < world <= num_shards:
            raise StageError(
                f"{self.directory}: {world} training workers need at least as many pair shards, there are "
                f"{num_shards}; raise pairs.num_shards to {world} or more (a multiple of the workers balances them)"
            )
        left, right = self._stream(list(range(rank, num_shards, world)))
        rows = [s["rows"] for s in self.manifest["shards"]]
        return PairShare(
            owned=owner_of(np.arange(self.n_samples), num_shards, world) == rank,
            left=left,
            right=right,
            pairs_per_rank=[sum(rows[r::world]) for r in range(world)],
            similar_pairs=int(self.manifest["similar_pairs"]),
        )
