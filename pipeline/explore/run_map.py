"""A run's interactive map, as the evaluate stage makes it: the held-out points (with their thumbnails and their
nearest neighbours in input space) and, when they are not the training samples themselves, a sample of training
samples with every similar pair of theirs from the pair set, embedded by the same model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pipeline.explore.points import MapPoints, input_neighbours, pairs_among

if TYPE_CHECKING:
    from pipeline.data.store import SampleStore
    from pipeline.evaluate.scoring import HeldOut
    from pipeline.pairs.shards import PairSet

log = logging.getLogger(__name__)

PAGE_POINTS = 20_000  # held-out points on a page (a seeded sample beyond): ~5 MB with thumbnails; drlim view shows all
TRAINING_POINTS = 2_000  # training samples on a page: a sample of them with all their partners
NEIGHBOURS = 10  # nearest in input space, per held-out point
THUMBNAIL_SIDE = 32  # larger images are shrunk by an integer factor to fit


def thumbnails_of(features: np.ndarray) -> np.ndarray | None:
    """Grayscale thumbnails in [0, 1] of image features ``(n, c, h, w)``: channels averaged, each image scaled
    to its own range, shrunk by block averaging to at most ``THUMBNAIL_SIDE``; None for vectors."""
    if features.ndim != 4:
        return None
    images = np.asarray(features, dtype=np.float32).mean(axis=1)
    factor = int(np.ceil(max(images.shape[1:]) / THUMBNAIL_SIDE))
    if factor > 1:
        n, h, w = images.shape
        h, w = h // factor * factor, w // factor * factor
        images = images[:, :h, :w].reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
    low = images.min(axis=(1, 2), keepdims=True)
    span = images.max(axis=(1, 2), keepdims=True) - low
    return (images - low) / np.where(span > 0, span, 1)


def anchors_with_partners(
    left: np.ndarray, right: np.ndarray, candidates: np.ndarray, budget: int, seed: int = 0
) -> np.ndarray:
    """Training ids for a page that draws similar pairs without holding every training sample: anchors drawn with
    ``seed`` from ``candidates`` while they and their partners fit in ``budget``, with those partners; sorted.
    Every pair of an anchor can then be drawn. ``left``/``right``: the pair set's directed rows."""
    order = np.random.default_rng(seed).permutation(candidates)
    degree = np.bincount(left, minlength=int(max(left.max(initial=0), candidates.max(initial=0))) + 1)
    cost = np.cumsum(1 + degree[order])
    chosen = order[: max(1, int(np.searchsorted(cost, budget, side="right")))]
    is_anchor = np.zeros(len(degree), dtype=bool)
    is_anchor[chosen] = True
    return np.unique(np.concatenate([chosen, right[is_anchor[left]]]))


def _metadata(store: SampleStore, split: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    columns = store.metadata(split, store.metadata_columns) if store.metadata_columns else {}
    return {name: values[rows] for name, values in columns.items()}


def run_map(
    data: HeldOut,
    embedding: np.ndarray,
    store: SampleStore,
    pairs: PairSet | None,
    training: Callable[[np.ndarray], np.ndarray],
    title: str,
    seed: int = 0,
) -> MapPoints:
    """The points of a run's page: ``data`` (held-out samples) mapped to ``embedding``; with ``pairs``, the similar
    pairs among the points, and training samples (``training`` gives the embedding of training ids) when the
    held-out split is not the training split itself."""
    keep = np.arange(len(data.ids))
    if len(keep) > PAGE_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(keep, PAGE_POINTS, replace=False))
        log.info("The page holds %d of %d %s samples (drlim view shows all)", PAGE_POINTS, len(data.ids), data.split)
    # Each field as a list of parts: the held-out points, then the training samples when there are any.
    fields: dict[str, list[np.ndarray]] = {
        "embedding": [embedding[keep]],
        "ids": [data.ids[keep]],
        "labels": [data.labels[keep]],
        "split": [np.full(len(keep), data.split)],
        "transform": [data.transform[keep]],
        "features": [data.features[keep]],
    }
    metadata = [_metadata(store, data.split, keep)]
    share = pairs.read_share(0, 1, with_source=True) if pairs is not None else None
    if share is not None and data.split != "train":
        origin, transform = store.origins("train")
        originals = np.flatnonzero(origin == np.arange(len(origin)))
        ids = anchors_with_partners(share.left, share.right, originals, TRAINING_POINTS, seed)
        features = store.as_float(np.asarray(store.feature_matrix("train")[ids]))
        for name, values in (
            ("embedding", training(ids)),
            ("ids", ids),
            ("labels", store.column("train", "label")[ids]),
            ("split", np.full(len(ids), "train")),
            ("transform", transform[ids]),
            ("features", features),
        ):
            fields[name].append(values)
        metadata.append(_metadata(store, "train", ids))
        title = f"{title} + {len(ids)} training samples"
    joined = {name: np.concatenate(parts) for name, parts in fields.items()}
    neighbours = np.full((len(joined["ids"]), NEIGHBOURS), -1, dtype=np.int64)
    neighbours[: len(keep)] = input_neighbours(fields["features"][0], np.zeros(len(keep)), NEIGHBOURS)
    similar = None
    if share is not None and share.source is not None:
        from pipeline.pairs.shards import SOURCES

        similar = pairs_among(joined["ids"], share.left, share.right, share.source, SOURCES)
    return MapPoints(
        embedding=joined["embedding"],
        ids=joined["ids"],
        labels=joined["labels"],
        split=joined["split"],
        transform=joined["transform"],
        metadata={name: np.concatenate([part[name] for part in metadata]) for name in metadata[0]},
        thumbnails=thumbnails_of(joined["features"]),
        pairs=similar,
        neighbours=neighbours,
        title=title,
    )
