import pytest

from pipeline.data.catalog import TRANSFORM_NAMES, check_transforms
from pipeline.config.paths import climbs_out, resolve_data_path
from pipeline.data.transforms import TRANSFORMS


def test_the_catalog_names_exactly_the_registered_transforms():
    assert sorted(TRANSFORM_NAMES) == sorted(TRANSFORMS)


def test_an_unknown_transform_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown transform 'flip'; choose from \['rotate', 'shift_x', 'shift_y'\]"):
        check_transforms({"flip": [1]})


@pytest.mark.parametrize(("value", "climbs"), [("a.parquet", False), ("sub/../a.parquet", False),
                                                ("../a.parquet", True), ("a/../../b", True), ("/abs/../x", False)])
def test_climbs_out_only_for_relative_paths_that_leave_the_root(value, climbs):
    assert climbs_out(value) is climbs


def test_relative_data_paths_resolve_under_the_root(tmp_path):
    assert resolve_data_path("x/y.npy", tmp_path) == tmp_path / "x" / "y.npy"
    assert resolve_data_path("/elsewhere/y.npy", tmp_path).as_posix() == "/elsewhere/y.npy"
