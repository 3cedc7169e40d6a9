import json
import logging
import re

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from pipeline.errors import CorruptShards, StageError
from pipeline.infrastructure.location import CACHE_ENV, Location
from pipeline.infrastructure.runtime import resolve_runtime
from pipeline.infrastructure.tables import ShardedTable, write_manifest, write_shards


@pytest.fixture
def remote(s3_server, tmp_path) -> Location:
    """A folder of its own for each test on the loopback S3 server, its options in the URI."""
    host = s3_server["endpoint_override"].split("://", 1)[1]
    return Location(f"s3://drlim/{tmp_path.name}/out?endpoint_override={host}&scheme=http&region=us-east-1")


def _publish(location: Location) -> list[dict]:
    tables = [pa.table({"id": list(range(i, i + 3))}) for i in (0, 3)]
    shards = write_shards(location, tables, 6, "a test output", row_group_size=8)
    write_manifest(location, {"shards": shards})
    return shards


class Output(ShardedTable):
    KIND, SCHEMA_VERSION, STAGE = "test output", None, "the test stage"


def test_a_local_path_and_a_uri_are_one_type(tmp_path, remote):
    local = Location.of(tmp_path / "a" / ".." / "work")
    assert local.is_local and local.path == tmp_path / "work" and Location.of(local) is local
    assert local.child("pairs", "k").path == tmp_path / "work" / "pairs" / "k"
    assert local.node_dir == local.workspace == local.path
    assert not remote.is_local and remote.name == "out" and str(remote) == remote.base
    child = remote.child("pairs", "k")
    assert child.base == f"{remote.base}/pairs/k" and child.uri.endswith("?" + remote.uri.split("?", 1)[1])
    with pytest.raises(ValueError, match="is not a local folder"):
        _ = remote.path


def test_a_local_output_is_built_aside_and_renamed_into_place_only_when_finished(tmp_path):
    final = Location.of(tmp_path / "out")
    with pytest.raises(RuntimeError), final.build("a test output") as out:
        _publish(out)
        raise RuntimeError("interrupted")
    assert not final.path.exists() and list(tmp_path.iterdir()) == []
    with final.build("a test output") as out:
        assert out != final and out.path.parent == tmp_path
        shards = _publish(out)
    assert Output.open(final).manifest["shards"] == shards
    assert sorted(p.name for p in final.path.iterdir()) == ["manifest.json", "part-00000.parquet", "part-00001.parquet"]


def test_a_local_output_is_read_in_place_and_checked_when_asked(tmp_path):
    location = Location.of(tmp_path / "out")
    _publish(location)
    assert location.node_copy() == location.path
    (location.path / "part-00001.parquet").write_bytes(b"changed")
    assert location.node_copy() == location.path  # reading does not hash every shard
    with pytest.raises(CorruptShards) as info:
        location.node_copy(verify=True)
    assert info.value.files == ["part-00001.parquet"]


def test_a_remote_output_is_written_through_the_writers_node_and_copied_once_to_another(
    remote, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-a"))
    with remote.build("a test output") as out:
        assert out == remote  # object storage has no rename: the manifest, written last, marks it finished
        shards = _publish(out)
    written = remote.node_dir
    assert sorted(p.name for p in written.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]  # no manifest
    filesystem, path = remote.filesystem()
    assert filesystem.get_file_info(f"{path}/part-00001.parquet").type == pafs.FileType.File
    with caplog.at_level(logging.INFO, logger="pipeline.infrastructure.location"):
        assert remote.node_copy() == written
    assert "(0 of 2 shards downloaded)" in caplog.text  # the writer's node keeps what it wrote

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-b"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.infrastructure.location"):
        copy = remote.node_copy()
        assert remote.node_copy() == copy  # the second call finds it complete
    assert caplog.text.count("shards downloaded") == 1 and "(2 of 2 shards downloaded)" in caplog.text
    assert copy.is_relative_to(tmp_path / "node-b")
    assert json.loads((copy / "manifest.json").read_text()) == {"shards": shards}
    assert {p.name: p.read_bytes() for p in copy.glob("*.parquet")} == {
        p.name: p.read_bytes() for p in written.glob("*.parquet")
    }


def test_an_unfinished_or_corrupt_remote_output_is_one_line_that_says_what_to_do(remote, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-a"))
    write_shards(remote, [pa.table({"id": [1, 2]})], 2, "a test output", row_group_size=8)
    with pytest.raises(StageError, match=rf"{re.escape(remote.base)} has no manifest.json: the stage .* re-run"):
        remote.node_copy()
    _publish(remote)
    filesystem, path = remote.filesystem()
    with filesystem.open_output_stream(f"{path}/part-00001.parquet") as out:
        out.write(b"not the shard that was written")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-b"))
    with pytest.raises(
        StageError,
        match=rf"\['part-00001.parquet'\] differ from their checksums .* delete "
        rf"{re.escape(remote.base)} and re-run",
    ):
        remote.node_copy()
    assert not (remote.node_dir / "manifest.json").exists()  # a copy without its manifest: never used as finished


def test_a_uri_workdir_keeps_its_local_parts_in_a_working_folder(remote, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runtime = resolve_runtime(remote.uri, None, None)
    assert runtime.workdir == remote and runtime.workspace.is_relative_to(tmp_path / "cache")
    assert runtime.tracking_uri == f"sqlite:///{runtime.workspace / 'mlflow.db'}"
    with pytest.raises(StageError, match=r"--workdir nope://x: cannot open this location"):
        resolve_runtime("nope://x", None, None)


def test_checkpoints_go_to_the_folder_above_the_run_locally_or_through_the_remote_filesystem(remote, tmp_path):
    run = Location.of(tmp_path / "checkpoints" / "run")
    assert run.ray_storage() == {"storage_path": str(tmp_path / "checkpoints")}
    found = remote.child("checkpoints", "run").ray_storage()
    assert found["storage_path"] == f"drlim/{tmp_path.name}/out/checkpoints"
    assert isinstance(found["storage_filesystem"], pafs.S3FileSystem)
