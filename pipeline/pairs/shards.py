"""Pair shards: the Parquet contract between the pair stage and training.

Schema (version 1), one row per similar pair, each unordered pair once:
    left    int64   sample id, left < right
    right   int64   sample id
    label   int8    0 = similar (the paper's Y); dissimilar pairs are never written
    source  dictionary<int8, string>   how the pair was found: knn, ...
Rows go to shard ``mix(left) % num_shards`` (independent of how many tasks produced them), sorted by
(left, right). ``manifest.json`` lists every shard with its row count and sha256 and is written last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import StageError
from pipeline.io import atomic_path, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
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
    shard = shard_of(lo, num_shards)
    directory.mkdir(parents=True, exist_ok=True)
    shards = []
    for s in range(num_shards):
        mask = shard == s
        name = f"part-{s:05d}.parquet"
        table = pa.table(
            {
                "left": lo[mask],
                "right": hi[mask],
                "label": np.zeros(int(mask.sum()), dtype=np.int8),
                "source": pa.DictionaryArray.from_arrays(pa.array(src[mask], pa.int8()), pa.array(source_names)),
            },
            schema=PAIR_SCHEMA,
        )
        with atomic_path(directory / name) as tmp:
            pq.write_table(table, tmp, row_group_size=row_group_size)
        shards.append({"file": name, "rows": table.num_rows, "sha256": sha256_file(directory / name)})
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
        bad = []
        for shard in self.manifest["shards"]:
            path = self.directory / shard["file"]
            if not path.is_file() or sha256_file(path) != shard["sha256"]:
                bad.append(shard["file"])
        return bad

    def read(self, shard_indices: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(left, right)`` of the given shards (all when None), in shard order."""
        shards = self.manifest["shards"]
        chosen = range(len(shards)) if shard_indices is None else shard_indices
        lefts, rights = [], []
        for i in chosen:
            table = pq.read_table(self.directory / shards[i]["file"], columns=["left", "right"])
            lefts.append(table.column("left").to_numpy())
            rights.append(table.column("right").to_numpy())
        if not lefts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(lefts), np.concatenate(rights)
