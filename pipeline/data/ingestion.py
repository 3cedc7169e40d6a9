"""The data stage: ingest a source once into the sample store (see ``store.py`` for the schema).

The store's key covers what changes the samples; a finished, verified store is reused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.config import DataConfig, held_out_count
from pipeline.data.files import read_samples
from pipeline.data.mnist import RAW_FILES, load_mnist, raw_dir, select_digits
from pipeline.data.norb import NORB_FILES, load_norb_airplane, render_airplane
from pipeline.data.paths import resolve_data_path
from pipeline.data.store import SampleStore, SplitArrays, build_sample_table, write_store
from pipeline.data.transforms import transformed_copies
from pipeline.errors import DataError
from pipeline.io import atomic_dir, content_hash, exclusive, sha256_file

log = logging.getLogger(__name__)


def _fingerprint(cfg: DataConfig, root: Path) -> dict:
    """What identifies the source's content: MNIST's file sizes, or the sha256 of the user's files."""
    if cfg.source == "mnist":
        return {name: (raw_dir(root) / name).stat().st_size for name in RAW_FILES if (raw_dir(root) / name).is_file()}
    if cfg.source == "norb":
        return {name: (root / "norb" / name).stat().st_size for name in NORB_FILES.values()}
    if cfg.source == "airplane":
        return {"renderer": 1}  # bump when render_airplane changes
    return {str(p): sha256_file(resolve_data_path(p, root)) for p in (cfg.path, cfg.test_path) if p}


def _store_key(cfg: DataConfig, root: Path, validation: float) -> str:
    # The key covers what changes the samples; not where they were read from or whether download was allowed.
    data = cfg.model_dump(exclude={"root", "download", "path", "test_path"})
    return content_hash({"data": data, "files": _fingerprint(cfg, root), "validation": validation, "store": 2})


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
    files = {name: _user_file(key, value, root)
             for name, key, value in (("train", "data.path", cfg.path), ("test", "data.test_path", cfg.test_path))
             if value}
    splits = []
    for name, path in files.items():
        got = read_samples(path, cfg.feature_column, cfg.label_column, cfg.feature_shape)
        splits.append(SplitArrays(name, got.features, got.labels, np.arange(len(got.labels)),
                                  metadata=got.metadata or None))
    if len(splits) == 2 and splits[0].features.shape[1:] != splits[1].features.shape[1:]:
        raise DataError(f"{files['test']}: samples have shape {splits[1].features.shape[1:]}, but those in "
                        f"{files['train']} have {splits[0].features.shape[1:]}; both files need the same features")
    if len(splits) == 2 and sorted(splits[0].metadata or {}) != sorted(splits[1].metadata or {}):
        raise DataError(f"{files['test']} has metadata columns {sorted(splits[1].metadata or {})}, {files['train']} "
                        f"has {sorted(splits[0].metadata or {})}; both files need the same columns")
    return splits


def hold_out(train: SplitArrays, validation: float, seed: int = 0) -> tuple[SplitArrays, SplitArrays]:
    """``(train, validation)``: ``validation`` (a fraction or a count) of the originals, drawn with a fixed seed
    so that every run of a data section holds out the same samples; both keep the source's order."""
    n = len(train.labels)
    count = held_out_count(n, validation)
    if not 0 < count < n:
        raise DataError(f"evaluate.validation={validation:g} holds out {count} of the {n} training samples; it "
                        f"needs at least one and must leave some to train on")
    picked = np.zeros(n, dtype=bool)
    picked[np.random.default_rng(seed).choice(n, count, replace=False)] = True

    def part(name: str, rows: np.ndarray) -> SplitArrays:
        meta = {k: v[rows] for k, v in train.metadata.items()} if train.metadata else None
        return SplitArrays(name, train.features[rows], train.labels[rows], train.source_index[rows], metadata=meta)

    return part("train", ~picked), part("validation", picked)


def _user_file(key: str, value: str, root: Path) -> Path:
    """The file a job's ``data.path`` / ``data.test_path`` names: absolute, or relative to the data root."""
    path = resolve_data_path(value, root)
    if not path.is_file():
        relative = not Path(value).expanduser().is_absolute()
        where = f" (relative paths are read from the data root {root})" if relative else ""
        raise DataError(f"{key}: data file {path} does not exist{where}; set {key} to your file, or point "
                        f"--data-root (or data.root, DRLIM_DATA_ROOT) at the folder that holds it")
    return path


def ingest(cfg: DataConfig, data_root: Path, workdir: Path, validation: float = 0) -> SampleStore:
    """Build (or reuse) the sample store for ``cfg`` under ``workdir/samples/<key>``; ``validation`` of the
    training originals (a fraction or a count, ``evaluate.validation``) become the validation split."""
    # Reading first makes missing or bad data fail (or download) before anything is written.
    splits = read_source(cfg, data_root, validation)
    key = _store_key(cfg, data_root, validation)
    directory = workdir / "samples" / key
    waiting = f"Waiting for another run that is building the sample store {directory}"
    with exclusive(workdir, f"samples-{key}", waiting):
        if (store := _reusable_store(directory)) is not None:
            return store
        provenance = {"source": cfg.source, "digits": cfg.digits, "path": cfg.path, "test_path": cfg.test_path,
                      "data_root": str(data_root), "transforms": cfg.transforms, "validation": validation}
        with atomic_dir(directory, f"the sample store {directory}") as tmp:
            write_store(tmp, build_sample_table(splits), provenance=provenance)
    copies = sum(len(v) for v in cfg.transforms.values())
    log.info("Sample store %s: %s samples (%d transformed copies of each original)", directory,
             ", ".join(f"{len(s.labels)} {s.name}" for s in splits), copies)
    return SampleStore(directory)


def _reusable_store(directory: Path) -> SampleStore | None:
    if not (directory / "manifest.json").is_file():
        return None
    store = SampleStore(directory)
    if not store.verify():
        log.warning("Sample store %s fails its checksum; rebuilding it", directory)
        return None
    log.info("Reusing sample store %s (%d samples)", directory, store.manifest["rows"])
    return store


def with_copies(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    source_index: np.ndarray,
    cfg: DataConfig,
    metadata: dict[str, np.ndarray] | None = None,
) -> SplitArrays:
    """The originals of a split followed by their transformed copies, one block per (transform, parameter)."""
    if not cfg.transforms:
        return SplitArrays(name, images, labels, source_index, metadata=metadata or None)
    if images.ndim != 4:
        raise DataError(f"data.transforms {cfg.transforms} need images shaped (channels, height, width) per "
                        f"sample, the {name} samples have shape {list(images.shape[1:])}; set data.feature_shape")
    copies = transformed_copies(images.astype(np.float32), cfg.transforms)
    blocks = 1 + len(copies)
    n = len(images)
    return SplitArrays(
        name,
        features=np.concatenate([images.astype(np.float32)] + [c for _, c in copies]),
        labels=np.tile(labels, blocks),
        source_index=np.tile(source_index, blocks),
        origin=np.tile(np.arange(n), blocks),
        transform=[None] * n + [tag for tag, _ in copies for _ in range(n)],
        metadata={k: np.tile(v, blocks) for k, v in metadata.items()} if metadata else None,
    )
