import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import DataConfig
from pipeline.data import ingest
from pipeline.data.formats import read_samples
from pipeline.errors import DataError


def vectors_table(n=12, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d), dtype=np.float32)
    return pa.table(
        {
            "features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), d),
            "label": pa.array(np.arange(n) % 3),
            "azimuth": pa.array(np.arange(n) * 20.0),
            "object": pa.array(["plane"] * n),
            "nested": pa.array([{"a": 1}] * n),
        }
    ), x


def test_parquet_features_labels_and_metadata(tmp_path):
    table, x = vectors_table()
    pq.write_table(table, tmp_path / "s.parquet")
    got = read_samples(tmp_path / "s.parquet", "features", "label", None)
    np.testing.assert_array_equal(got.features, x)
    assert got.labels.tolist() == (np.arange(12) % 3).tolist()
    assert sorted(got.metadata) == ["azimuth", "object"]  # nested columns are not metadata
    assert read_samples(tmp_path / "s.parquet", "features", None, [2, 3]).features.shape == (12, 2, 3)


def test_npz_and_npy(tmp_path):
    x = np.random.default_rng(0).random((10, 1, 4, 4))
    np.savez(tmp_path / "s.npz", images=x, digit=np.arange(10), angle=np.linspace(0, 90, 10), other=np.zeros(3))
    got = read_samples(tmp_path / "s.npz", "images", "digit", None)
    assert got.features.shape == (10, 1, 4, 4) and got.features.dtype == np.float32
    assert sorted(got.metadata) == ["angle"]  # arrays of another length are not per-sample metadata
    np.save(tmp_path / "x.npy", x[:, 0])
    assert read_samples(tmp_path / "x.npy", "features", None, None).labels.tolist() == [-1] * 10


def _bad_inputs(tmp_path):
    table, _ = vectors_table()
    pq.write_table(table, tmp_path / "good.parquet")
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(data[: len(data) // 2])
    pq.write_table(pa.table({"features": pa.array([[1.0, 2.0], [3.0]])}), tmp_path / "ragged.parquet")
    pq.write_table(pa.table({"features": pa.array(["a", "b"])}), tmp_path / "strings.parquet")
    pq.write_table(pa.table({"features": pa.array([[1.0, np.nan], [3.0, 4.0]])}), tmp_path / "nan.parquet")
    pq.write_table(
        pa.table({"features": pa.array([[1.0], [2.0]]), "label": pa.array([0.5, 1.0])}),
        tmp_path / "float_labels.parquet",
    )
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    np.savez(tmp_path / "s.npz", x=np.zeros((4, 3)), y=np.zeros(5, dtype=int))
    np.save(tmp_path / "flat.npy", np.zeros(7))
    (tmp_path / "data.csv").write_text("1,2\n")
    return [
        ("missing.parquet", {}, "does not exist; set data.path"),
        ("data.csv", {}, "unsupported file type '.csv'"),
        ("truncated.parquet", {}, "not a readable Parquet file"),
        ("good.parquet", {"feature_column": "pixels"}, "no column 'pixels'; its columns are ['features', 'label'"),
        ("good.parquet", {"label_column": "digit"}, "no column 'digit'"),
        ("good.parquet", {"feature_shape": [5]}, "data.feature_shape [5] holds 5 values, but each sample has 6"),
        ("ragged.parquet", {"label_column": None}, "rows differ in length (row 1 has 1 values, row 0 has 2)"),
        ("strings.parquet", {"label_column": None}, "must hold a list of numbers per row"),
        ("nan.parquet", {"label_column": None}, "1 samples have NaN or infinite features (first rows: [0])"),
        ("float_labels.parquet", {}, "label column 'label' must hold integers"),
        ("broken.npy", {}, "not a readable NumPy file"),
        ("s.npz", {"feature_column": "images"}, "no array 'images'; it holds ['x', 'y']"),
        ("s.npz", {"feature_column": "x", "label_column": "y"}, "5 labels for 4 samples"),
        ("flat.npy", {"label_column": None}, "must be numbers shaped (n, ...)"),
    ]


def test_bad_files_get_errors_that_name_the_file_and_the_problem(tmp_path):
    for name, kwargs, message in _bad_inputs(tmp_path):
        args = {"feature_column": "features", "label_column": "label", "feature_shape": None, **kwargs}
        with pytest.raises(DataError) as info:
            read_samples(tmp_path / name, **args)
        assert message in str(info.value) and name in str(info.value), (name, str(info.value))


def test_ingest_of_user_files_keeps_metadata_and_checks_both_splits_match(tmp_path):
    table, _ = vectors_table()
    pq.write_table(table, tmp_path / "train.parquet")
    pq.write_table(vectors_table(n=5, seed=1)[0], tmp_path / "test.parquet")
    cfg = DataConfig(source="parquet", path=str(tmp_path / "train.parquet"), test_path=str(tmp_path / "test.parquet"))
    store = ingest(cfg, tmp_path, tmp_path / "work")
    assert store.manifest["splits"] == {"test": 5, "train": 12} and store.held_out_split == "test"
    assert store.metadata_columns == ["azimuth", "object"]
    assert store.metadata("train", ["azimuth"])["azimuth"].tolist() == (np.arange(12) * 20.0).tolist()
    pq.write_table(vectors_table(n=5, d=4)[0], tmp_path / "narrow.parquet")
    with pytest.raises(DataError, match="all files need the same features"):
        ingest(cfg.model_copy(update={"test_path": str(tmp_path / "narrow.parquet")}), tmp_path, tmp_path / "work")
