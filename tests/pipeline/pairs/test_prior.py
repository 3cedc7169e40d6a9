import numpy as np
import pytest

from pipeline.config import PairsConfig, PriorRule
from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.errors import DataError
from pipeline.pairs import build_pairs
from pipeline.pairs.prior import circular_difference, prior_pairs


def norb_grid():
    """The NORB airplane's views: 18 azimuths (20 deg apart) x 9 elevations (30..70, 5 deg apart) x 6 lightings."""
    az, el, light = np.meshgrid(np.arange(0, 360, 20), np.arange(30, 75, 5), np.arange(6), indexing="ij")
    return {"azimuth": az.ravel().astype(float), "elevation": el.ravel().astype(float), "lighting": light.ravel()}


def brute_force(meta, test):
    n = len(next(iter(meta.values())))
    return {(i, j) for i in range(n) for j in range(i + 1, n) if test(i, j)}


def test_circular_difference_wraps():
    assert circular_difference(np.array([340.0, 0.0, 720.0]), np.array([0.0, 180.0, 20.0]), 360).tolist() == [
        20,
        180,
        20,
    ]


def test_papers_airplane_rule_gives_the_hand_counted_pairs():
    meta = norb_grid()
    left, right = prior_pairs(
        meta, [], {"azimuth": {"step": 20, "period": 360}, "elevation": {"step": 5}}, max_differing=1
    )
    # Per view: 5 other lightings; 2 neighbouring azimuths x 6 lightings; 2 (1 at the ends) elevations x 6.
    # 7 inner elevations give 29 partners, the 2 outer ones 23: 18 x 6 x (7 x 29 + 2 x 23) / 2 unordered pairs.
    assert len(left) == 18 * 6 * (7 * 29 + 2 * 23) // 2 == 13446
    assert (left < right).all() and len(set(zip(left.tolist(), right.tolist()))) == len(left)
    az, el = meta["azimuth"], meta["elevation"]
    # 340 and 0 degrees are neighbours around the cylinder.
    i = np.flatnonzero((az == 340) & (el == 50) & (meta["lighting"] == 0))[0]
    j = np.flatnonzero((az == 0) & (el == 50) & (meta["lighting"] == 3))[0]
    assert (min(i, j), max(i, j)) in set(zip(left.tolist(), right.tolist()))


def test_same_and_box_neighbourhood_match_brute_force():
    rng = np.random.default_rng(0)
    meta = {"object": rng.integers(0, 3, 150), "angle": rng.integers(0, 12, 150) * 30.0, "height": rng.random(150)}
    left, right = prior_pairs(meta, ["object"], {"angle": {"step": 30, "period": 360}, "height": {"step": 0.2}})
    expected = brute_force(
        meta,
        lambda i, j: (
            meta["object"][i] == meta["object"][j]
            and circular_difference(meta["angle"][i], meta["angle"][j], 360) <= 30
            and abs(meta["height"][i] - meta["height"][j]) <= 0.2
        ),
    )
    assert set(zip(left.tolist(), right.tolist())) == expected and len(left) == len(expected)


def test_rule_naming_a_missing_column_says_which_columns_exist(ray_local, tmp_path):
    meta = norb_grid()
    n = len(meta["azimuth"])
    store = store_arrays(
        tmp_path / "s", {"train": PartSamples(np.zeros((n, 4), np.float32), np.zeros(n), np.arange(n), meta)}
    )
    assert store.metadata_columns == ["azimuth", "elevation", "lighting"]
    rule = PriorRule(same=["object"], adjacent={"azimuth": {"step": 20, "period": 360}})
    with pytest.raises(
        DataError, match=r"names column\(s\) \['object'\] missing from .*; its metadata columns are \['azimuth'"
    ):
        build_pairs(PairsConfig(sources=["prior"], prior=rule), store, tmp_path)
    # A valid rule runs (one Ray task evaluates it) and records its pairs under 'prior'.
    rule = PriorRule(adjacent={"azimuth": {"step": 20, "period": 360}, "elevation": {"step": 5}}, max_differing=1)
    pairs = build_pairs(PairsConfig(sources=["prior"], prior=rule), store, tmp_path)
    assert pairs.manifest["counts_by_source"]["prior"] == pairs.manifest["similar_pairs"] == 13446
