import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.embed_cli import read_images
from pipeline.errors import DataError


def test_uint8_and_float_inputs_become_float_nchw(tmp_path):
    raw = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.save(tmp_path / "u8.npy", raw)
    images = read_images(tmp_path / "u8.npy")
    assert images.shape == (2, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_allclose(images[:, 0], raw / 255.0, rtol=1e-6)
    np.savez(tmp_path / "f.npz", x=np.zeros((3, 1, 28, 28), np.float64))
    assert read_images(tmp_path / "f.npz").shape == (3, 1, 28, 28)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"not numpy"), "not a readable .npy/.npz"),
        (lambda p: np.save(p, np.zeros((2, 32, 32))), "must have shape (n, 28, 28)"),
        (lambda p: np.save(p, np.full((1, 28, 28), np.nan)), "NaN or infinite"),
    ],
)
def test_bad_inputs_say_what_is_wrong(tmp_path, make, message):
    path = tmp_path / "in.npy"
    make(path)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_images(path)
    assert str(path) in str(info.value)


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 28, 28)), b=np.zeros((1, 28, 28)))
    with pytest.raises(DataError, match=r"choose one with --key"):
        read_images(tmp_path / "two.npz")
    with pytest.raises(DataError, match=r"has no array 'c'"):
        read_images(tmp_path / "two.npz", key="c")
    assert read_images(tmp_path / "two.npz", key="b").shape == (1, 1, 28, 28)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_a_library_error(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "x.npy"
    path.write_bytes(b"\x93NUMPY" + blob)
    try:
        images = read_images(path)
    except DataError:
        return
    assert images.ndim == 4 and images.dtype == np.float32
