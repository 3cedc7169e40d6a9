"""The pair stage: similar pairs from every source of a job, written as Parquet shards by tasks and actors.

On Ray (the default) or in one process (``executor.InProcess``: a small input, a notebook), the same steps give the
same pairs; on Ray only object references and small figures pass through the driver, never features or pairs:

1. one task trains the index on a sample of the training rows (``ivf``), one groups the copies by origin (the
   transform sources), one evaluates the metadata rule and emits its rows (``prior``);
2. ``pairs.index_parts`` actors each load some sample-store shards into their part of the index
   (``knn_parts.py``);
3. every query shard (a store shard's training rows) visits the parts in turn; the last part emits its pair rows
   bucketed by pair shard (``pair_sources.py``); for approximate indexes, one task finds the true neighbours of the
   recall queries by brute force (``exact_nearest``), and recall@k compares the two;
4. one task per pair shard symmetrises, deduplicates, sorts and writes it (``shards.write_pair_shard``);
5. the driver merges the tasks' figures into the manifest.

Dissimilar pairs stay implicit (``negatives.py`` draws them lazily during training).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import PairsConfig
from pipeline.config.choices import PAIR_SOURCES
from pipeline.config.paths import resolve_data_path
from pipeline.data.store import SampleStore
from pipeline.errors import DataError
from pipeline.infrastructure.atomic import content_hash, exclusive
from pipeline.infrastructure.executor import Executor, OnRay
from pipeline.infrastructure.location import Location
from pipeline.infrastructure.tables import reusable, write_manifest
from pipeline.pairs.copies import Groups, origin_groups
from pipeline.pairs.knn import IndexBackend, make_index, training_rows
from pipeline.pairs.knn_parts import IndexPart, QueryShardResult, exact_nearest, read_training_rows, recall_at_k
from pipeline.pairs.pair_sources import PairSource, count_by_source, pair_sources, query_rows
from pipeline.pairs.shards import (
    SCHEMA_VERSION,
    PairSet,
    by_shard,
    pair_manifest,
    write_pair_shard,
)

log = logging.getLogger(__name__)

# An index part holds at most about this many bytes of features (pairs.index_parts: null).
PART_BYTES = 1 << 30


def pairs_key(cfg: PairsConfig, store: SampleStore) -> str:
    # index_parts only changes how the work is split, not the pairs (exactly so for flat and ivf).
    return content_hash(
        {
            "pairs": cfg.model_dump(exclude={"index_parts"}),
            "samples": store.manifest["sha256"],
            "schema": SCHEMA_VERSION,
        }
    )


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
        raise DataError(
            f"pairs.k={cfg.k} needs more than k training samples, and there are {n} in {source}{after}; "
            f"lower pairs.k below {n} or use more samples"
        )
    if (
        any("labels" in PAIR_SOURCES[name].traits for name in cfg.sources)
        and not (store.column("train", "label") >= 0).any()
    ):
        raise DataError(
            f"pairs.sources: label pairs samples of one label, and {source} has no labelled training "
            f"samples; give labels (data.label_column, -1 = unlabelled) or drop label from pairs.sources"
        )
    if cfg.prior is not None:  # the configuration pairs the rule with its source
        missing = sorted(set(cfg.prior.columns) - set(store.metadata_columns))
        if missing:
            raise DataError(
                f"pairs.prior names column(s) {missing} missing from {source}; its metadata columns "
                f"are {store.metadata_columns or 'none'}; fix the rule or add the columns"
            )


def build_pairs(
    cfg: PairsConfig, store: SampleStore, workdir: str | Path | Location, executor: Executor | None = None
) -> PairSet:
    """Build (or reuse, when every shard still matches its checksum) the pair set for ``cfg`` under
    ``workdir/pairs/<key>`` (a local folder or object storage), with ``executor``'s tasks and actors (default: on
    Ray)."""
    check_pairs_config(cfg, store)
    workdir = Location.of(workdir)
    key = pairs_key(cfg, store)
    directory = workdir.child("pairs", key)
    waiting = f"Waiting for another run that is building the pair set {directory}"
    with exclusive(workdir.workspace, f"pairs-{key}", waiting):
        if (pair_set := reusable(PairSet, directory)) is not None:
            log.info("Reusing pair set %s (%d similar pairs)", directory, pair_set.manifest["similar_pairs"])
            return pair_set
        with directory.build(f"the pair set {directory}") as out:
            manifest = write_pair_set(cfg, store, out, executor or OnRay())
    log.info(
        "Pair set %s: %d similar pairs in %d shards; %d dissimilar pairs left implicit",
        directory,
        manifest["similar_pairs"],
        cfg.num_shards,
        manifest["dissimilar_pairs_implicit"],
    )
    return PairSet.open(directory)


def index_parts(cfg: PairsConfig, n: int, dimension: int, files: int, cpus: int) -> int:
    """How many parts the index is cut into: ``pairs.index_parts``, or enough that each holds at most
    ``PART_BYTES`` of features; never more than the store shards or the cluster's CPUs (one actor each)."""
    wanted = cfg.index_parts or math.ceil(n * dimension * 4 / PART_BYTES)
    return max(1, min(wanted, files, cpus))


def write_pair_set(
    cfg: PairsConfig, store: SampleStore, directory: str | Path | Location, executor: Executor | None = None
) -> dict:
    """Find the pairs of ``cfg`` in ``store`` and write them as shards plus manifest into ``directory``, with
    ``executor``'s tasks and actors (default: on Ray)."""
    directory = Location.of(directory)
    run = executor or OnRay()
    n = store.manifest["splits"]["train"]
    files = store.files_of("train")
    groups = None
    if any("copies" in PAIR_SOURCES[name].traits for name in cfg.sources):
        groups = run.task(_origin_groups, store)
    sources = pair_sources(cfg.sources)
    rows = cfg.num_shards + 1  # a producer's rows for each pair shard, and its figures
    producers: list = [
        run.task(_store_rows, store, cfg, source, returns=rows) for source in sources if not source.per_shard
    ]
    knn_info: dict = {}
    exact = None
    if "knn" in cfg.sources:
        queries, knn_info, exact = _search(cfg, store, files, groups, run)
        producers += queries
    elif any(source.per_shard for source in sources):  # no kNN graph: each query shard emits its own rows
        producers += [run.task(_shard_rows, path.name, store, cfg, groups, returns=rows) for path in files]
    figures = run.gather([p[-1] for p in producers], "Finding similar pairs", unit="shard")
    emitted: dict[str, int] = {}
    for f in figures:
        for name, count in f["rows_by_source"].items():
            emitted[name] = emitted.get(name, 0) + count
    log.info("Directed similar pairs by source: %s", emitted)
    if exact is not None:
        found_ids, found_neighbours = (
            np.concatenate(a) for a in zip(*(f["recall_found"] for f in figures if "recall_found" in f))
        )
        exact_found = run.gather([exact], "Exact search (recall)")[0]
        hits, knn_info["recall_queries"] = recall_at_k((found_ids, found_neighbours), exact_found)
        knn_info["recall_at_k"] = hits / (knn_info["recall_queries"] * cfg.k)
        log.info(
            "Recall@%d of the %s graph against exact search: %.4f (%d queries)",
            cfg.k,
            cfg.index,
            knn_info["recall_at_k"],
            knn_info["recall_queries"],
        )
    mutual = cfg.symmetrize == "mutual"
    written = run.gather(
        [run.task(_write_shard, directory, s, mutual, *[p[s] for p in producers]) for s in range(cfg.num_shards)],
        "Writing pair shards",
        unit="shard",
    )
    if cfg.symmetrize == "mutual" and knn_info:
        knn_info["mutual_edges"] = sum(f["mutual_edges"] for _, f in written)
    provenance = {"config": cfg.model_dump(), "samples_sha256": store.manifest["sha256"]}
    manifest = pair_manifest(written, n, provenance, {"knn": knn_info} if knn_info else None)
    write_manifest(directory, manifest)
    return manifest


def _search(
    cfg: PairsConfig, store: SampleStore, files: list[Path], groups: Any, run: Executor
) -> tuple[list, dict, Any]:
    """Start the index parts and send every query shard through them: the last part's outputs per shard, and the
    exact neighbours of the recall queries (approximate indexes; else None)."""
    n = store.manifest["splits"]["train"]
    dimension = math.prod(store.feature_shape)
    backend = make_index(cfg.index, cfg.index_options)
    backend.check(dimension)
    size = backend.training_size(n)
    parts = index_parts(cfg, n, dimension, len(files), run.cpus)
    log.info("%d-NN graph of %d samples with the %s index in %d part(s)", cfg.k, n, cfg.index, parts)
    trained = run.task(_train_index, backend, store, size, run.cpus) if size else None
    names = [path.name for path in files]  # a node's own copy of a remote store is elsewhere than the driver's
    # A lost part is started again (it reloads its shards) and its pending searches are retried. A part runs
    # whichever of its searches has its input: in submission order it would wait for another part to finish a
    # shard while its own queue holds searches that are ready (measured: one CPU of two busy at 10M rows).
    options = {"num_cpus": 1, "max_restarts": 3, "max_task_retries": 3, "allow_out_of_order_execution": True}
    actors = [
        run.actor(
            IndexPart, backend, dimension, list(chunk), store.location, max(1, run.cpus // parts), options=options
        )
        for chunk in np.array_split(np.array(names, dtype=object), parts)
    ]
    recall_ids = None if backend.exact else training_rows(n, min(cfg.recall_queries, n))
    exact = None if recall_ids is None else run.task(_exact_nearest, names, store, recall_ids, cfg.k)
    result = QueryShardResult(cfg.k, cfg.sources, cfg.num_shards, recall_ids)
    outputs = []
    for number, name in enumerate(names):
        # Each shard starts at another part: the first part routes the queries (IVF) and the last emits the rows,
        # so these extra costs are shared evenly.
        chain = actors[number % parts :] + actors[: number % parts]
        found = None
        for actor in chain[:-1]:
            found = run.call(actor, "search", name, cfg.k, trained, found)
        outputs.append(
            run.call(chain[-1], "search", name, cfg.k, trained, found, result, groups, returns=cfg.num_shards + 1)
        )
    return outputs, {"index": cfg.index, "options": backend.options, "k": cfg.k, "index_parts": parts}, exact


def _train_index(backend: IndexBackend, store: SampleStore, size: int, threads: int) -> np.ndarray:
    """The empty index every part starts from, trained on ``size`` training rows drawn with a fixed seed."""
    import faiss

    faiss.omp_set_num_threads(threads)
    store = store.here()
    n = store.manifest["splits"]["train"]
    wanted = training_rows(n, size)
    rows = []
    for path in store.files_of("train"):
        ids, features = read_training_rows(store, path.name)
        rows.append(features[np.isin(ids, wanted)])
    sample = np.concatenate(rows)
    return faiss.serialize_index(backend.trained(sample.shape[1], sample))


def _exact_nearest(files: list[str], store: SampleStore, query_ids: np.ndarray, k: int) -> tuple:
    return exact_nearest(files, store.here(), query_ids, k)


def _origin_groups(store: SampleStore) -> Groups:
    return origin_groups(store.here().column("train", "origin_id"))


def _shard_rows(file: str, store: SampleStore, cfg: PairsConfig, groups: Groups | None) -> tuple:
    ids, _ = read_training_rows(store.here(), file)
    found = query_rows(ids, np.empty((len(ids), 0), np.int64), cfg.sources, groups)
    return (*by_shard(found, cfg.num_shards), {"rows_by_source": count_by_source(found)})


def _store_rows(store: SampleStore, cfg: PairsConfig, source: PairSource) -> tuple:
    found = source.store_rows(store.here(), cfg)
    return (*by_shard(found, cfg.num_shards), {"rows_by_source": count_by_source(found)})


def _write_shard(directory: Location, shard: int, mutual: bool, *parts: np.ndarray) -> tuple[dict, dict]:
    return write_pair_shard(directory, shard, *parts, mutual=mutual)
