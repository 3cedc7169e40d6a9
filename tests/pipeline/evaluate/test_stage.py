import numpy as np
import pyarrow.parquet as pq
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
