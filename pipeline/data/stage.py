"""The data stage: ingest a source once into the sample store (see ``store.py`` for the schema).

The store's key covers what changes the samples; a finished, verified store is reused. The built-in sources
(MNIST, NORB, the airplane) are small and read here; a user's files (``data.path``: a file, folder or glob, local
or on object storage) are listed here and read by Ray tasks (``file_ingest.py``), after the key is checked."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.config import DataConfig
from pipeline.data.file_ingest import held_out_mask, ingest_files
from pipeline.data.mnist import RAW_FILES, load_mnist, raw_dir, select_digits
from pipeline.data.norb import NORB_FILES, load_norb_airplane, render_airplane
from pipeline.data.listing import SourceFile, fingerprint, list_source
from pipeline.data.store import SampleStore, SplitArrays, build_sample_table, write_store
from pipeline.data.transforms import with_copies
from pipeline.infrastructure.atomic import content_hash, exclusive
from pipeline.infrastructure.location import Location
from pipeline.infrastructure.tables import reusable

log = logging.getLogger(__name__)


USER_FILES = ("parquet", "numpy")


def _fingerprint(cfg: DataConfig, root: Path, files: dict[str, list[SourceFile]]) -> dict | list:
    """What identifies the source's content: MNIST's file sizes, or the listing of the user's files."""
    if cfg.source == "mnist":
        return {name: (raw_dir(root) / name).stat().st_size for name in RAW_FILES if (raw_dir(root) / name).is_file()}
    if cfg.source == "norb":
        return {name: (root / "norb" / name).stat().st_size for name in NORB_FILES.values()}
    if cfg.source == "airplane":
        return {"renderer": 1}  # bump when render_airplane changes
    return {split: fingerprint(found) for split, found in files.items()}


def _store_key(cfg: DataConfig, root: Path, validation: float, files: dict[str, list[SourceFile]]) -> str:
    # The key covers what changes the samples; not where they were read from or whether download was allowed.
    data = cfg.model_dump(exclude={"root", "download", "path", "test_path", "storage_options"})
    return content_hash({"data": data, "files": _fingerprint(cfg, root, files), "validation": validation, "store": 3})


def list_files(cfg: DataConfig, root: Path) -> dict[str, list[SourceFile]]:
    """The user's files of each split ("train": data.path, "test": data.test_path); reads no data."""
    return {split: list_source(value, key, root, cfg.storage_options)
            for split, key, value in (("train", "data.path", cfg.path), ("test", "data.test_path", cfg.test_path))
            if value}


def read_source(cfg: DataConfig, root: Path, validation: float = 0) -> list[SplitArrays]:
    """The splits of the configured source -- train, validation (``validation`` of the training originals,
    when > 0) and test when the source has one -- each followed by its transformed copies."""
    splits = read_originals(cfg, root)
    if validation:
        splits = [*hold_out(splits[0], validation), *splits[1:]]
    return [with_copies(s.name, s.features, s.labels, s.source_index, cfg, s.metadata) for s in splits]


def read_originals(cfg: DataConfig, root: Path) -> list[SplitArrays]:
    """The original samples of the configured source: the training split first, then the test split if any."""
    if cfg.source == "mnist":
        train_images, train_labels = load_mnist(root, train=True, download=cfg.download)
        test_images, test_labels = load_mnist(root, train=False, download=cfg.download)
        train_idx = select_digits(train_labels, cfg.digits, cfg.train_per_digit)
        test_idx = select_digits(test_labels, cfg.digits, cfg.test_per_digit)
        return [SplitArrays("train", train_images[train_idx, None] / 255.0, train_labels[train_idx], train_idx),
                SplitArrays("test", test_images[test_idx, None] / 255.0, test_labels[test_idx], test_idx)]
    if cfg.source in ("norb", "airplane"):
        # The paper maps the 972 views it trains on (there is no held-out set of one object's views).
        images, meta = render_airplane() if cfg.source == "airplane" else load_norb_airplane(root, cfg.norb_instance)
        return [SplitArrays("train", images, np.full(len(images), -1), np.arange(len(images)), metadata=meta)]
    raise ValueError(f"source {cfg.source!r} is read by Ray tasks (file_ingest.py), not here")


def hold_out(train: SplitArrays, validation: float, seed: int = 0) -> tuple[SplitArrays, SplitArrays]:
    """``(train, validation)``: ``validation`` of the originals (``file_ingest.held_out_mask``); both keep the
    source's order."""
    picked = held_out_mask(len(train.labels), validation, seed)

    def part(name: str, rows: np.ndarray) -> SplitArrays:
        meta = {k: v[rows] for k, v in train.metadata.items()} if train.metadata else None
        return SplitArrays(name, train.features[rows], train.labels[rows], train.source_index[rows], metadata=meta)

    return part("train", ~picked), part("validation", picked)


def ingest(cfg: DataConfig, data_root: Path, workdir: str | Path | Location, validation: float = 0) -> SampleStore:
    """Build (or reuse) the sample store for ``cfg`` under ``workdir/samples/<key>`` (a local folder or object
    storage); ``validation`` of the training originals (a fraction or a count, ``evaluate.validation``) become the
    validation split."""
    workdir = Location.of(workdir)
    files = list_files(cfg, data_root) if cfg.source in USER_FILES else {}
    # The built-in sources are read first, so that missing data fails (or downloads) before anything is written;
    # a user's files are only listed: a finished store of the same listing is reused without reading them.
    splits = [] if files else read_source(cfg, data_root, validation)
    key = _store_key(cfg, data_root, validation, files)
    directory = workdir.child("samples", key)
    waiting = f"Waiting for another run that is building the sample store {directory}"
    with exclusive(workdir.workspace, f"samples-{key}", waiting):
        if (store := reusable(SampleStore, directory)) is not None:
            log.info("Reusing sample store %s (%d samples)", directory, store.manifest["rows"])
            return store
        provenance = {"source": cfg.source, "digits": cfg.digits, "path": cfg.path, "test_path": cfg.test_path,
                      "data_root": str(data_root), "transforms": cfg.transforms, "validation": validation}
        with directory.build(f"the sample store {directory}") as out:
            if files:
                manifest = ingest_files(cfg, files, validation, out, provenance)
            else:
                manifest = write_store(out, build_sample_table(splits), provenance=provenance)
    copies = sum(len(v) for v in cfg.transforms.values())
    log.info("Sample store %s: %s samples (%d transformed copies of each original)", directory,
             ", ".join(f"{n} {name}" for name, n in manifest["splits"].items()), copies)
    return SampleStore.open(directory)
