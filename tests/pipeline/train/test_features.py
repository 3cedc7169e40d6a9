import threading

import numpy as np
import pytest
import torch

from pipeline.train.features import DeviceFeatures, StreamedFeatures, feature_table, prefetched


def test_device_and_streamed_features_give_the_same_rows(tmp_path):
    matrix = np.random.default_rng(0).random((50, 1, 4, 4), dtype=np.float32)
    np.save(tmp_path / "f.npy", matrix)
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")
    cpu = torch.device("cpu")
    ids = np.array([0, 3, 4, 17, 49])
    for table in (DeviceFeatures(mapped, cpu), StreamedFeatures(mapped, cpu)):
        rows = table.to_device(ids, table.fetch(ids))
        assert rows.dtype == torch.float32 and rows.shape == (5, 1, 4, 4)
        np.testing.assert_array_equal(rows.numpy(), matrix[ids])
    assert isinstance(feature_table(mapped, cpu, "stream"), StreamedFeatures)
    assert isinstance(feature_table(mapped, cpu, "auto"), DeviceFeatures)  # 3 KiB: fits
    with pytest.raises(ValueError, match=r"choose one of \['auto', 'device', 'stream'\]"):
        feature_table(mapped, cpu, "disk")


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_prefetched_yields_every_item_in_order_and_consumes_a_shared_generator_as_inline(depth):
    rng = np.random.default_rng(0)
    items = list(prefetched(lambda i: (i, rng.integers(0, 1000)), 20, depth))
    inline = np.random.default_rng(0)
    assert items == [(i, inline.integers(0, 1000)) for i in range(20)]


def test_prefetched_re_raises_the_producers_error_and_stops_when_the_consumer_does():
    def make(i):
        if i == 3:
            raise ValueError("step 3 is broken")
        return i

    seen = []
    with pytest.raises(ValueError, match="step 3 is broken"):
        for item in prefetched(make, 10, 2):
            seen.append(item)
    assert seen == [0, 1, 2]

    made = []
    steps = prefetched(lambda i: made.append(i) or i, 1000, 2)
    assert next(steps) == 0
    steps.close()  # the consumer gives up: the producer thread ends instead of filling the queue forever
    assert len(made) < 10
    assert not any(t.name == "step-prefetch" for t in threading.enumerate())


def test_stored_pixels_are_cast_on_the_device_to_the_stores_own_values():
    from pipeline.train.features import as_values

    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    cast = as_values(torch.from_numpy(pixels), 255.0).numpy()
    np.testing.assert_array_equal(cast, (pixels / 255.0).astype(np.float32))  # bit for bit
    table = feature_table(pixels, torch.device("cpu"), "stream", 255.0)
    ids = np.array([3, 9])
    np.testing.assert_array_equal(table.to_device(ids, table.fetch(ids)).numpy(), cast[ids])
