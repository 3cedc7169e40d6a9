"""Listing a source: a file, a folder of part files or a glob, local or on a real S3 server; no data read."""

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from pipeline.data.formats import read_samples
from pipeline.data.listing import fingerprint, list_source
from pipeline.errors import DataError
from tests.pipeline.conftest import feature_list, vectors, write_parquet


def _folder(root):
    for i in range(3):
        write_parquet(root / "set" / f"part-{i}.parquet", vectors(4, seed=i), label=np.arange(4))
    (root / "set" / "_SUCCESS").write_text("")
    (root / "set" / ".part-0.parquet.crc").write_text("x")
    write_parquet(root / "set" / "nested" / "part-9.parquet", vectors(2, seed=9), label=np.arange(2))


def test_a_file_a_folder_and_a_glob_name_their_files_in_path_order(tmp_path):
    _folder(tmp_path)
    folder = list_source("set", "data.path", tmp_path)
    assert [f.name for f in folder] == [
        str(tmp_path / "set" / p)
        for p in ("nested/part-9.parquet", "part-0.parquet", "part-1.parquet", "part-2.parquet")
    ]
    glob = list_source(str(tmp_path / "set" / "part-[01].parquet"), "data.path", tmp_path)
    assert [f.name for f in glob] == [str(tmp_path / "set" / f"part-{i}.parquet") for i in (0, 1)]
    one = list_source("set/part-2.parquet", "data.path", tmp_path)
    assert len(one) == 1 and one[0].size == (tmp_path / "set" / "part-2.parquet").stat().st_size
    before = fingerprint(folder)
    write_parquet(tmp_path / "set" / "part-1.parquet", vectors(4, seed=7), label=np.arange(4))
    assert fingerprint(list_source("set", "data.path", tmp_path)) != before  # a rewritten part changes the key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nope", "data.path: {root}/nope does not exist (relative paths are read from the data root {root})"),
        ("empty", "data.path: no .parquet/.npy/.npz files in {root}/empty"),
        ("set/*.csv", "data.path: no .parquet/.npy/.npz files in {root}/set/*.csv"),
    ],
)
def test_a_source_with_nothing_to_read_is_one_clear_error(tmp_path, value, message):
    _folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        list_source(value, "data.path", tmp_path)
    assert message.format(root=tmp_path) in str(info.value)


def test_a_folder_on_a_real_s3_server_lists_and_reads_like_a_local_one(s3_server):
    s3 = pafs.S3FileSystem(**s3_server)
    x = vectors(5, seed=3)
    for i in range(2):
        pq.write_table(
            pa.table({"features": feature_list(x + i), "label": np.arange(5)}),
            f"drlim/listing/part-{i}.parquet",
            filesystem=s3,
        )
    files = list_source("s3://drlim/listing", "data.path", None, s3_server)
    assert [f.name for f in files] == ["s3://drlim/listing/part-0.parquet", "s3://drlim/listing/part-1.parquet"]
    np.testing.assert_array_equal(read_samples(files[1], "features", "label", None).features, x + 1)
    with pytest.raises(DataError, match="data.path: s3://drlim/missing does not exist"):
        list_source("s3://drlim/missing", "data.path", None, s3_server)
    with pytest.raises(DataError, match="data.storage_options: .*endpoint"):
        list_source("s3://drlim/listing", "data.path", None, {"endpoint": "x"})
