"""Data stage: ingest a source once into the sample store (see ``store.py`` for the schema)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.config import DataConfig
from pipeline.data.mnist import RAW_FILES, load_mnist, raw_dir, select_digits
from pipeline.data.store import SampleStore, SplitArrays, build_sample_table, write_store
from pipeline.data.transforms import transformed_copies
from pipeline.io import atomic_dir, content_hash

log = logging.getLogger(__name__)


def _store_key(cfg: DataConfig, root: Path) -> str:
    # The key covers what changes the samples; not where they were read from or whether download was allowed.
    files = {name: (raw_dir(root) / name).stat().st_size for name in RAW_FILES if (raw_dir(root) / name).is_file()}
    return content_hash({"data": cfg.model_dump(exclude={"root", "download"}), "files": files, "store": 1})


def ingest(cfg: DataConfig, data_root: Path, workdir: Path) -> SampleStore:
    """Build (or reuse) the sample store for ``cfg`` under ``workdir/samples/<key>``."""
    # Loading first makes a missing data set fail (or download) before anything is written.
    train_images, train_labels = load_mnist(data_root, train=True, download=cfg.download)
    test_images, test_labels = load_mnist(data_root, train=False, download=cfg.download)
    directory = workdir / "samples" / _store_key(cfg, data_root)
    if (directory / "manifest.json").is_file():
        store = SampleStore(directory)
        if store.verify():
            log.info("Reusing sample store %s (%d samples)", directory, store.manifest["rows"])
            return store
        log.warning("Sample store %s fails its checksum; rebuilding it", directory)

    train_idx = select_digits(train_labels, cfg.digits, cfg.train_per_digit)
    test_idx = select_digits(test_labels, cfg.digits, cfg.test_per_digit)
    splits = [
        with_copies("train", train_images[train_idx, None] / 255.0, train_labels[train_idx], train_idx, cfg),
        with_copies("test", test_images[test_idx, None] / 255.0, test_labels[test_idx], test_idx, cfg),
    ]
    provenance = {"source": "mnist", "digits": cfg.digits, "transforms": cfg.transforms}
    with atomic_dir(directory) as tmp:
        write_store(tmp, build_sample_table(splits), provenance=provenance)
    log.info(
        "Sample store %s: %d train, %d test samples (%d originals each with %d transformed copies)",
        directory, len(splits[0].labels), len(splits[1].labels), len(train_idx) + len(test_idx),
        len(splits[0].labels) // len(train_idx) - 1,
    )
    return SampleStore(directory)


def with_copies(
    name: str, images: np.ndarray, labels: np.ndarray, source_index: np.ndarray, cfg: DataConfig
) -> SplitArrays:
    """The originals of a split followed by their transformed copies, one block per (transform, parameter)."""
    copies = transformed_copies(images.astype(np.float32), cfg.transforms)
    if not copies:
        return SplitArrays(name, images, labels, source_index)
    blocks = 1 + len(copies)
    n = len(images)
    return SplitArrays(
        name,
        features=np.concatenate([images.astype(np.float32)] + [c for _, c in copies]),
        labels=np.tile(labels, blocks),
        source_index=np.tile(source_index, blocks),
        origin=np.tile(np.arange(n), blocks),
        transform=[None] * n + [tag for tag, _ in copies for _ in range(n)],
    )


__all__ = ["SampleStore", "ingest"]
