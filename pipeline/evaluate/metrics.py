"""Quality of an embedding: neighbourhood preservation and class separation.

Both are computed on the held-out set itself: trustworthiness compares the embedding's neighbourhoods with
those of the input space; the k-NN accuracy classifies each point by a vote of its k nearest *other* points
in the embedding (leave-one-out), the protocol of the baselines it is compared against.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from pipeline.pairs.copies import origin_groups, transform_pairs

BLOCK_BYTES = 64 << 20  # distances and comparisons of one block of rows in trustworthiness


def trustworthiness(inputs: np.ndarray, embedding: np.ndarray, k: int) -> float:
    """Trustworthiness(k) (Venna and Kaski) with the input space as flattened raw features: scikit-learn's
    ``trustworthiness``, computed a block of rows at a time so that memory grows as n, not n^2.

    scikit-learn ranks every row's n input-space distances (two n x n matrices: 1.6 GB at 10 000 samples). Only
    the ranks of each point's k embedding neighbours enter the sum, and a rank is how many points are nearer: so
    each block of rows needs its distances to all points (``BLOCK_BYTES``) and nothing more. Equal to
    scikit-learn's where no two distances from a point tie exactly (a tie ranks the neighbour first here).
    """
    n = len(inputs)
    if not 1 <= k < n / 2:
        raise ValueError(f"trustworthiness needs 1 <= k < n/2, got k={k} for n={n}")
    x = inputs.reshape(n, -1).astype(np.float64)
    squares = np.einsum("ij,ij->i", x, x)
    neighbours = NearestNeighbors(n_neighbors=k).fit(embedding).kneighbors(return_distance=False)
    rows = max(1, BLOCK_BYTES // (8 * n * (k + 1)))
    penalty = 0.0
    for start in range(0, n, rows):
        block = slice(start, min(start + rows, n))
        distances = squares[block, None] - 2 * x[block] @ x.T + squares[None, :]
        distances[np.arange(block.stop - start), np.arange(start, block.stop)] = np.inf  # a point is not its own
        mapped = np.take_along_axis(distances, neighbours[block], axis=1)
        # rank of j from i, 1 = nearest: the points nearer than j, plus one
        ranks = (distances[:, None, :] < mapped[:, :, None]).sum(axis=2) + 1
        penalty += np.maximum(ranks - k, 0).sum()
    return float(1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def knn_accuracy(embedding: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-NN classification accuracy inside the embedding (ties go to the smaller label)."""
    n = len(embedding)
    if not 1 <= k < n:
        raise ValueError(f"knn accuracy needs 1 <= k < n, got k={k} for n={n}")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)
    # Drop each point itself: it is the first hit unless exact duplicates tie with it.
    own = idx == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    neighbours = idx[~own].reshape(n, k)
    classes, coded = np.unique(labels, return_inverse=True)
    votes = np.zeros((n, len(classes)), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n), k), coded[neighbours].ravel()), 1)
    return float((classes[votes.argmax(axis=1)] == labels).mean())


def transfer_knn_accuracy(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray, k: int = 5
) -> float:
    """Accuracy on ``test`` of a k-NN classifier fitted on the embedding of the training samples (Parametric
    UMAP's protocol, Sainburg et al. 2021): how well the map places unseen samples among the seen ones."""
    from sklearn.neighbors import KNeighborsClassifier

    classifier = KNeighborsClassifier(n_neighbors=k).fit(train, train_labels)
    return float((classifier.predict(test) == test_labels).mean())


def invariance_ratio(embedding: np.ndarray, origin: np.ndarray, n_random: int = 100_000, seed: int = 0) -> float:
    """Mean distance between copies of one original / mean distance between random pairs (0 = invariant).

    The numerator averages over every pair of copies (the original included) of every origin; the
    denominator over ``n_random`` uniformly drawn pairs of distinct samples (seeded).
    """
    left, right = transform_pairs(origin_groups(origin))
    if len(left) == 0:
        raise ValueError("invariance ratio needs transformed copies: every origin has a single sample")
    rng = np.random.default_rng(seed)
    n = len(embedding)
    a = rng.integers(0, n, n_random)
    b = (a + rng.integers(1, n, n_random)) % n  # uniform over j != a
    within = np.linalg.norm(embedding[left] - embedding[right], axis=1).mean()
    between = np.linalg.norm(embedding[a] - embedding[b], axis=1).mean()
    return float(within / between)


def circular_correlation(a: np.ndarray, b: np.ndarray, max_points: int = 4000, seed: int = 0) -> float:
    """Fisher-Lee correlation of two angles (radians): +-1 when one is a rotation (or a mirror) of the other,
    ~0 when unrelated. Unlike mean-based coefficients it stays exact for angles spread all around the circle.
    Above ``max_points`` samples it is computed on a seeded random subset (it costs O(n^2))."""
    if len(a) > max_points:
        keep = np.random.default_rng(seed).choice(len(a), max_points, replace=False)
        a, b = a[keep], b[keep]
    da = np.sin(a[:, None] - a[None, :])
    db = np.sin(b[:, None] - b[None, :])
    return float((da * db).sum() / np.sqrt((da**2).sum() * (db**2).sum()))


def cylinder_fit(embedding: np.ndarray, azimuth: np.ndarray, elevation: np.ndarray) -> dict[str, float]:
    """How well a 3-D map is the paper's cylinder: elevation along an axis, azimuth around it.

    The axis is the least-squares direction of elevation in the map; ``elevation_spearman`` is the rank
    correlation of elevation with the position along it. Around the axis, the angle of each point in the
    perpendicular plane is compared with the azimuth: ``azimuth_circular_correlation`` is the absolute
    Fisher-Lee correlation (the map may go round either way).
    """
    from scipy.stats import spearmanr

    if embedding.shape[1] < 3:
        raise ValueError(f"the cylinder needs a 3-D map, got {embedding.shape[1]} dimensions")
    z = embedding - embedding.mean(axis=0)
    weights, *_ = np.linalg.lstsq(z, elevation - elevation.mean(), rcond=None)
    axis = weights / np.linalg.norm(weights)
    along = z @ axis
    plane = z - np.outer(along, axis)
    _, _, basis = np.linalg.svd(plane, full_matrices=False)
    angle = np.arctan2(plane @ basis[1], plane @ basis[0])
    return {
        "azimuth_circular_correlation": abs(circular_correlation(angle, np.radians(azimuth))),
        "elevation_spearman": float(spearmanr(elevation, along).statistic),
    }
