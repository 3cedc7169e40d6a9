import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from encoders import build_encoder
from pipeline.config import DataConfig, EvaluateConfig
from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.evaluate import evaluate


def test_evaluate_scores_originals_measures_invariance_on_copies_and_writes_everything(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((30, 1, 28, 28), dtype=np.float32)
    labels = np.repeat([4, 9], 15)
    cfg = DataConfig(transforms={"shift_x": [-3, 3]})
    store = store_arrays(tmp_path / "store", {"test": PartSamples(images, labels, np.arange(30))}, cfg)
    torch.manual_seed(0)
    result = evaluate(build_encoder("lenet", 2), store, EvaluateConfig(thumbnails=5), tmp_path / "out", title="t")

    assert set(result.metrics) == {"trustworthiness_5", "trustworthiness_12", "knn_accuracy_5", "invariance_ratio"}
    assert 0 < result.metrics["invariance_ratio"] < 2
    table = pq.read_table(result.files["embeddings"])
    assert table.num_rows == 90 and table.schema.metadata[b"drlim.schema_version"] == b"2"
    assert table.column("origin_id").to_pylist() == list(range(30)) * 3
    assert table.column("transform").to_pylist()[29:31] == [None, "shift_x=-3"]
    assert {"map", "map_thumbnails", "map_transforms"} <= set(result.files)
    assert all(path.stat().st_size > 0 for path in result.files.values())
    assert result.scored == {"test": 30}  # fewer than evaluate.scored_samples: every original, exactly
    every = pq.read_table(result.every_row)  # every row of every split, here the one split
    assert every.sort_by("id").equals(table)


def test_every_row_of_every_split_is_embedded_and_a_large_split_is_scored_on_a_seeded_sample(tmp_path):
    from pipeline.evaluate.inference import embed
    from pipeline.evaluate.metrics import trustworthiness
    from pipeline.evaluate.scoring import HeldOut
    from pipeline.infrastructure.executor import InProcess

    rng = np.random.default_rng(1)
    splits = {
        "train": PartSamples(rng.random((300, 6), dtype=np.float32), np.arange(300) % 3, np.arange(300)),
        "test": PartSamples(rng.random((200, 6), dtype=np.float32), np.arange(200) % 3, np.arange(200)),
    }
    store = store_arrays(tmp_path / "store", splits, validation=60, rows_per_shard=64)
    torch.manual_seed(0)
    model = build_encoder("mlp", 2, {"hidden": 8}, input_shape=(6,))
    cfg = EvaluateConfig(scored_samples=50)
    result = evaluate(model, store, cfg, tmp_path / "out", title="t", run=InProcess())

    every = pq.read_table(result.every_row).sort_by("id")
    assert len(list(result.every_row.glob("*.parquet"))) == len(store.files)  # one part per store shard
    assert every.column("id").to_pylist() == list(range(500))
    assert every.group_by("split").aggregate([("id", "count")]).sort_by("split").to_pylist() == [
        {"split": "test", "id_count": 200},
        {"split": "train", "id_count": 240},
        {"split": "validation", "id_count": 60},
    ]
    _, features, _ = store.split("train")
    train_rows = every.filter(pq_split(every, "train"))
    np.testing.assert_allclose(
        np.stack(train_rows.column("embedding").to_numpy(zero_copy_only=False)), embed(model, features), atol=1e-6
    )
    assert result.scored == {"test": 50, "validation": 50}
    sample = HeldOut.load(store, "test", 50)  # the same seeded sample, scored directly
    z = embed(model, sample.features)
    assert result.metrics["trustworthiness_5"] == pytest.approx(trustworthiness(sample.features, z, 5), abs=1e-6)
    assert pq.read_table(result.files["embeddings"]).num_rows == 200  # the map shows all of the held-out split


def pq_split(table, name):
    import pyarrow.compute as pc

    return pc.equal(table.column("split"), name)
