import numpy as np
import pytest

from pipeline.evaluate.metrics import invariance_ratio, knn_accuracy, trustworthiness


def test_knn_accuracy_on_separated_and_mixed_clusters():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    assert knn_accuracy(np.vstack([a, b]), labels, k=5) == 1.0
    # Labels unrelated to position: about chance.
    assert knn_accuracy(rng.normal(size=(400, 2)), rng.integers(0, 2, 400), k=5) == pytest.approx(0.5, abs=0.1)


def test_knn_accuracy_excludes_the_point_itself():
    # With itself counted, 1-NN would score every point correct; without, only 3 and 13 are
    # (their nearest other points, 1 and 11, share their labels).
    emb = np.array([[0.0], [1.0], [3.0], [10.0], [11.0], [13.0]])
    labels = np.array([0, 1, 1, 1, 0, 0])
    assert knn_accuracy(emb, labels, k=1) == pytest.approx(2 / 6)


def test_trustworthiness_of_an_isometry_is_one():
    x = np.random.default_rng(1).normal(size=(100, 5))
    assert trustworthiness(x, x[:, :5] * 3.0, k=5) == pytest.approx(1.0)
    assert trustworthiness(x, np.random.default_rng(2).normal(size=(100, 2)), k=5) < 0.8


def test_invariance_ratio_is_zero_for_collapsed_copies_and_near_one_for_unrelated_ones():
    rng = np.random.default_rng(0)
    origin = np.tile(np.arange(200), 5)  # 200 originals, 4 copies each
    centres = rng.normal(size=(200, 2))
    assert invariance_ratio(centres[origin], origin) == 0.0
    assert invariance_ratio(rng.normal(size=(1000, 2)), origin) == pytest.approx(1.0, abs=0.05)
    noisy = centres[origin] + rng.normal(scale=0.01, size=(1000, 2))
    assert 0 < invariance_ratio(noisy, origin) < 0.05
    with pytest.raises(ValueError, match="needs transformed copies"):
        invariance_ratio(centres, np.arange(200))


def test_cylinder_fit_recovers_azimuth_and_elevation_of_a_rotated_cylinder():
    from pipeline.evaluate.metrics import circular_correlation, cylinder_fit

    az, el = (g.ravel().astype(float) for g in np.meshgrid(np.arange(0, 360, 20), np.arange(30, 75, 5)))
    cylinder = np.stack([np.cos(np.radians(az)), np.sin(np.radians(az)), (el - 50) / 20], axis=1)
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    fit = cylinder_fit(cylinder @ rotation.T * 3 + 1, az, el)
    assert fit["azimuth_circular_correlation"] == pytest.approx(1.0, abs=1e-6)
    assert fit["elevation_spearman"] > 0.99  # ties in elevation keep it just under 1
    scrambled = cylinder_fit(np.random.default_rng(1).normal(size=cylinder.shape), az, el)
    assert scrambled["azimuth_circular_correlation"] < 0.3 and abs(scrambled["elevation_spearman"]) < 0.3
    b = np.random.default_rng(2).uniform(0, 2 * np.pi, 300)
    assert circular_correlation(b + 1.0, b) == pytest.approx(1.0) and circular_correlation(-b, b) == pytest.approx(-1.0)


@pytest.mark.parametrize("k", [1, 5, 12])
def test_trustworthiness_in_blocks_equals_scikit_learns(k, monkeypatch):
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    from pipeline.evaluate import metrics

    rng = np.random.default_rng(k)
    x = rng.normal(size=(400, 20)).astype(np.float32)
    z = x[:, :2] + rng.normal(scale=0.5, size=(400, 2))
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 8 * 400 * (k + 1) * 7)  # blocks of 7 rows: the last one partial
    assert metrics.trustworthiness(x, z, k) == pytest.approx(sklearn_trustworthiness(x, z, n_neighbors=k), abs=1e-12)


def test_transfer_knn_accuracy_classifies_test_points_by_their_training_neighbours():
    from pipeline.evaluate.metrics import transfer_knn_accuracy

    train = np.array([[0.0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    test = np.array([[0.5, 0.5], [10.5, 10.5], [9, 9]])
    assert transfer_knn_accuracy(train, labels, test, np.array([0, 1, 1]), k=3) == 1.0
    assert transfer_knn_accuracy(train, labels, test, np.array([1, 1, 0]), k=3) == pytest.approx(1 / 3)
