"""Where every sample of a store goes: ids planned once for every source, and each part's shards.

1. each part of the source is read and checked (``part_facts``: its rows, feature shape, metadata types);
2. the ids are planned from prefix sums of the row counts (``plan_parts``): the training originals, then the
   validation originals held out of them (``held_out_mask``), then the test originals; each split's transformed
   copies follow its originals block by block, in the order ``transforms.with_copies`` makes them;
3. each part's rows become shard tables (``part_tables``): its originals and their copies, cut where its ids run
   on into shards of at most ``ROWS_PER_SHARD`` rows, each named by its first id.

The ids, rows and shards do not depend on where or in how many processes the parts are written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.config import DataConfig, held_out_count
from pipeline.data.sources import PartSamples, SourcePart
from pipeline.data.store import FLOAT32, ROWS_PER_SHARD, sample_table
from pipeline.data.transforms import with_copies
from pipeline.errors import DataError


@dataclass(frozen=True)
class PartFacts:
    """What the plan needs of one part."""

    rows: int
    feature_shape: tuple[int, ...]
    metadata: dict[str, str]  # column -> numpy dtype (``dtype.str``)
    feature_dtype: str = "float32"
    divisor: float = 1.0


@dataclass(frozen=True)
class PartPlan:
    """Where one part's rows go: ``splits`` maps each split the part feeds to the offset of its first original
    within that split; ``held_out`` marks the rows that go to validation (training parts only); ``first_row``
    is the part's first row within its split of the source (added to each sample's ``source_index``)."""

    part: SourcePart
    rows: int
    first_row: int
    splits: dict[str, int]
    held_out: np.ndarray | None = None


@dataclass(frozen=True)
class StoreLayout:
    """The store as a whole: each split's first id and count of originals, in id order, and the copies."""

    splits: dict[str, tuple[int, int]]
    blocks: int  # 1 + transformed copies of each original
    feature_shape: tuple[int, ...]
    meta_fields: list[pa.Field]
    feature_dtype: np.dtype = FLOAT32  # how the features are stored: as every part gives them, else float32
    divisor: float = 1.0

    @property
    def split_rows(self) -> dict[str, int]:
        return {name: self.blocks * n for name, (_, n) in self.splits.items() if n}


def part_facts(part: SourcePart, samples: PartSamples, cfg: DataConfig, rows: int | None = None) -> PartFacts:
    """The facts of a part's samples (``rows`` of them: default, all of ``samples``); ``data.transforms`` are tried
    on its first sample, so a sample shape they cannot take fails here, naming the part."""
    if cfg.transforms:
        with_copies("train", samples.features[:1], samples.labels[:1], np.zeros(1), cfg, where=part.name)
    return PartFacts(
        len(samples) if rows is None else rows,
        tuple(samples.features.shape[1:]),
        {k: v.dtype.str for k, v in samples.metadata.items()},
        samples.features.dtype.name,
        samples.divisor,
    )


def inspect_part(part: SourcePart, cfg: DataConfig) -> PartFacts:
    """Read and check one part (any problem is a ``DataError`` naming it), or its preview when it has one; its
    facts."""
    preview = part.preview()
    if preview is not None:
        return part_facts(part, preview[0], cfg, preview[1])
    return part_facts(part, part.read(), cfg)


def metadata_fields(parts: list[SourcePart], facts: list[PartFacts]) -> list[pa.Field]:
    """One Arrow type per metadata column over all parts (integers in one part, floats in another: float)."""
    first = facts[0].metadata
    for part, fact in zip(parts, facts):
        if sorted(fact.metadata) != sorted(first):
            raise DataError(
                f"{part.name} has metadata columns {sorted(fact.metadata)}, {parts[0].name} has "
                f"{sorted(first)}; all files need the same columns"
            )
    fields = []
    for column in sorted(first):
        kinds = [np.dtype(f.metadata[column]) for f in facts]
        text = {k.kind in "USO" for k in kinds}
        if len(text) > 1:
            raise DataError(
                f"metadata column {column!r} holds numbers in one file and text in another ("
                f"{parts[[k.kind in 'USO' for k in kinds].index(True)].name}); make them agree"
            )
        fields.append(pa.field(column, pa.string() if text == {True} else pa.from_numpy_dtype(np.result_type(*kinds))))
    return fields


def held_out_mask(n: int, validation: float, seed: int = 0, groups: np.ndarray | None = None) -> np.ndarray:
    """Which of ``n`` training originals form the validation split: ``validation`` of them (a fraction or a count),
    drawn with a fixed seed so that every run of a data section holds out the same samples. With ``groups`` (one
    per original, ``DataSource.groups``), ``validation`` of the groups, each with all its members."""
    names = None if groups is None else np.unique(groups)
    total = n if names is None else len(names)
    count = held_out_count(total, validation)
    what = "training samples" if names is None else "groups of training samples (e.g. a digit and its deformations)"
    if not 0 < count < total:
        raise DataError(
            f"evaluate.validation={validation:g} holds out {count} of the {total} {what}; it "
            f"needs at least one and must leave some to train on"
        )
    chosen = np.random.default_rng(seed).choice(total, count, replace=False)
    if groups is not None and names is not None:
        return np.isin(groups, names[chosen])
    picked = np.zeros(n, dtype=bool)
    picked[chosen] = True
    return picked


def plan_parts(
    parts: list[SourcePart],
    facts: list[PartFacts],
    validation: float,
    blocks: int,
    groups: np.ndarray | None = None,
) -> tuple[list[PartPlan], StoreLayout]:
    """Each part's plan and the store's layout; ``validation`` of the training originals (over all training parts,
    in order; of their ``groups``, when given) form the validation split."""
    shape = facts[0].feature_shape
    for part, fact in zip(parts, facts):
        if fact.feature_shape != shape:
            raise DataError(
                f"{part.name}: samples have shape {fact.feature_shape}, but those in {parts[0].name} have "
                f"{shape}; all files need the same features"
            )
    rows = np.array([f.rows for f in facts])
    is_train = np.array([p.split == "train" for p in parts])
    first_row = np.zeros(len(parts), dtype=np.int64)  # prefix sums within each split
    for split in ("train", "test"):
        mine = np.array([p.split == split for p in parts])
        first_row[mine] = np.concatenate([[0], np.cumsum(rows[mine])[:-1]]).astype(np.int64)
    n_train = int(rows[is_train].sum())
    held = held_out_mask(n_train, validation, groups=groups) if validation else np.zeros(n_train, dtype=bool)
    kept_before = np.concatenate([[0], np.cumsum(~held)])
    held_before = np.concatenate([[0], np.cumsum(held)])
    plans = []
    for part, n, start in zip(parts, rows.tolist(), first_row.tolist()):
        if part.split == "test":
            plans.append(PartPlan(part, n, start, {"test": start}))
        elif validation:
            plans.append(
                PartPlan(
                    part,
                    n,
                    start,
                    {"train": int(kept_before[start]), "validation": int(held_before[start])},
                    held[start : start + n].copy(),
                )
            )
        else:
            plans.append(PartPlan(part, n, start, {"train": start}))
    counts = {"train": int((~held).sum()), "validation": int(held.sum()), "test": int(rows[~is_train].sum())}
    layout, first = {}, 0
    for split in ("train", "validation", "test"):
        layout[split] = (first, counts[split])
        first += blocks * counts[split]
    # Features are stored as the parts give them when all agree and no transform computes on them, else float32.
    kinds = {(f.feature_dtype, f.divisor) for f in facts}
    dtype, divisor = next(iter(kinds)) if len(kinds) == 1 and blocks == 1 else ("float32", 1.0)
    return plans, StoreLayout(layout, blocks, shape, metadata_fields(parts, facts), np.dtype(dtype), divisor)


def part_tables(
    plan: PartPlan, layout: StoreLayout, samples: PartSamples, cfg: DataConfig, rows_per_shard: int = ROWS_PER_SHARD
) -> list[pa.Table]:
    """The shard tables of one part: its originals of each split it feeds with their copies, cut where its ids run
    on into shards of at most ``rows_per_shard`` rows."""
    if len(samples) != plan.rows:
        raise DataError(
            f"{plan.part.name} changed while the store was made ({plan.rows} rows, now {len(samples)}); "
            f"run again once the source is complete"
        )
    tables = []
    for split, offset in plan.splits.items():
        if plan.held_out is None:
            mine = samples
        else:
            mine = samples.rows(plan.held_out if split == "validation" else ~plan.held_out)
        if len(mine) == 0:  # a part none of whose samples are held out, say
            continue
        part = with_copies(
            split,
            mine.features if mine.features.dtype == layout.feature_dtype else mine.as_float(),
            mine.labels,
            plan.first_row + mine.source_index,
            cfg,
            mine.metadata or None,
            where=plan.part.name,
        )
        base, n = layout.splits[split]
        count = len(mine)
        origin = np.arange(count) if part.origin is None else np.asarray(part.origin)
        block = np.repeat(np.arange(layout.blocks), count) if part.origin is not None else np.zeros(count, np.int64)
        ids = base + block * n + offset + origin
        tables.append(
            sample_table(
                split,
                ids,
                part.features,
                part.labels,
                base + offset + origin,
                part.transform,
                part.source_index,
                part.metadata,
                layout.meta_fields,
                layout.feature_dtype,
            )
        )
    if not tables:
        return []
    table = pa.concat_tables(tables)
    ids = table.column("id").to_numpy()
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1  # where the ids stop running on
    runs = zip(np.r_[0, breaks], np.r_[breaks, len(ids)])
    return [
        table.slice(start, min(rows_per_shard, stop - start))
        for run_start, stop in runs
        for start in range(run_start, stop, rows_per_shard)
    ]
