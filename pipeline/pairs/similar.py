"""The pair stage: similar pairs from every source of a job, symmetrised and written as Parquet shards.

Dissimilar pairs stay implicit (``negatives.py`` draws them lazily during training)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import ray

from pipeline.config import PairsConfig
from pipeline.data.paths import resolve_data_path
from pipeline.data.store import SampleStore
from pipeline.errors import DataError, StageError
from pipeline.io import atomic_dir, content_hash, exclusive
from pipeline.pairs.knn import knn_graph, knn_recall, make_index
from pipeline.pairs.prior import prior_pairs
from pipeline.pairs.shards import SCHEMA_VERSION, PairSet, knn_pairs, write_pair_shards
from pipeline.pairs.transforms import transform_knn_pairs, transform_pairs

log = logging.getLogger(__name__)

# Priority when several sources find the same pair: the earlier name is recorded.
SOURCES = ["knn", "prior", "transform", "transform_knn"]


def pairs_key(cfg: PairsConfig, store: SampleStore) -> str:
    # num_tasks only changes how the work is split, never the result.
    return content_hash({"pairs": cfg.model_dump(exclude={"num_tasks"}), "samples": store.manifest["sha256"],
                         "schema": SCHEMA_VERSION})


def mutual_edges(left: np.ndarray, right: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The directed edges (i, j) whose reverse (j, i) is an edge too."""
    keys = np.sort(left * n + right)
    reverse = right * n + left
    pos = np.minimum(np.searchsorted(keys, reverse), max(len(keys) - 1, 0))
    keep = keys[pos] == reverse if len(keys) else np.zeros(0, dtype=bool)
    return left[keep], right[keep]


def similar_pairs(
    cfg: PairsConfig, features: np.ndarray, origin: np.ndarray, metadata: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Directed similar pairs from every source in ``cfg.sources``, in ``SOURCES`` priority order, with each
    pair's source index and facts about the kNN search (index, recall@k when approximate). kNN runs as Ray
    tasks; the transform sources are pure array work."""
    n = len(features)
    knn_left = knn_right = np.empty(0, np.int64)
    knn_info: dict = {}
    if "knn" in cfg.sources:
        cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
        num_tasks = cfg.num_tasks or 2 * cpus
        backend = make_index(cfg.index, cfg.index_options)
        log.info("%d-NN graph of %d samples with the %s index in %d Ray tasks", cfg.k, n, cfg.index, num_tasks)
        neighbors = knn_graph(features, cfg.k, num_tasks, backend)
        knn_info = {"index": cfg.index, "options": backend.options, "k": cfg.k}
        if not backend.exact:
            knn_info["recall_queries"] = min(cfg.recall_queries, n)
            knn_info["recall_at_k"] = knn_recall(features, neighbors, cfg.recall_queries)
            log.info("Recall@%d of the %s graph against exact search: %.4f (%d queries)", cfg.k, cfg.index,
                     knn_info["recall_at_k"], knn_info["recall_queries"])
        knn_left, knn_right = knn_pairs(neighbors)
        if cfg.symmetrize == "mutual":
            knn_left, knn_right = mutual_edges(knn_left, knn_right, n)
            knn_info["mutual_edges"] = len(knn_left)
    found = {
        "knn": lambda: (knn_left, knn_right),
        "prior": lambda: prior_pairs(metadata, cfg.prior.same,
                                     {c: a.model_dump() for c, a in cfg.prior.adjacent.items()},
                                     cfg.prior.max_differing),
        "transform": lambda: transform_pairs(origin),
        "transform_knn": lambda: transform_knn_pairs(origin, knn_left, knn_right),
    }
    parts = {name: found[name]() for name in SOURCES if name in cfg.sources}
    log.info("Directed similar pairs by source: %s", {name: len(p[0]) for name, p in parts.items()})
    source = np.concatenate([np.full(len(p[0]), SOURCES.index(name), np.int8) for name, p in parts.items()])
    left = np.concatenate([p[0] for p in parts.values()])
    right = np.concatenate([p[1] for p in parts.values()])
    return left, right, source, knn_info


def check_pairs_config(cfg: PairsConfig, store: SampleStore) -> None:
    """Refuse, before Ray starts, a pair configuration the samples cannot satisfy; errors name the data file."""
    provenance = store.manifest.get("provenance", {})
    if provenance.get("path"):
        source = str(resolve_data_path(provenance["path"], Path(provenance.get("data_root", "."))))
    else:
        source = f"the {provenance.get('source', 'selected')} samples"
    n = store.manifest["splits"]["train"]
    held = store.manifest["splits"].get("validation", 0)
    if "knn" in cfg.sources and cfg.k >= n:
        after = f" after {held} held out for validation (evaluate.validation)" if held else ""
        raise DataError(f"pairs.k={cfg.k} needs more than k training samples, and there are {n} in {source}{after}; "
                        f"lower pairs.k below {n} or use more samples")
    if "prior" in cfg.sources and cfg.prior is not None:
        missing = sorted(set(cfg.prior.columns) - set(store.metadata_columns))
        if missing:
            raise DataError(f"pairs.prior names column(s) {missing} missing from {source}; its metadata columns "
                            f"are {store.metadata_columns or 'none'}; fix the rule or add the columns")


def build_pairs(cfg: PairsConfig, store: SampleStore, workdir: Path) -> PairSet:
    """Build (or reuse, when every shard still matches its checksum) the pair set for ``cfg``."""
    check_pairs_config(cfg, store)
    key = pairs_key(cfg, store)
    directory = workdir / "pairs" / key
    with exclusive(workdir, f"pairs-{key}", f"Waiting for another run that is building the pair set {directory}"):
        return _reusable_pair_set(directory) or _write_pair_set(cfg, store, directory)


def _reusable_pair_set(directory: Path) -> PairSet | None:
    if not (directory / "manifest.json").is_file():
        return None
    pair_set = PairSet.open(directory)
    bad = pair_set.corrupt_shards()
    if bad:
        log.warning("Pair set %s has missing or corrupt shards %s; rebuilding it", directory, bad)
        return None
    log.info("Reusing pair set %s (%d similar pairs)", directory, pair_set.manifest["similar_pairs"])
    return pair_set


def _write_pair_set(cfg: PairsConfig, store: SampleStore, directory: Path) -> PairSet:
    ids, features, _ = store.split("train")
    n = len(ids)
    if not np.array_equal(ids, np.arange(n)):
        # Pairs and the negative sampler index samples by row; the store promises train ids 0..n-1.
        raise StageError(f"sample store {store.directory}: train ids are not 0..{n - 1}; rebuild the store")
    bad = ~np.isfinite(features.reshape(n, -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f"sample store {store.directory}: {int(bad.sum())} training samples have NaN or infinite features "
            f"(first ids: {ids[bad][:5].tolist()}); fix the source data and re-run"
        )
    origin, _ = store.origins("train")
    metadata = store.metadata("train", cfg.prior.columns) if cfg.prior is not None else None
    left, right, source, knn_info = similar_pairs(cfg, features, origin, metadata)
    with atomic_dir(directory, f"the pair set {directory}") as tmp:
        manifest = write_pair_shards(
            tmp,
            left,
            right,
            source=source,
            source_names=SOURCES,
            n_samples=n,
            num_shards=cfg.num_shards,
            provenance={"config": cfg.model_dump(), "samples_sha256": store.manifest["sha256"]},
            extra={"knn": knn_info} if knn_info else None,
        )
    log.info(
        "Pair set %s: %d similar pairs in %d shards; %d dissimilar pairs left implicit",
        directory,
        manifest["similar_pairs"],
        cfg.num_shards,
        manifest["dissimilar_pairs_implicit"],
    )
    return PairSet.open(directory)
