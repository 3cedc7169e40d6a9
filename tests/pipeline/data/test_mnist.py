import shutil

import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.data import ingest
from pipeline.data.mnist import RAW_FILES, load_mnist, select_digits
from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.errors import DataError


def test_missing_files_name_the_folder_and_the_fix(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, train=True, download=False)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "DRLIM_DATA_ROOT" in message
    assert "train-images-idx3-ubyte" in message


def test_truncated_idx_file_is_a_data_error(tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copy(mnist / "MNIST" / "raw" / name, raw / name)
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    with pytest.raises(DataError, match="could not read the files"):
        load_mnist(tmp_path, train=False, download=False)


def test_select_digits_takes_the_first_n_in_order():
    labels = np.array([4, 1, 9, 4, 9, 4, 9, 7])
    np.testing.assert_array_equal(select_digits(labels, [4, 9], 2), [0, 2, 3, 4])
    np.testing.assert_array_equal(select_digits(labels, [4], None), [0, 3, 5])
    with pytest.raises(DataError, match="only 1 samples of digit 7"):
        select_digits(labels, [7], 2)


def test_store_roundtrip_keeps_ids_features_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    train = PartSamples(rng.random((5, 1, 4, 4), dtype=np.float32), np.arange(5), np.arange(10, 15))
    test = PartSamples(rng.random((3, 1, 4, 4), dtype=np.float32), np.arange(3), np.arange(3))
    store = store_arrays(tmp_path, {"train": train, "test": test})
    assert store.manifest["splits"] == {"train": 5, "test": 3} and store.manifest["feature_shape"] == [1, 4, 4]
    assert store.corrupt_shards() == []
    ids, x, y = store.split("test")
    np.testing.assert_array_equal(ids, [5, 6, 7])
    np.testing.assert_array_equal(x, test.features)
    np.testing.assert_array_equal(y, test.labels)


def test_ingest_paper_subset_and_reuse(tmp_path, mnist):
    cfg = DataConfig(train_per_digit=100, test_per_digit=50)
    store = ingest(cfg, mnist, tmp_path)
    ids, x, y = store.split("train")
    assert x.shape == (200, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(ids, np.arange(200))
    assert (y == 4).sum() == 100 and (y == 9).sum() == 100
    again = ingest(cfg, mnist, tmp_path)
    assert again.directory == store.directory and again.manifest["sha256"] == store.manifest["sha256"]
    # A corrupted store is rebuilt, not trusted.
    store.files[0].write_bytes(b"garbage")
    assert ingest(cfg, mnist, tmp_path).corrupt_shards() == []
