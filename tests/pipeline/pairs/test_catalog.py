import pytest

from pipeline.pairs.catalog import INDEX_OPTIONS, check_index_options
from pipeline.pairs.knn import INDEXES, make_index


def test_the_catalog_lists_every_index_backend():
    assert set(INDEX_OPTIONS) == set(INDEXES)
    for name in INDEXES:
        assert make_index(name).options == INDEX_OPTIONS[name]  # the backend's defaults are the catalog's


def test_options_are_checked_and_defaults_filled_in():
    assert check_index_options("ivf", {"nprobe": 4}) == {"nlist": None, "nprobe": 4, "train_size": None}
    with pytest.raises(ValueError, match=r"unknown index 'lsh'; choose one of \['flat', 'hnsw', 'ivf'\]"):
        check_index_options("lsh")
    with pytest.raises(ValueError, match=r"index 'hnsw' has no option\(s\) \['nprobe'\]; valid options: "
                                         r"\['ef_construction', 'ef_search', 'm'\]"):
        check_index_options("hnsw", {"nprobe": 4})
    with pytest.raises(ValueError, match="must be positive integers"):
        check_index_options("ivf", {"nprobe": 0})
