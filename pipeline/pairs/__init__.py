"""Pair stage: similar pairs from prior knowledge, written as Parquet shards; negatives stay implicit."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import ray

from pipeline.config import PairsConfig
from pipeline.data import SampleStore
from pipeline.errors import DataError, StageError
from pipeline.io import atomic_dir, content_hash
from pipeline.pairs.knn import knn_graph
from pipeline.pairs.negatives import NegativeSampler
from pipeline.pairs.shards import PairSet, knn_pairs, write_pair_shards

log = logging.getLogger(__name__)

SOURCES = ["knn"]


def pairs_key(cfg: PairsConfig, store: SampleStore) -> str:
    # num_tasks only changes how the work is split, never the result.
    return content_hash({"pairs": cfg.model_dump(exclude={"num_tasks"}), "samples": store.manifest["sha256"]})


def build_pairs(cfg: PairsConfig, store: SampleStore, workdir: Path) -> PairSet:
    """Build (or reuse, when every shard still matches its checksum) the pair set for ``cfg``."""
    directory = workdir / "pairs" / pairs_key(cfg, store)
    if (directory / "manifest.json").is_file():
        pair_set = PairSet.open(directory)
        bad = pair_set.corrupt_shards()
        if not bad:
            log.info("Reusing pair set %s (%d similar pairs)", directory, pair_set.manifest["similar_pairs"])
            return pair_set
        log.warning("Pair set %s has missing or corrupt shards %s; rebuilding it", directory, bad)

    ids, features, _ = store.split("train")
    n = len(ids)
    if not np.array_equal(ids, np.arange(n)):
        # Pairs and the negative sampler index samples by row; the store promises train ids 0..n-1.
        raise StageError(f"sample store {store.directory}: train ids are not 0..{n - 1}; rebuild the store")
    bad = ~np.isfinite(features.reshape(n, -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f"sample store {store.path}: {int(bad.sum())} training samples have NaN or infinite features "
            f"(first ids: {ids[bad][:5].tolist()}); fix the source data and re-run"
        )
    if cfg.k >= n:
        raise DataError(f"pairs.k={cfg.k} needs more than k training samples, the sample store has {n}")
    cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
    num_tasks = cfg.num_tasks or 2 * cpus
    log.info("Exact %d-NN graph of %d samples in %d Ray tasks", cfg.k, n, num_tasks)
    neighbors = knn_graph(features, cfg.k, num_tasks)
    left, right = knn_pairs(neighbors)
    with atomic_dir(directory) as tmp:
        manifest = write_pair_shards(
            tmp,
            left,
            right,
            source=[0] * len(left),
            source_names=SOURCES,
            n_samples=n,
            num_shards=cfg.num_shards,
            provenance={"config": cfg.model_dump(), "samples_sha256": store.manifest["sha256"]},
        )
    log.info(
        "Pair set %s: %d similar pairs in %d shards; %d dissimilar pairs left implicit",
        directory,
        manifest["similar_pairs"],
        cfg.num_shards,
        manifest["dissimilar_pairs_implicit"],
    )
    return PairSet.open(directory)


__all__ = ["NegativeSampler", "PairSet", "build_pairs", "pairs_key"]
