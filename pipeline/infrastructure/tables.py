"""Sharded Parquet tables: how every stage output (the sample store, the pair set) is written, opened and reused.

An output is a folder (a ``Location``) of Parquet shards plus ``manifest.json``, which lists every shard with its
row count and sha256 and is written last: a folder with a manifest is finished. ``write_shards`` writes each shard
atomically into the writer's node and publishes it; the driver merges the writers' entries into the manifest
(``write_manifest``). ``ShardedTable.open`` is the one reader: it finds the folder on this node (``node_copy``),
reads the manifest and refuses another schema version; ``reusable`` opens an earlier run's output only when every
shard still matches its checksum.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pipeline.errors import CorruptShards, StageError
from pipeline.infrastructure.atomic import atomic_path, check_room, corrupt_shards, sha256_file
from pipeline.infrastructure.location import MANIFEST_FILE, Location

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

Table = TypeVar("Table", bound="ShardedTable")


def write_shards(
    location: Location,
    tables: Iterable[pa.Table],
    total_rows: int,
    what: str,
    row_group_size: int,
    name_of: Callable[[int, pa.Table], str] | None = None,
) -> list[dict]:
    """Write ``tables`` as ``part-00000.parquet``, ``part-00001.parquet``, ... (or ``name_of(number, table)``)
    into ``location``, each atomically, and return their manifest entries (file, rows, sha256). The first shard's
    size is checked against the room left for the rest (``check_room``) before the next is made."""
    import pyarrow.parquet as pq

    local = location.node_dir
    shards = []
    for number, table in enumerate(tables):
        name = name_of(number, table) if name_of else f"part-{number:05d}.parquet"
        with atomic_path(local / name) as tmp:
            pq.write_table(table, tmp, row_group_size=row_group_size)
        shards.append({"file": name, "rows": table.num_rows, "sha256": sha256_file(local / name)})
        if number == 0:
            check_room(local, (local / name).stat().st_size, table.num_rows, total_rows, what)
        location.publish([name])
    return shards


def write_manifest(location: Location, manifest: dict) -> None:
    """Write an output's manifest: last, after every shard, since its presence marks the output finished."""
    location.write_json(MANIFEST_FILE, manifest)


class ShardedTable:
    """A finished output read through its manifest, from this node's folder of it (``directory``)."""

    KIND: ClassVar[str]  # how messages name it, e.g. "sample store"
    SCHEMA_VERSION: ClassVar[int]  # the version it writes
    READS: ClassVar[tuple[int, ...]] = ()  # the versions it reads (default: SCHEMA_VERSION alone)
    STAGE: ClassVar[str]  # the stage that writes it, e.g. "the data stage"

    def __init__(self, location: Location, directory: Path, manifest: dict[str, Any]) -> None:
        self.location, self.directory, self.manifest = location, directory, manifest

    @classmethod
    def open(cls: type[Table], location: str | Path | Location, verify: bool = False) -> Table:
        """The output at ``location``, as this node reads it; with ``verify`` every shard is checked against its
        checksum first (``CorruptShards`` otherwise)."""
        location = Location.of(location)
        raw = location.read_bytes(MANIFEST_FILE)
        if raw is None:
            raise StageError(f"no {cls.KIND} at {location} (missing {MANIFEST_FILE}); run {cls.STAGE}")
        manifest = json.loads(raw)
        versions = cls.READS or (cls.SCHEMA_VERSION,)
        if manifest.get("schema_version") not in versions:
            raise StageError(
                f"{location}/{MANIFEST_FILE}: {cls.KIND} schema version {manifest.get('schema_version')} is not "
                f"{' or '.join(map(str, versions))}; delete {location} and re-run {cls.STAGE}"
            )
        return cls(location, location.node_copy(verify, raw), manifest)

    def here(self: Table) -> Table:
        """This output as read on the node this runs on (its own copy of a remote one, fetched once)."""
        return type(self).open(self.location)

    @property
    def files(self) -> list[Path]:
        return [self.directory / shard["file"] for shard in self.manifest["shards"]]

    def corrupt_shards(self) -> list[str]:
        """Shards that are missing or whose checksum differs from the manifest."""
        return corrupt_shards(self.directory, self.manifest["shards"])


def reusable(cls: type[Table], location: Location) -> Table | None:
    """The ``cls`` output at ``location`` when it is finished (a manifest) and every shard matches its checksum
    (for a remote one: as this node's copy finds them); ``None`` (said in the log when something was there) when it
    must be built again."""
    if location.read_bytes(MANIFEST_FILE) is None:
        return None
    try:
        return cls.open(location, verify=True)
    except CorruptShards as exc:
        log.warning(
            "%s %s has missing or corrupt shards %s; rebuilding it", cls.KIND.capitalize(), location, exc.files[:5]
        )
        return None
