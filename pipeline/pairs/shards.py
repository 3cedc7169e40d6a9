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

from pipeline.config.choices import PAIR_SOURCES
from pipeline.errors import StageError
from pipeline.infrastructure.location import Location
from pipeline.infrastructure.tables import ShardedTable, write_manifest, write_shards

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
PAIR_SCHEMA = pa.schema(
    [
        pa.field("left", pa.int64(), nullable=False),
        pa.field("right", pa.int64(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("source", pa.dictionary(pa.int8(), pa.string()), nullable=False),
    ],
    metadata={"drlim.schema_version": str(SCHEMA_VERSION)},
)


# Pair sources, in the registry's order (pipeline/config/choices.py): the source column's dictionary, and when
# several find the same pair, the earlier name is recorded.
SOURCES = PAIR_SOURCES.names
# A directed similar pair on its way to its shard's writer: ``forward`` is 1 when ``left`` itself found ``right``
# (a kNN query's own edge) and 0 for the reverse of another sample's edge (what ``symmetrize: mutual`` checks).
ROW = np.dtype([("left", "<i8"), ("right", "<i8"), ("source", "i1"), ("forward", "i1")])


def knn_pairs(neighbors: np.ndarray, query_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Directed kNN edges ``(query, neighbour)`` as flat ``(left, right)`` arrays (not yet canonical)."""
    n, k = neighbors.shape
    if query_ids is None:
        query_ids = np.arange(n, dtype=np.int64)
    return np.repeat(np.asarray(query_ids, dtype=np.int64), k), neighbors.reshape(-1).astype(np.int64)


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
    source: np.ndarray | None = None  # per row, an index into SOURCES (read_share(..., with_source=True))
    pairs_by_source: dict[str, int] | None = None  # unordered similar pairs of the whole set, by source

    @property
    def world(self) -> int:
        return len(self.pairs_per_rank)

    @property
    def per_epoch(self) -> int:
        """Similar pairs every worker takes an epoch. Each pair is held by the owners of both its ends, so an
        epoch -- as many similar pairs as there are -- is half a share per worker; all take half the smallest
        share, so all take the same (synchronised) steps."""
        return min(self.pairs_per_rank) // 2


def rows(left: np.ndarray, right: np.ndarray, source: str | np.ndarray, forward: int = 1) -> np.ndarray:
    """``ROW``s ``(left, right)`` found by ``source`` (a name in ``SOURCES``, or an index per row)."""
    out = np.empty(len(left), ROW)
    out["left"], out["right"], out["forward"] = left, right, forward
    out["source"] = SOURCES.index(source) if isinstance(source, str) else source
    return out


def both_ways(left: np.ndarray, right: np.ndarray, source: str | np.ndarray) -> np.ndarray:
    """Each pair ``left -> right`` and its reverse (marked ``forward = 0``)."""
    return np.concatenate([rows(left, right, source, 1), rows(right, left, source, 0)])


def by_shard(found: np.ndarray, num_shards: int) -> list[np.ndarray]:
    """``found`` rows cut into those of each pair shard (by ``left``)."""
    shard = shard_of(found["left"], num_shards)
    order = np.argsort(shard, kind="stable")
    return np.split(found[order], np.cumsum(np.bincount(shard, minlength=num_shards))[:-1])


def _firsts(*keys: np.ndarray) -> np.ndarray:
    """Where a run of equal keys starts, in rows sorted by those keys."""
    first = np.ones(len(keys[0]), dtype=bool)
    if len(first) > 1:
        first[1:] = np.logical_or.reduce([key[1:] != key[:-1] for key in keys])
    return first


def pair_shard_table(found: np.ndarray, mutual: bool) -> tuple[pa.Table, dict]:
    """One shard's table from every row routed to it: self pairs dropped; with ``mutual``, kNN rows kept only
    where both ends found each other; one row per (left, right), with the first source in ``SOURCES`` that found
    it; sorted by (left, right). Also the shard's share of the manifest's figures."""
    found = found[found["left"] != found["right"]]
    found = found[np.lexsort((found["forward"], found["source"], found["right"], found["left"]))]
    knn = found["source"] == SOURCES.index("knn")
    edges = found[knn]
    starts = np.flatnonzero(_firsts(edges["left"], edges["right"]))
    both = np.zeros(len(starts), dtype=bool)
    if len(starts):  # sorted by forward within a pair: both directions found <=> first is 0 and last is 1
        ends = np.r_[starts[1:], len(edges)] - 1
        both = (edges["forward"][starts] == 0) & (edges["forward"][ends] == 1)
    if mutual:
        keep_edge = np.repeat(both, np.diff(np.r_[starts, len(edges)]))
        keep = np.ones(len(found), dtype=bool)
        keep[np.flatnonzero(knn)[~keep_edge]] = False
        found = found[keep]
    found = found[_firsts(found["left"], found["right"])]
    once = found["left"] < found["right"]
    lefts, degrees = np.unique(found["left"], return_counts=True)
    values, counts = np.unique(degrees, return_counts=True)
    table = pa.table(
        {
            "left": found["left"],
            "right": found["right"],
            "label": np.zeros(len(found), dtype=np.int8),
            "source": pa.DictionaryArray.from_arrays(pa.array(found["source"], pa.int8()), pa.array(SOURCES)),
        },
        schema=PAIR_SCHEMA,
    )
    figures = {
        "similar_pairs": int(once.sum()),
        "by_source": np.bincount(found["source"][once].astype(np.int64), minlength=len(SOURCES)).tolist(),
        "degrees": {str(int(v)): int(c) for v, c in zip(values, counts)},
        "samples": len(lefts),
        "mutual_edges": int(both.sum()),
    }
    return table, figures


def write_pair_shard(
    location: Location, shard: int, *parts: np.ndarray, mutual: bool = False, row_group_size: int = 65536
) -> tuple[dict, dict]:
    """Write shard ``shard`` of a pair set from the rows routed to it (``parts``, from any number of producers);
    its manifest entry and figures (``pair_shard_table``)."""
    table, figures = pair_shard_table(np.concatenate([np.empty(0, ROW), *parts]), mutual)
    (entry,) = write_shards(
        location,
        [table],
        table.num_rows,
        "the pair set",
        row_group_size=row_group_size,
        name_of=lambda *_: f"part-{shard:05d}.parquet",
    )
    return entry, figures


def pair_manifest(
    written: list[tuple[dict, dict]], n_samples: int, provenance: dict, extra: dict | None = None
) -> dict:
    """The manifest of a pair set from its shards' entries and figures, in shard order."""
    similar = sum(f["similar_pairs"] for _, f in written)
    by_source = np.sum([f["by_source"] for _, f in written], axis=0).tolist() if written else [0] * len(SOURCES)
    degrees: dict[str, int] = {}
    for _, figures in written:
        for degree, count in figures["degrees"].items():
            degrees[degree] = degrees.get(degree, 0) + count
    isolated = n_samples - sum(f["samples"] for _, f in written)
    if isolated:
        degrees["0"] = isolated
    return {
        "schema_version": SCHEMA_VERSION,
        "n_samples": n_samples,
        "similar_pairs": similar,
        "dissimilar_pairs_implicit": n_samples * (n_samples - 1) // 2 - similar,
        "counts_by_source": dict(zip(SOURCES, by_source)),
        "degree_histogram": dict(sorted(degrees.items(), key=lambda item: int(item[0]))),
        "num_shards": len(written),
        "shards": [entry for entry, _ in written],
        "provenance": provenance,
        **(extra or {}),
    }


def write_pair_shards(
    directory: str | Path | Location,
    found: np.ndarray,
    n_samples: int,
    num_shards: int,
    provenance: dict,
    mutual: bool = False,
    extra: dict | None = None,
) -> dict:
    """A whole pair set from ``found`` rows in one process (the pair stage does the same per shard in Ray tasks);
    the manifest, also written to ``directory``."""
    location = Location.of(directory)
    parts = by_shard(found, num_shards)
    written = [write_pair_shard(location, s, part, mutual=mutual) for s, part in enumerate(parts)]
    manifest = pair_manifest(written, n_samples, provenance, extra)
    write_manifest(location, manifest)
    return manifest


class PairSet(ShardedTable):
    """A finished set of pair shards, read through its manifest (``PairSet.open(location)``)."""

    KIND = "pair set"
    SCHEMA_VERSION = SCHEMA_VERSION
    STAGE = "the pair stage"

    @property
    def n_samples(self) -> int:
        return int(self.manifest["n_samples"])

    def _stream(self, shard_indices: list[int], with_source: bool = False) -> tuple[np.ndarray, ...]:
        """The directed rows ``(left, right)`` (and ``source``, indices into ``SOURCES``, if asked) of the given
        shards, read one record batch at a time into arrays sized from the manifest (no second copy)."""
        shards = [self.manifest["shards"][i] for i in shard_indices]
        total = sum(shard["rows"] for shard in shards)
        columns = ["left", "right"] + (["source"] if with_source else [])
        out = [np.empty(total, np.int64), np.empty(total, np.int64)]
        if with_source:
            out.append(np.empty(total, np.int8))
        row = 0
        for shard in shards:
            with pq.ParquetFile(self.directory / shard["file"]) as parquet:
                for batch in parquet.iter_batches(columns=columns):
                    end = row + batch.num_rows
                    out[0][row:end] = batch.column(0).to_numpy()
                    out[1][row:end] = batch.column(1).to_numpy()
                    if with_source:  # the dictionary is written as SOURCES; map through it all the same
                        codes = batch.column(2)
                        index = np.array([SOURCES.index(name) for name in codes.dictionary.to_pylist()], np.int8)
                        out[2][row:end] = index[codes.indices.to_numpy(zero_copy_only=False)]
                    row = end
        if row != total:
            raise StageError(
                f"{self.directory}: the pair shards hold {row} rows, the manifest says {total}; "
                "delete the folder and re-run the pair stage"
            )
        return tuple(out)

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Every unordered similar pair once, as ``(left, right)`` with left < right (the whole set: for tools
        and tests; training workers read their share with ``read_share``)."""
        left, right = self._stream(list(range(len(self.manifest["shards"]))))
        once = left < right
        return left[once], right[once]

    def read_share(self, rank: int, world: int, with_source: bool = False) -> PairShare:
        """Worker ``rank`` of ``world``'s share: it owns the samples of shards ``rank, rank + world, ...``
        and reads only those shards, which hold every similar pair of its samples; ``with_source`` also reads
        how each pair was found (for ``train.source_weights``)."""
        num_shards = int(self.manifest["num_shards"])
        if not 0 <= rank < world <= num_shards:
            raise StageError(
                f"{self.directory}: {world} training workers need at least as many pair shards, there are "
                f"{num_shards}; raise pairs.num_shards to {world} or more (a multiple of the workers balances them)"
            )
        left, right, *source = self._stream(list(range(rank, num_shards, world)), with_source)
        rows = [s["rows"] for s in self.manifest["shards"]]
        return PairShare(
            owned=owner_of(np.arange(self.n_samples), num_shards, world) == rank,
            left=left,
            right=right,
            pairs_per_rank=[sum(rows[r::world]) for r in range(world)],
            similar_pairs=int(self.manifest["similar_pairs"]),
            source=source[0] if with_source else None,
            pairs_by_source=dict(self.manifest["counts_by_source"]) if with_source else None,
        )
