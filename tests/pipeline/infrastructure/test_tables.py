import logging

import pyarrow as pa
import pytest

from pipeline.errors import StageError
from pipeline.infrastructure.location import CACHE_ENV, Location
from pipeline.infrastructure.tables import ShardedTable, reusable, write_manifest, write_shards
from pipeline.pairs.shards import PairSet


class Output(ShardedTable):
    KIND, SCHEMA_VERSION, STAGE = "test output", 3, "the test stage"


def _publish(location: Location, version: int = 3) -> list[dict]:
    tables = [pa.table({"id": list(range(i, i + 3))}) for i in (0, 3)]
    shards = write_shards(location, tables, 6, "a test output", row_group_size=8)
    write_manifest(location, {"shards": shards, "schema_version": version})
    return shards


@pytest.fixture(params=["local", "remote"])
def location(request, tmp_path, monkeypatch) -> Location:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-a"))
    if request.param == "local":
        return Location.of(tmp_path / "out")
    host = request.getfixturevalue("s3_server")["endpoint_override"].split("://", 1)[1]
    return Location(f"s3://drlim/{tmp_path.name}/out?endpoint_override={host}&scheme=http&region=us-east-1")


def test_one_reader_opens_a_finished_output_and_refuses_what_it_cannot_trust(location):
    with pytest.raises(
        StageError,
        match=rf"no test output at {location.base} \(missing manifest.json\); run the "
        r"test stage",
    ):
        Output.open(location)
    shards = _publish(location)
    found = Output.open(location)
    assert found.manifest["shards"] == shards and found.location == location
    assert [p.name for p in found.files] == ["part-00000.parquet", "part-00001.parquet"]
    assert found.here().manifest == found.manifest and found.corrupt_shards() == []
    _publish(location, version=2)
    with pytest.raises(StageError, match=r"test output schema version 2 is not 3; delete .* and re-run the test"):
        Output.open(location)


def test_an_output_with_a_corrupt_shard_is_not_reused_but_rebuilt(location, tmp_path, monkeypatch, caplog):
    assert reusable(Output, location) is None  # nothing there yet
    _publish(location)
    assert reusable(Output, location).manifest["shards"][0]["rows"] == 3
    filesystem, path = location.filesystem()
    with filesystem.open_output_stream(f"{path}/part-00000.parquet") as out:
        out.write(b"garbage")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-b"))  # another node: the copy is fetched and checked
    with caplog.at_level(logging.WARNING, logger="pipeline.infrastructure.tables"):
        assert reusable(Output, location) is None
    assert (
        "Test output" in caplog.text
        and "has missing or corrupt shards ['part-00000.parquet']; rebuilding it" in caplog.text
    )
    with pytest.raises(StageError, match="no pair set at .*; run the pair stage"):
        PairSet.open(location.child("nothing"))
