"""The sample store from a user's files, written by Ray tasks: no process holds more than one file.

1. ``inspect_file`` tasks (in the driver for a small source) read and check every file (``files.read_samples``:
   every bad-input message names the file) and report its rows, feature shape and metadata types;
2. the driver plans the ids from prefix sums of the row counts (``plan_files``): training originals, then the
   validation originals held out of them, then the test originals; each split's transformed copies follow its
   originals block by block, in the order ``transforms.with_copies`` makes them;
3. ``write_file_shards`` tasks read their file again, make its transformed copies and write its shards, each
   named by its first id, with their checksums;
4. the driver merges the tasks' shard entries, in id order, into the manifest (``store.store_manifest``).

The ids, rows and checksums do not depend on how many tasks run or where.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.config import DataConfig, held_out_count
from pipeline.data.formats import read_samples
from pipeline.data.listing import SourceFile
from pipeline.data.store import ROWS_PER_SHARD, sample_table, store_manifest
from pipeline.data.transforms import with_copies
from pipeline.errors import DataError
from pipeline.infrastructure.location import Location
from pipeline.infrastructure.tables import write_manifest, write_shards

log = logging.getLogger(__name__)

# Sources up to this size (bytes; DRLIM_INLINE_BYTES overrides) are read in the driver, where a bad file fails in
# a second without starting Ray; larger ones by Ray tasks, one per file.
INLINE_BYTES = 64 << 20


@dataclass(frozen=True)
class FileFacts:
    """What the plan needs of one file."""

    rows: int
    feature_shape: tuple[int, ...]
    metadata: dict[str, str]  # column -> numpy dtype (``dtype.str``)


@dataclass(frozen=True)
class FilePlan:
    """Where one file's rows go: ``splits`` maps each split the file feeds to the offset of its first original
    within that split; ``held_out`` marks the rows that go to validation (training files only)."""

    file: SourceFile
    rows: int
    first_row: int  # the file's first row within its source: the rows' ``source_index``
    splits: dict[str, int]
    held_out: np.ndarray | None = None


@dataclass(frozen=True)
class StoreLayout:
    """The store as a whole: each split's first id and count of originals, in id order, and the copies."""

    splits: dict[str, tuple[int, int]]
    blocks: int  # 1 + transformed copies of each original
    feature_shape: tuple[int, ...]
    meta_fields: list[pa.Field]

    @property
    def split_rows(self) -> dict[str, int]:
        return {name: self.blocks * n for name, (_, n) in self.splits.items() if n}


def inspect_file(file: SourceFile, cfg: DataConfig) -> FileFacts:
    """Read and check one file; any problem is a ``DataError`` naming it."""
    got = read_samples(file, cfg.feature_column, cfg.label_column, cfg.feature_shape)
    if cfg.transforms:
        with_copies("train", got.features[:1], got.labels[:1], np.zeros(1), cfg, where=file.name)
    return FileFacts(len(got.labels), tuple(got.features.shape[1:]), {k: v.dtype.str for k, v in got.metadata.items()})


def _metadata_fields(files: list[SourceFile], facts: list[FileFacts]) -> list[pa.Field]:
    """One Arrow type per metadata column over all files (integers in one file, floats in another: float)."""
    first = facts[0].metadata
    for file, fact in zip(files, facts):
        if sorted(fact.metadata) != sorted(first):
            raise DataError(f"{file.name} has metadata columns {sorted(fact.metadata)}, {files[0].name} has "
                            f"{sorted(first)}; all files need the same columns")
    fields = []
    for column in sorted(first):
        kinds = [np.dtype(f.metadata[column]) for f in facts]
        text = {k.kind in "USO" for k in kinds}
        if len(text) > 1:
            raise DataError(f"metadata column {column!r} holds numbers in one file and text in another ("
                            f"{files[[k.kind in 'USO' for k in kinds].index(True)].name}); make them agree")
        fields.append(pa.field(column, pa.string() if text == {True} else pa.from_numpy_dtype(np.result_type(*kinds))))
    return fields


def plan_files(
    files: dict[str, list[SourceFile]], facts: dict[str, list[FileFacts]], held_out: np.ndarray | None, blocks: int
) -> tuple[list[FilePlan], StoreLayout]:
    """Each file's plan and the store's layout. ``files``/``facts`` have a "train" and maybe a "test" entry;
    ``held_out`` marks the training originals (over all training files, in order) that form the validation split."""
    named = [(f, fact) for split in files for f, fact in zip(files[split], facts[split])]
    shape = named[0][1].feature_shape
    for file, fact in named:
        if fact.feature_shape != shape:
            raise DataError(f"{file.name}: samples have shape {fact.feature_shape}, but those in "
                            f"{named[0][0].name} have {shape}; all files need the same features")
    rows = {split: np.array([f.rows for f in facts[split]]) for split in files}
    starts = {split: np.concatenate([[0], np.cumsum(r)[:-1]]).astype(int) for split, r in rows.items()}
    plans = []
    if held_out is None:
        counts = {"train": int(rows["train"].sum()), "validation": 0}
        plans += [FilePlan(f, int(n), int(s), {"train": int(s)})
                  for f, n, s in zip(files["train"], rows["train"], starts["train"])]
    else:
        kept = np.concatenate([[0], np.cumsum(~held_out)])
        held = np.concatenate([[0], np.cumsum(held_out)])
        counts = {"train": int(kept[-1]), "validation": int(held[-1])}
        for file, start, n in zip(files["train"], starts["train"], rows["train"]):
            plans.append(FilePlan(file, int(n), int(start), {"train": int(kept[start]), "validation": int(held[start])},
                                  held_out[start : start + n].copy()))
    counts["test"] = int(rows["test"].sum()) if "test" in files else 0
    plans += [FilePlan(f, int(n), int(s), {"test": int(s)})
              for f, n, s in zip(files.get("test", []), rows.get("test", []), starts.get("test", []))]
    layout, first = {}, 0
    for split in ("train", "validation", "test"):
        layout[split] = (first, counts[split])
        first += blocks * counts[split]
    return plans, StoreLayout(layout, blocks, shape, _metadata_fields([f for f, _ in named], [x for _, x in named]))


def write_file_shards(plan: FilePlan, layout: StoreLayout, cfg: DataConfig, directory: Location,
                      rows_per_shard: int = ROWS_PER_SHARD) -> list[dict]:
    """Read the plan's file, make its copies and write its rows as shards under ``directory``; their entries."""
    got = read_samples(plan.file, cfg.feature_column, cfg.label_column, cfg.feature_shape)
    if len(got.labels) != plan.rows:
        raise DataError(f"{plan.file.name} changed while the store was made ({plan.rows} rows, now {len(got.labels)}); "
                        f"run again once the source is complete")
    tables = []
    for split, offset in plan.splits.items():
        if plan.held_out is None:
            rows = np.arange(len(got.labels))
        else:
            rows = np.flatnonzero(plan.held_out if split == "validation" else ~plan.held_out)
        part = with_copies(split, got.features[rows], got.labels[rows], plan.first_row + rows, cfg,
                           {k: v[rows] for k, v in got.metadata.items()} or None, where=plan.file.name)
        base, n = layout.splits[split]
        count = len(rows)
        for b in range(layout.blocks):
            block = slice(b * count, (b + 1) * count)
            for start in range(0, count, rows_per_shard):
                cut = slice(block.start + start, min(block.stop, block.start + start + rows_per_shard))
                size = cut.stop - cut.start
                tables.append(sample_table(
                    split,
                    ids=base + b * n + offset + start + np.arange(size),
                    features=part.features[cut],
                    labels=part.labels[cut],
                    origin=base + offset + start + np.arange(size),
                    transform=None if part.transform is None else part.transform[cut],
                    source_index=part.source_index[cut],
                    metadata={k: v[cut] for k, v in part.metadata.items()} if part.metadata else None,
                    meta_fields=layout.meta_fields,
                ))
    total = sum(t.num_rows for t in tables)
    return write_shards(directory, tables, total, "the sample store", row_group_size=8192,
                        name_of=lambda _, table: f"part-{table.column('id')[0].as_py():012d}.parquet")


def held_out_mask(n: int, validation: float, seed: int = 0) -> np.ndarray:
    """Which of ``n`` training originals form the validation split: ``validation`` of them (a fraction or a count),
    drawn with a fixed seed so that every run of a data section holds out the same samples."""
    count = held_out_count(n, validation)
    if not 0 < count < n:
        raise DataError(f"evaluate.validation={validation:g} holds out {count} of the {n} training samples; it "
                        f"needs at least one and must leave some to train on")
    picked = np.zeros(n, dtype=bool)
    picked[np.random.default_rng(seed).choice(n, count, replace=False)] = True
    return picked


def ingest_files(cfg: DataConfig, files: dict[str, list[SourceFile]], validation: float, directory: Location,
                 provenance: dict) -> dict:
    """Build the store of ``files`` ("train" and maybe "test") into ``directory`` with Ray tasks (a thin wrapper
    of the functions above); ``validation`` of the training originals are held out (``held_out_mask``)."""
    every = [f for split in files for f in files[split]]
    inline = sum(f.size for f in every) <= int(os.environ.get("DRLIM_INLINE_BYTES", INLINE_BYTES))
    found = _run(inspect_file, [(f, cfg) for f in every], inline, "Checking the samples")
    facts, i = {}, 0
    for split in files:
        facts[split], i = found[i : i + len(files[split])], i + len(files[split])
    mask = held_out_mask(sum(f.rows for f in facts["train"]), validation) if validation else None
    plans, layout = plan_files(files, facts, mask, 1 + sum(len(v) for v in cfg.transforms.values()))
    written = _run(write_file_shards, [(p, layout, cfg, directory) for p in plans], inline, "Writing the sample store")
    shards = sorted((entry for entries in written for entry in entries), key=lambda e: e["file"])
    manifest = store_manifest(shards, layout.split_rows, list(layout.feature_shape),
                              [f.name for f in layout.meta_fields], provenance)
    write_manifest(directory, manifest)
    return manifest


def _run(function, calls: list[tuple], inline: bool, desc: str) -> list:
    """``function`` over ``calls``: here, or as one Ray task each (results in order either way)."""
    if inline:
        return [function(*args) for args in calls]
    import ray

    from pipeline.infrastructure.runtime import gather, init_ray

    init_ray()
    remote = ray.remote(function)
    return gather([remote.remote(*args) for args in calls], desc, unit="file")
