"""The data stage: ingest a source once into the sample store (see ``store.py`` for the schema).

Every source (``sources.py``: MNIST, NORB, the synthetic airplane, the user's files) goes the same way. Its
parts are listed, not read, and the store's key (what changes the samples: the data section, the source's
fingerprint, the validation split) is checked first: a finished, verified store of that key is reused. Else the
parts are read and checked, the ids planned once (``layout.py``) and each part's shards written, in the driver
for a small source or by one Ray task per part for a large one; the manifest, written last, finishes the store.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import DataConfig
from pipeline.config.choices import DATA_SOURCES
from pipeline.data.layout import PartPlan, StoreLayout, inspect_part, part_facts, part_tables, plan_parts
from pipeline.data.sources import DataSource, PartSamples, SourcePart, array_parts
from pipeline.data.store import ROWS_PER_SHARD, SampleStore, store_manifest
from pipeline.infrastructure.atomic import content_hash, exclusive
from pipeline.infrastructure.location import Location
from pipeline.infrastructure.runtime import in_process, run_tasks
from pipeline.infrastructure.tables import reusable, write_manifest, write_shards

log = logging.getLogger(__name__)


def data_source(cfg: DataConfig, root: Path) -> DataSource:
    """The ``data.source`` of ``cfg`` under the data root ``root``."""
    source: DataSource = DATA_SOURCES.build(cfg.source, None, cfg, root)
    return source


def store_key(cfg: DataConfig, validation: float, fingerprint: Any) -> str:
    # The key covers what changes the samples; not where they were read from or whether download was allowed.
    # A field only one source reads (data.samples) is in that source's fingerprint instead.
    data = cfg.model_dump(exclude={"root", "download", "path", "test_path", "storage_options", "samples"})
    return content_hash({"data": data, "files": fingerprint, "validation": validation, "store": 3})


def ingest(cfg: DataConfig, data_root: Path, workdir: str | Path | Location, validation: float = 0) -> SampleStore:
    """Build (or reuse) the sample store for ``cfg`` under ``workdir/samples/<key>`` (a local folder or object
    storage); ``validation`` of the training originals (a fraction or a count, ``evaluate.validation``) become the
    validation split."""
    source = data_source(cfg, data_root)
    parts = source.parts()  # a missing source fails (or downloads) here, before anything is written
    provenance = {
        "source": cfg.source,
        "digits": cfg.digits,
        "path": cfg.path,
        "test_path": cfg.test_path,
        "data_root": str(data_root),
        "transforms": cfg.transforms,
        "validation": validation,
    }
    return _store_of(
        parts, cfg, validation, source.fingerprint(), Location.of(workdir), provenance, groups=source.groups()
    )


def ingest_arrays(
    splits: dict[str, PartSamples], cfg: DataConfig, workdir: str | Path | Location, validation: float = 0
) -> SampleStore:
    """``ingest`` of arrays in memory ("train", and "test" if given; ``cfg``: their transforms and feature shape),
    keyed by their content: the same arrays find their store again."""
    digest = hashlib.sha256()
    for split, samples in sorted(splits.items()):
        for array in (samples.features, samples.labels, samples.source_index):
            digest.update(f"{split} {array.shape} {array.dtype}".encode() + np.ascontiguousarray(array).tobytes())
    provenance = {"source": "arrays", "transforms": cfg.transforms, "validation": validation}
    return _store_of(
        array_parts(splits), cfg, validation, digest.hexdigest(), Location.of(workdir), provenance, inline=True
    )


def _store_of(
    parts: list[SourcePart],
    cfg: DataConfig,
    validation: float,
    fingerprint: Any,
    workdir: Location,
    provenance: dict,
    inline: bool | None = None,
    groups: np.ndarray | None = None,
) -> SampleStore:
    """The store of ``parts`` under ``workdir/samples/<key>``, reused when an identical one is there; the
    validation split holds out whole ``groups`` when given (``DataSource.groups``)."""
    directory = workdir.child("samples", store_key(cfg, validation, fingerprint))
    waiting = f"Waiting for another run that is building the sample store {directory}"
    with exclusive(workdir.workspace, f"samples-{directory.name}", waiting):
        if (store := reusable(SampleStore, directory)) is not None:
            log.info("Reusing sample store %s (%d samples)", directory, store.manifest["rows"])
            return store
        with directory.build(f"the sample store {directory}") as out:
            manifest = write_store(parts, cfg, validation, out, provenance, inline, groups=groups)
    log.info(
        "Sample store %s: %s samples (%d transformed copies of each original)",
        directory,
        ", ".join(f"{n} {name}" for name, n in manifest["splits"].items()),
        sum(len(v) for v in cfg.transforms.values()),
    )
    return SampleStore.open(directory)


def write_part(
    plan: PartPlan,
    layout: StoreLayout,
    cfg: DataConfig,
    location: Location,
    samples: PartSamples | None = None,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> list[dict]:
    """Write one part's shards (read again unless its ``samples`` are given) into ``location``; their entries."""
    samples = samples if samples is not None else plan.part.read()
    tables = part_tables(plan, layout, samples, cfg, rows_per_shard)
    return write_shards(
        location,
        tables,
        sum(t.num_rows for t in tables),
        "the sample store",
        row_group_size=8192,
        name_of=lambda _, table: f"part-{table.column('id')[0].as_py():012d}.parquet",
    )


def write_store(
    parts: list[SourcePart],
    cfg: DataConfig,
    validation: float,
    location: Location,
    provenance: dict,
    inline: bool | None = None,
    rows_per_shard: int = ROWS_PER_SHARD,
    groups: np.ndarray | None = None,
) -> dict:
    """The store of ``parts`` written into ``location``: in this process, each part read once, when they are small
    (``runtime.in_process``; ``inline`` decides instead when given), else by Ray tasks (a thin wrapper of
    ``layout.py``); its manifest."""
    blocks = 1 + sum(len(v) for v in cfg.transforms.values())
    if inline if inline is not None else in_process(sum(p.size for p in parts)):
        samples = [part.read() for part in parts]
        facts = [part_facts(p, s, cfg) for p, s in zip(parts, samples)]
        plans, layout = plan_parts(parts, facts, validation, blocks, groups)
        written = [write_part(plan, layout, cfg, location, s, rows_per_shard) for plan, s in zip(plans, samples)]
    else:
        facts = run_tasks(inspect_part, [(p, cfg) for p in parts], "Checking the samples", unit="part")
        plans, layout = plan_parts(parts, facts, validation, blocks, groups)
        written = run_tasks(
            write_part,
            [(p, layout, cfg, location, None, rows_per_shard) for p in plans],
            "Writing the sample store",
            unit="part",
        )
    shards = sorted((entry for entries in written for entry in entries), key=lambda e: e["file"])
    manifest = store_manifest(
        shards,
        layout.split_rows,
        list(layout.feature_shape),
        [f.name for f in layout.meta_fields],
        provenance,
        layout.feature_dtype,
        layout.divisor,
    )
    write_manifest(location, manifest)
    return manifest


def store_arrays(
    location: str | Path | Location,
    splits: dict[str, PartSamples],
    cfg: DataConfig | None = None,
    validation: float = 0,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> SampleStore:
    """A sample store of arrays in memory ("train", and "test" if given), planned and written as any source's
    store is, into ``location`` (``cfg``: its transforms; nothing else of it applies)."""
    location = Location.of(location)
    cfg = cfg or DataConfig()
    write_store(array_parts(splits), cfg, validation, location, {"source": "arrays"}, True, rows_per_shard)
    return SampleStore.open(location)
