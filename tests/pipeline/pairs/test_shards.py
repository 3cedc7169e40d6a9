import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.errors import StageError
from pipeline.pairs.shards import (
    PAIR_SCHEMA,
    PairSet,
    both_ways,
    knn_pairs,
    pair_shard_table,
    rows,
    shard_of,
    write_pair_shards,
)


def unordered(left, right):
    """The unordered, non-self pairs ``(lo, hi)`` sorted, as arrays (the reference for a written set)."""
    pairs = sorted({(min(a, b), max(a, b)) for a, b in zip(left.tolist(), right.tolist()) if a != b})
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def test_a_shard_drops_self_and_duplicates_and_records_the_first_source():
    found = np.concatenate(
        [
            both_ways(np.array([3, 1, 2, 2]), np.array([1, 3, 2, 0]), "transform"),
            rows(np.array([1, 0]), np.array([3, 2]), "knn"),
        ]
    )
    table, figures = pair_shard_table(found, mutual=False)
    got = list(
        zip(table.column("left").to_pylist(), table.column("right").to_pylist(), table.column("source").to_pylist())
    )
    assert got == [(0, 2, "knn"), (1, 3, "knn"), (2, 0, "transform"), (3, 1, "transform")]
    assert figures["similar_pairs"] == 2 and figures["by_source"] == [2, 0, 0, 0, 0]  # counted on left < right


def test_mutual_keeps_the_knn_edges_found_from_both_ends_and_other_sources_as_they_are():
    # 0 -> 1 and 1 -> 0 (mutual), 0 -> 2 only (one-sided), 3 ~ 4 a transform pair
    found = np.concatenate(
        [
            both_ways(np.array([0, 1, 0]), np.array([1, 0, 2]), "knn"),
            both_ways(np.array([3]), np.array([4]), "transform"),
        ]
    )
    table, figures = pair_shard_table(found, mutual=True)
    assert list(zip(table.column("left").to_pylist(), table.column("right").to_pylist())) == [
        (0, 1),
        (1, 0),
        (3, 4),
        (4, 3),
    ]
    assert figures["mutual_edges"] == 2  # directed: 0 -> 1 and 1 -> 0
    union, _ = pair_shard_table(found, mutual=False)
    assert union.num_rows == 6


def test_knn_pairs_are_query_neighbor_edges():
    left, right = knn_pairs(np.array([[1, 2], [0, 2], [1, 0]]))
    assert list(zip(left, right)) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 1), (2, 0)]


def test_shard_of_depends_only_on_left_and_balances():
    left = np.arange(10_000)
    shards = shard_of(left, 8)
    np.testing.assert_array_equal(shards[::-1], shard_of(left[::-1], 8))
    counts = np.bincount(shards, minlength=8)
    assert counts.min() > 0.8 * counts.mean()


@pytest.fixture
def pair_set(tmp_path):
    rng = np.random.default_rng(3)
    left, right = rng.integers(0, 50, 400), rng.integers(0, 50, 400)
    manifest = write_pair_shards(
        tmp_path, both_ways(left, right, "knn"), n_samples=50, num_shards=4, provenance={"test": True}
    )
    return PairSet.open(tmp_path), manifest, unordered(left, right)


def test_written_shards_roundtrip_with_schema_and_manifest(pair_set):
    ps, manifest, (lo, hi) = pair_set
    assert manifest["similar_pairs"] == len(lo)
    assert sum(s["rows"] for s in manifest["shards"]) == 2 * len(lo)  # both directions
    assert manifest["dissimilar_pairs_implicit"] == 50 * 49 // 2 - len(lo)
    assert manifest["counts_by_source"] == {"knn": len(lo), "prior": 0, "transform": 0, "transform_knn": 0, "label": 0}
    assert sum(manifest["degree_histogram"].values()) == 50
    left, right = ps.read()
    assert (left < right).all()
    assert set(zip(left, right)) == set(zip(lo, hi))
    table = pq.read_table(ps.directory / manifest["shards"][0]["file"])
    assert table.schema.equals(PAIR_SCHEMA, check_metadata=False)
    assert (table.column("label").to_numpy() == 0).all()
    assert ps.corrupt_shards() == []


def test_a_shard_holds_every_pair_of_its_samples_sorted(pair_set):
    ps, manifest, (lo, hi) = pair_set
    for number, shard in enumerate(manifest["shards"]):
        table = pq.read_table(ps.directory / shard["file"])
        left, right = table.column("left").to_numpy(), table.column("right").to_numpy()
        assert (shard_of(left, 4) == number).all()
        assert (np.lexsort((right, left)) == np.arange(len(left))).all()
        mine = shard_of(np.arange(50), 4) == number
        expected = {(a, b) for a, b in zip(lo.tolist(), hi.tolist()) if mine[a]}
        expected |= {(b, a) for a, b in zip(lo.tolist(), hi.tolist()) if mine[b]}
        assert set(zip(left.tolist(), right.tolist())) == expected


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_worker_shares_partition_the_samples_and_hold_every_pair_of_their_own(pair_set, world):
    ps, manifest, (lo, hi) = pair_set
    shares = [ps.read_share(rank, world) for rank in range(world)]
    assert (sum(s.owned.astype(int) for s in shares) == 1).all()  # every sample owned by exactly one worker
    held = [set(zip(s.left.tolist(), s.right.tolist())) for s in shares]
    both_ways = set(zip(lo.tolist(), hi.tolist())) | set(zip(hi.tolist(), lo.tolist()))
    assert sum(map(len, held)) == len(both_ways) and set().union(*held) == both_ways  # disjoint, complete
    for share, pairs in zip(shares, held):
        assert share.pairs_per_rank == [len(p) for p in held] and share.similar_pairs == len(lo)
        assert share.owned[share.left].all()  # owned sample first
        # Every pair touching an owned sample is known to its owner, from the owner's side.
        assert pairs == {(a, b) for a, b in both_ways if share.owned[a]}


def test_more_workers_than_shards_is_refused_with_the_fix(pair_set):
    ps, _, _ = pair_set
    with pytest.raises(StageError, match="raise pairs.num_shards to 5"):
        ps.read_share(0, 5)


def test_truncated_shard_is_detected(pair_set):
    ps, manifest, _ = pair_set
    path = ps.directory / manifest["shards"][1]["file"]
    path.write_bytes(path.read_bytes()[:-10])
    assert ps.corrupt_shards() == [manifest["shards"][1]["file"]]


def test_open_without_manifest_says_run_the_stage(tmp_path):
    with pytest.raises(StageError, match="run the pair stage"):
        PairSet.open(tmp_path)


@pytest.mark.parametrize("world", [1, 2])
def test_a_share_read_with_its_sources_gives_each_pair_the_source_that_found_it(tmp_path, world):
    rng = np.random.default_rng(3)
    left, right = rng.integers(0, 30, 40), rng.integers(0, 30, 40)
    keep = left != right
    found = np.concatenate(
        [both_ways(left[keep][:20], right[keep][:20], "knn"), both_ways(left[keep][20:], right[keep][20:], "transform")]
    )
    write_pair_shards(tmp_path, found, 30, num_shards=2, provenance={})
    pair_set = PairSet.open(tmp_path)
    first = {}  # each unordered pair keeps the first source in SOURCES that found it, as the shards do
    for row in found:
        key = (int(row["left"]), int(row["right"]))
        first[key] = min(first.get(key, 99), int(row["source"]))
    for rank in range(world):
        share = pair_set.read_share(rank, world, with_source=True)
        got = dict(zip(zip(share.left.tolist(), share.right.tolist()), share.source.tolist()))
        assert got == {key: first[key] for key in got}
        assert share.pairs_by_source == pair_set.manifest["counts_by_source"]
        assert sum(share.pairs_by_source.values()) == share.similar_pairs
        assert pair_set.read_share(rank, world).source is None  # read only when asked
