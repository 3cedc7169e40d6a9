"""Pictures of a 2-D embedding: points coloured by class, and the paper-style map with image thumbnails."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402

from pipeline.explore.points import robust_limits, within  # noqa: E402
from pipeline.infrastructure.atomic import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


TIGHT = 0.15  # classes are tight when the median one spans less than this fraction of the map: zoomed insets
MAX_INSETS = 10


def marker_style(points: np.ndarray, limits: np.ndarray, area: float) -> tuple[float, float]:
    """Marker size (matplotlib's ``s``, in pt²) and alpha from the density where the points crowd: each point of
    the crowded cells (a 64 x 64 grid over ``limits``; the 90th percentile of the points' cells) gets its share of
    a cell's ``area`` (pt² of the axes / 4096), so tight clusters get small, faint points that show their inside."""
    inside = points[within(points, limits)]
    if len(inside) == 0:
        return 4.0, 0.8
    cells = np.floor((inside - limits[:, 0]) / (limits[:, 1] - limits[:, 0]) * 64).clip(0, 63).astype(int)
    _, index, counts = np.unique(cells[:, 0] * 64 + cells[:, 1], return_inverse=True, return_counts=True)
    crowded = np.quantile(counts[index.ravel()], 0.9)
    share = area / 4096 / crowded
    diameter = float(np.clip(np.sqrt(share), 0.7, 5.0))
    return diameter**2, float(np.clip(2 * share / diameter**2, 0.08, 0.9))


def _draw(ax, points: np.ndarray, labels: np.ndarray, classes: np.ndarray, limits: np.ndarray, strays: bool) -> float:
    """The points within ``limits`` in their class colours (with ``strays``, those beyond as small crosses on the
    nearest edge); returns the marker size."""
    cmap = plt.get_cmap("tab10")
    box = ax.get_window_extent().transformed(ax.figure.dpi_scale_trans.inverted())
    size, alpha = marker_style(points, limits, box.width * box.height * 72**2)
    beyond = ~within(points, limits)
    edge = np.clip(points, limits[:, 0], limits[:, 1])
    for i, c in enumerate(classes):
        mine = labels == c
        ax.scatter(*points[mine & ~beyond].T, s=size, alpha=alpha, color=cmap(i % 10), label=str(c), linewidths=0)
        if strays:
            ax.scatter(*edge[mine & beyond].T, s=12, marker="x", color=cmap(i % 10), linewidths=0.8, clip_on=False)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    return size


def tight_boxes(points: np.ndarray, labels: np.ndarray, classes: np.ndarray, limits: np.ndarray) -> dict:
    """Each class's own limits when classes are tight (the median class spans under ``TIGHT`` of the map), for a
    zoomed inset each; else none (at most ``MAX_INSETS`` classes)."""
    if not 1 < len(classes) <= MAX_INSETS:
        return {}
    boxes = {c: robust_limits(points[labels == c], (0.05, 0.95), pad=0.3) for c in classes if (labels == c).sum() > 2}
    spans = [np.max((b[:, 1] - b[:, 0]) / (limits[:, 1] - limits[:, 0])) for b in boxes.values()]
    return boxes if spans and np.median(spans) < TIGHT else {}


def scatter_map(embedding: np.ndarray, labels: np.ndarray, path: Path, title: str, legend: str = "label") -> Path:
    """Points coloured by ``labels`` (classes, or any tag such as the transform; first two dimensions) within robust
    limits, strays marked at the edge, size and alpha from the density; when classes are tight, a zoomed inset of
    each below the map (its box drawn on the map)."""
    points = embedding[:, :2]
    first_seen = np.sort(np.unique(labels, return_index=True)[1])
    classes = labels[first_seen] if labels.dtype.kind in "OUS" else np.unique(labels)  # tags in store order
    limits = robust_limits(points)
    boxes = tight_boxes(points, labels, classes, limits)
    rows = int(np.ceil(len(boxes) / 5))
    fig = plt.figure(figsize=(8, 8 + 1.7 * rows), layout="constrained")
    grid = fig.add_gridspec(4 + rows, 5)
    ax = fig.add_subplot(grid[:4, :])
    size = _draw(ax, points, labels, classes, limits, strays=True)
    handles, names = ax.get_legend_handles_labels()
    shown = ax.legend(handles[: len(classes)], names[: len(classes)], title=legend, markerscale=6 / np.sqrt(size))
    for handle in shown.legend_handles:
        if handle is not None:
            handle.set_alpha(1)
    strays = int((~within(points, limits)).sum())
    ax.set_title(f"{title}\n{strays} of {len(points)} points beyond the limits, marked x" if strays else title)
    ax.set_aspect("equal", adjustable="box")  # the limits stay as set: strays on the edge
    for i, (c, box) in enumerate(boxes.items()):
        ax.add_patch(plt.Rectangle(box[:, 0], *(box[:, 1] - box[:, 0]), fill=False, lw=0.6, color="0.3"))
        ax.annotate(str(c), box[:, 1], fontsize=7, color="0.3")
        inset = fig.add_subplot(grid[4 + i // 5, i % 5])
        _draw(inset, points, labels, classes, box, strays=False)
        inset.set_aspect("equal", adjustable="box")
        zoom = np.max((limits[:, 1] - limits[:, 0]) / (box[:, 1] - box[:, 0]))
        inset.set_title(f"{legend} {c}, zoom x{zoom:.0f}", fontsize=8)
        inset.set_xticks([])
        inset.set_yticks([])
    return _save(fig, path)


def ink(image: np.ndarray) -> np.ndarray:
    """A grayscale image as black ink on a transparent ground (RGBA, alpha = brightness scaled to [0, 1]), so a
    thumbnail hides only the points under its strokes: a map with tight clusters stays visible under them."""
    image = np.squeeze(image).astype(np.float32)
    low, span = image.min(), np.ptp(image)
    rgba = np.zeros(image.shape + (4,), dtype=np.float32)
    rgba[..., 3] = (image - low) / span if span > 0 else 0.0
    return rgba


def spread_out(points: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` indices of ``points`` (2-D), a random one from each occupied cell of a sqrt(n) x sqrt(n) grid
    over their extent: thumbnails cover the whole map instead of piling up where clusters are dense."""
    if n < 1:
        return np.empty(0, dtype=np.int64)
    side = int(np.sqrt(n))
    low, extent = points.min(axis=0), np.ptp(points, axis=0)
    cells = np.floor((points - low) / np.where(extent > 0, extent, 1.0) * side).clip(0, side - 1).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(points))
    _, first = np.unique(cells[order, 0] * side + cells[order, 1], return_index=True)
    return np.sort(order[first])


def thumbnail_map(
    embedding: np.ndarray, images: np.ndarray, labels: np.ndarray, path: Path, title: str, n: int, seed: int = 0
) -> Path:
    """The paper's figure: the map as small points with up to ``n`` of the images drawn at their positions, spread
    over the map (``spread_out``)."""
    fig, ax = plt.subplots(figsize=(10, 10))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10")
    for i, c in enumerate(classes):
        pts = embedding[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.3, color=cmap(i % 10))
    for idx in spread_out(embedding[:, :2], n, seed):
        box = OffsetImage(ink(images[idx]), zoom=0.45)
        ax.add_artist(AnnotationBbox(box, (float(embedding[idx, 0]), float(embedding[idx, 1])), frameon=False, pad=0))
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    return _save(fig, path)


def cylinder_views(embedding: np.ndarray, azimuth: np.ndarray, elevation: np.ndarray, path: Path, title: str) -> Path:
    """A 3-D map from four viewpoints, coloured by azimuth (cyclic colours) with point size by elevation."""
    fig = plt.figure(figsize=(16, 4.5))
    size = 4 + 16 * (elevation - elevation.min()) / max(np.ptp(elevation), 1e-9)
    for i, (elev, azim) in enumerate([(20, 30), (20, 120), (60, 210), (-10, 300)]):
        ax = fig.add_subplot(1, 4, i + 1, projection="3d")
        points = ax.scatter(*embedding[:, :3].T, c=azimuth, cmap="twilight", s=size, vmin=0, vmax=360)
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(f"view {i + 1}", fontsize=9)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
    fig.colorbar(points, ax=fig.axes, shrink=0.7, label="azimuth (degrees); point size: elevation")
    fig.suptitle(title)
    return _save(fig, path)
