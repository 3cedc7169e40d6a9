"""Fuzzing the user-file readers: whatever the bytes, ``read_samples`` returns samples or raises a ``DataError``
that names the file (and, for well-formed files with bad contents, the problem); never any other exception."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.formats import FileSamples, read_samples
from pipeline.errors import DataError

FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
SUFFIXES = [".parquet", ".npy", ".npz"]
MAGICS = [b"", b"PAR1", b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"PK\x03\x04", b"PK\x05\x06"]
DTYPES = ["float32", "float64", "uint8", "int64", "bool", "str"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def valid_files(folder, sample_files) -> dict[str, bytes]:
    """The bytes of one small valid file per suffix (features, labels and a metadata column)."""
    return {
        suffix: sample_files.write_vectors(folder / f"valid{suffix}", n=8, d=5, azimuth=np.arange(8.0)).read_bytes()
        for suffix in SUFFIXES
    }


def read(path: Path) -> FileSamples | DataError:
    """``read_samples`` with the default columns; a ``DataError`` is returned, any other exception escapes."""
    try:
        got = read_samples(path, "features", "label" if path.suffix != ".npy" else None, None)
    except DataError as exc:
        assert str(path) in str(exc), str(exc)
        return exc
    assert got.features.dtype == np.float32 and np.isfinite(got.features).all()
    assert got.labels.dtype == np.int64 and got.labels.shape == (len(got.features),)
    return got


@FUZZ
@given(
    suffix=st.sampled_from(SUFFIXES),
    magic=st.sampled_from(MAGICS),
    body=st.binary(max_size=600),
    footer=st.sampled_from([b"", b"PAR1"]),
)
def test_arbitrary_bytes_are_samples_or_a_data_error(folder, suffix, magic, body, footer):
    path = folder / f"bytes{suffix}"
    path.write_bytes(magic + body + footer)
    read(path)


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), where=st.floats(0, 1, exclude_max=True))
def test_truncated_files_are_a_data_error(folder, valid_files, suffix, where):
    data = valid_files[suffix]
    path = folder / f"truncated{suffix}"
    path.write_bytes(data[: int(where * len(data))])
    assert isinstance(read(path), DataError)


@FUZZ
@given(
    suffix=st.sampled_from(SUFFIXES), where=st.floats(0, 1, exclude_max=True), junk=st.binary(min_size=1, max_size=16)
)
def test_files_with_overwritten_bytes_are_samples_or_a_data_error(folder, valid_files, suffix, where, junk):
    data = bytearray(valid_files[suffix])
    start = int(where * len(data))
    data[start : start + len(junk)] = junk
    path = folder / f"overwritten{suffix}"
    path.write_bytes(bytes(data))
    read(path)


@st.composite
def arrays(draw) -> np.ndarray:
    """Feature arrays (n, *shape) of a random dtype, some with NaN or infinities, some empty."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = (draw(st.integers(0, 5)), *draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))
    size = math.prod(shape)
    if dtype == "str":
        return np.array(draw(st.lists(st.text(max_size=3), min_size=size, max_size=size)), dtype=str).reshape(shape)
    if dtype == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool).reshape(shape)
    if dtype in ("uint8", "int64"):
        info = np.iinfo(dtype)
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=size, max_size=size))
        return np.array(values, dtype=dtype).reshape(shape)
    width = 32 if dtype == "float32" else 64
    values = draw(st.lists(st.floats(width=width, allow_nan=True, allow_infinity=True), min_size=size, max_size=size))
    return np.array(values, dtype=dtype).reshape(shape)


def write_array(path: Path, x: np.ndarray) -> list[int] | None:
    """``x`` as a sample file (labels 0..n-1 beside it where the format has room); returns the feature_shape
    to read it back with (Parquet stores one flat list per row)."""
    n = len(x)
    if path.suffix == ".npy":
        np.save(path, x, allow_pickle=False)
    elif path.suffix == ".npz":
        np.savez(path, features=x, label=np.arange(n))
    else:
        flat = x.reshape(n, math.prod(x.shape[1:]))
        kind = {"U": pa.string(), "b": pa.bool_()}.get(x.dtype.kind) or pa.from_numpy_dtype(x.dtype)
        pq.write_table(pa.table({"features": pa.array(list(flat), type=pa.list_(kind)), "label": np.arange(n)}), path)
        return list(x.shape[1:]) if x.ndim > 2 and 0 not in x.shape[1:] else None
    return None


def problem(x: np.ndarray, suffix: str) -> list[str] | None:
    """What a reader must say about ``x`` (any of these), or None when ``x`` is valid."""
    if x.ndim < 2 and suffix != ".parquet":
        return ["must be numbers shaped (n, ...)"]
    if x.dtype.kind not in "iuf":
        return ["must be numbers shaped (n, ...)", "must hold numbers"]
    if len(x) == 0:
        return ["no samples"]
    if x[0].size == 0:
        return ["0 features per sample"]
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        return ["NaN or infinite features"]
    with np.errstate(over="ignore"):
        if not np.isfinite(x.astype(np.float32)).all():
            return ["beyond float32's range"]
    return None


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), x=arrays())
def test_random_arrays_round_trip_or_are_refused_with_the_problem(folder, suffix, x):
    path = folder / f"array{suffix}"
    if suffix == ".parquet" and x.ndim < 2:
        x = x.reshape(len(x), 1) if x.ndim == 1 else x.reshape(1, 1)
    feature_shape = write_array(path, x)
    try:
        got = read_samples(path, "features", None if suffix == ".npy" else "label", feature_shape)
    except DataError as exc:
        expected = problem(x, suffix)
        assert expected is not None, f"valid {x.dtype} {x.shape} refused: {exc}"
        assert str(path) in str(exc) and any(words in str(exc) for words in expected), (expected, str(exc))
        return
    assert problem(x, suffix) is None, f"{x.dtype} {x.shape} accepted"
    assert got.features.dtype == np.float32 and got.features.shape == x.shape
    np.testing.assert_array_equal(got.features, x.astype(np.float32))
    assert got.labels.tolist() == ([-1] * len(x) if suffix == ".npy" else list(range(len(x))))
