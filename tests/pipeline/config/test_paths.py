import pytest

from pipeline.config.paths import climbs_out, resolve_data_path


@pytest.mark.parametrize(
    ("value", "climbs"),
    [
        ("a.parquet", False),
        ("sub/../a.parquet", False),
        ("../a.parquet", True),
        ("a/../../b", True),
        ("/abs/../x", False),
    ],
)
def test_climbs_out_only_for_relative_paths_that_leave_the_root(value, climbs):
    assert climbs_out(value) is climbs


def test_relative_data_paths_resolve_under_the_root(tmp_path):
    assert resolve_data_path("x/y.npy", tmp_path) == tmp_path / "x" / "y.npy"
    assert resolve_data_path("/elsewhere/y.npy", tmp_path).as_posix() == "/elsewhere/y.npy"
