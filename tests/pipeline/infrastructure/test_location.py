import json
import logging
import re

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from pipeline.errors import StageError
from pipeline.infrastructure.atomic import write_manifest, write_shards
from pipeline.infrastructure.runtime import resolve_runtime
from pipeline.infrastructure.location import CACHE_ENV, Remote, checkpoint_storage, local_copy


@pytest.fixture
def remote(s3_server, tmp_path):
    """A folder of its own for each test on the loopback S3 server, its options in the URI."""
    host = s3_server["endpoint_override"].split("://", 1)[1]
    return Remote(f"s3://drlim/{tmp_path.name}/out?endpoint_override={host}&scheme=http&region=us-east-1")


def _publish(remote: Remote) -> list[dict]:
    tables = [pa.table({"id": list(range(i, i + 3))}) for i in (0, 3)]
    shards = write_shards(remote, tables, 6, "a test output", row_group_size=8)
    write_manifest(remote, {"shards": shards})
    return shards


def test_a_remote_output_is_written_through_the_writers_node_and_copied_once_to_another(remote, tmp_path,
                                                                                        monkeypatch, caplog):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-a"))
    shards = _publish(remote)
    written = remote.copy_dir()
    assert sorted(p.name for p in written.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]  # no manifest
    filesystem, path = remote.filesystem()
    assert filesystem.get_file_info(f"{path}/part-00001.parquet").type == pafs.FileType.File
    with caplog.at_level(logging.INFO, logger="pipeline.infrastructure.location"):
        assert local_copy(remote) == written
    assert "(0 of 2 shards downloaded)" in caplog.text  # the writer's node keeps what it wrote

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-b"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.infrastructure.location"):
        copy = local_copy(remote)
        assert local_copy(remote) == copy  # the second call finds it complete
    assert caplog.text.count("shards downloaded") == 1 and "(2 of 2 shards downloaded)" in caplog.text
    assert copy.is_relative_to(tmp_path / "node-b")
    assert json.loads((copy / "manifest.json").read_text()) == {"shards": shards}
    assert {p.name: p.read_bytes() for p in copy.glob("*.parquet")} == \
        {p.name: p.read_bytes() for p in written.glob("*.parquet")}


def test_an_unfinished_or_corrupt_remote_output_is_one_line_that_says_what_to_do(remote, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-a"))
    write_shards(remote, [pa.table({"id": [1, 2]})], 2, "a test output", row_group_size=8)
    with pytest.raises(StageError, match=rf"{re.escape(remote.base)} has no manifest.json: the stage .* re-run"):
        local_copy(remote)
    _publish(remote)
    filesystem, path = remote.filesystem()
    with filesystem.open_output_stream(f"{path}/part-00001.parquet") as out:
        out.write(b"not the shard that was written")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-b"))
    with pytest.raises(StageError, match=rf"\['part-00001.parquet'\] differ from their checksums .* delete "
                                         rf"{re.escape(remote.base)} and re-run"):
        local_copy(remote)
    assert not (remote.copy_dir() / "manifest.json").exists()  # a copy without its manifest: never used as finished


def test_a_uri_workdir_keeps_its_local_parts_in_a_working_folder(remote, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runtime = resolve_runtime(remote.uri, None, None)
    assert runtime.remote == remote and runtime.workdir.is_relative_to(tmp_path / "cache")
    assert runtime.tracking_uri == f"sqlite:///{runtime.workdir / 'mlflow.db'}"
    with pytest.raises(StageError, match=r"--workdir nope://x: cannot open this location"):
        resolve_runtime("nope://x", None, None)


def test_checkpoints_go_to_the_folder_above_the_run_locally_or_through_the_remote_filesystem(remote, tmp_path):
    assert checkpoint_storage(tmp_path / "checkpoints" / "run") == {"storage_path": str(tmp_path / "checkpoints")}
    found = checkpoint_storage(remote.child("checkpoints", "run"))
    assert found["storage_path"] == f"drlim/{tmp_path.name}/out/checkpoints"
    assert isinstance(found["storage_filesystem"], pafs.S3FileSystem)


def test_a_remote_output_with_a_corrupt_shard_is_not_reused_but_rebuilt(remote, tmp_path, monkeypatch, caplog):
    from pipeline.infrastructure.atomic import reusable
    from pipeline.pairs.shards import PairSet

    class Output:  # what an output's opener gives: its manifest, read from this node's copy
        def __init__(self, location):
            self.manifest = json.loads((local_copy(location) / "manifest.json").read_text())

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-a"))
    assert reusable(remote, Output, "Test output") is None  # nothing there yet
    _publish(remote)
    assert reusable(remote, Output, "Test output").manifest["shards"][0]["rows"] == 3
    filesystem, path = remote.filesystem()
    with filesystem.open_output_stream(f"{path}/part-00000.parquet") as out:
        out.write(b"garbage")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-b"))
    with caplog.at_level(logging.WARNING, logger="pipeline.infrastructure.atomic"):
        assert reusable(remote, Output, "Test output") is None
    assert "has missing or corrupt shards ['part-00000.parquet']; rebuilding it" in caplog.text
    with pytest.raises(StageError, match="no pair set|has no manifest.json"):
        PairSet.open(remote.child("nothing"))
