"""Pictures of a 2-D embedding: points coloured by class, and the paper-style map with image thumbnails."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402

from pipeline.infrastructure.atomic import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def scatter_map(embedding: np.ndarray, labels: np.ndarray, path: Path, title: str, legend: str = "label") -> Path:
    """Points coloured by ``labels`` (classes, or any tag such as the transform; first two dimensions)."""
    fig, ax = plt.subplots(figsize=(7, 7))
    first_seen = np.sort(np.unique(labels, return_index=True)[1])
    classes = labels[first_seen] if labels.dtype.kind in "OUS" else np.unique(labels)  # tags in store order
    cmap = plt.get_cmap("tab10")
    for i, c in enumerate(classes):
        pts = embedding[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.7, color=cmap(i % 10), label=str(c))
    ax.legend(title=legend, markerscale=3)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
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
