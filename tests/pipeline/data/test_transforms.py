import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.config.inputs import check_transforms
from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.data.transforms import rotate, shift_x, shift_y, transformed_copies

IMAGES = np.arange(2 * 1 * 4 * 5, dtype=np.float32).reshape(2, 1, 4, 5) + 1


def test_shift_x_moves_columns_right_and_fills_with_zeros():
    out = shift_x(IMAGES, 2)
    assert np.array_equal(out[..., 2:], IMAGES[..., :-2])
    assert not out[..., :2].any()
    back = shift_x(IMAGES, -2)
    assert np.array_equal(back[..., :-2], IMAGES[..., 2:]) and not back[..., -2:].any()


def test_shift_y_moves_rows_down_and_a_shift_past_the_edge_empties_the_image():
    out = shift_y(IMAGES, 1)
    assert np.array_equal(out[..., 1:, :], IMAGES[..., :-1, :]) and not out[..., 0, :].any()
    assert not shift_x(IMAGES, 5).any() and not shift_y(IMAGES, -4).any()


def test_rotate_by_quarter_turns_matches_numpy():
    square = np.random.default_rng(0).random((3, 1, 6, 6), dtype=np.float32)
    assert np.allclose(rotate(square, 0), square)
    assert np.allclose(rotate(square, 90), np.rot90(square, 1, axes=(2, 3)), atol=1e-6)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"shift_z": [1]}, "unknown transform 'shift_z'; choose one of"),
        ({"shift_x": []}, "needs at least one parameter"),
        ({"shift_x": [3, 3]}, "repeats a parameter"),
        ({"shift_y": [1.5]}, "whole pixels"),
    ],
)
def test_bad_transform_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        check_transforms(spec)


def test_copies_are_tagged_and_ordered_like_the_spec():
    copies = transformed_copies(IMAGES, {"shift_x": [-1, 1], "rotate": [180]})
    assert [tag for tag, _ in copies] == ["shift_x=-1", "shift_x=1", "rotate=180"]
    assert np.array_equal(copies[1][1], shift_x(IMAGES, 1))


def test_store_keeps_origin_and_transform_of_every_copy(tmp_path):
    cfg = DataConfig(transforms={"shift_x": [-3, 3]})
    labels, source_index = np.array([4, 9]), np.array([10, 20])
    store = store_arrays(
        tmp_path,
        {
            "train": PartSamples(IMAGES, labels, source_index),
            "test": PartSamples(IMAGES[:1], labels[:1], source_index[:1]),
        },
        cfg,
    )

    ids, x, y = store.split("train")
    origin, transform = store.origins("train")
    assert ids.tolist() == list(range(6)) and y.tolist() == [4, 9] * 3
    assert origin.tolist() == [0, 1, 0, 1, 0, 1]
    assert transform.tolist() == [None, None, "shift_x=-3", "shift_x=-3", "shift_x=3", "shift_x=3"]
    assert np.array_equal(x[4], shift_x(IMAGES, 3)[0])
    # Test ids follow the training ids; their origins point into the test split.
    test_ids, _, _ = store.split("test")
    test_origin, _ = store.origins("test")
    assert test_ids.tolist() == [6, 7, 8] and test_origin.tolist() == [6, 6, 6]
