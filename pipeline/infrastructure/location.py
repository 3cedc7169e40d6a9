"""A workdir on object storage: stage outputs published to a URI and read from a copy on each node.

With ``--workdir s3://bucket/prefix`` (any URI pyarrow opens; its options, such as ``endpoint_override``, in the
query string; credentials the usual way, e.g. AWS environment variables):

- the sample store and the pair set live under ``URI/samples/<key>`` and ``URI/pairs/<key>``. Each writer task
  writes its shards into its own node's copy and uploads them (``io.write_shards``); the driver uploads the
  manifest last (``io.write_manifest``), so a folder without one is unfinished and is built again;
- every process that reads them (index parts, training workers) reads its node's copy (``local_copy``: under
  ``DRLIM_CACHE``, default ``~/.cache/drlim``), fetched once per node and verified against the checksums;
- Ray Train writes its checkpoints to ``URI/checkpoints`` itself (``checkpoint_storage``);
- locks, plots and the default MLflow store stay in a working folder on the driver's node (``working_dir``); set
  ``MLFLOW_TRACKING_URI`` to a tracking server to share runs between machines.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline.errors import CorruptShards, StageError
from pipeline.infrastructure.atomic import MANIFEST_FILE, atomic_path, corrupt_shards, exclusive

log = logging.getLogger(__name__)

CACHE_ENV = "DRLIM_CACHE"


def is_uri(value: str | os.PathLike) -> bool:
    return "://" in str(value)


def cache_root() -> Path:
    """This node's folder for copies of remote outputs (``DRLIM_CACHE``, default ``~/.cache/drlim``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "drlim").expanduser()


@dataclass(frozen=True)
class Remote:
    """A folder at ``uri`` on any filesystem pyarrow opens (the query string, if any, holds its options)."""

    uri: str

    def __str__(self) -> str:
        return self.base

    @property
    def base(self) -> str:
        """The URI without its options: how messages name it."""
        return self.uri.split("?", 1)[0].rstrip("/")

    @property
    def name(self) -> str:
        return self.base.rsplit("/", 1)[-1]

    def child(self, *parts: str) -> Remote:
        query = f"?{self.uri.split('?', 1)[1]}" if "?" in self.uri else ""
        return Remote("/".join([self.base, *parts]) + query)

    def filesystem(self):
        """``(pyarrow filesystem, path of this folder inside it)``, opened once per object."""
        return self._opened

    @cached_property
    def _opened(self):
        import pyarrow as pa
        import pyarrow.fs as pafs

        try:
            return pafs.FileSystem.from_uri(self.uri)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise StageError(f"--workdir {self.base}: cannot open this location ({exc.__class__.__name__}: {exc}); "
                             f"check the URI, its options and the credentials") from None

    def copy_dir(self) -> Path:
        """Where this node keeps its copy of the folder."""
        return cache_root() / "copies" / hashlib.sha256(self.base.encode()).hexdigest()[:16]

    def read_bytes(self, name: str) -> bytes | None:
        """The file ``name`` of the folder, or None when there is none."""
        import pyarrow.fs as pafs

        filesystem, path = self.filesystem()
        if filesystem.get_file_info(f"{path}/{name}").type != pafs.FileType.File:
            return None
        with filesystem.open_input_stream(f"{path}/{name}") as stream:
            return stream.read()

    def upload(self, directory: Path, names: list[str]) -> None:
        """Copy the files ``names`` of local ``directory`` into the folder (each object appears whole or not)."""
        filesystem, path = self.filesystem()
        for name in names:
            with open(directory / name, "rb") as source, filesystem.open_output_stream(f"{path}/{name}") as out:
                while block := source.read(1 << 22):
                    out.write(block)

    def download(self, name: str, target: Path) -> None:
        filesystem, path = self.filesystem()
        with atomic_path(target, f"a copy of {self.base}/{name}") as tmp, \
                filesystem.open_input_stream(f"{path}/{name}") as stream, open(tmp, "wb") as out:
            while block := stream.read(1 << 22):
                out.write(block)

    def put_json(self, name: str, obj: dict) -> None:
        filesystem, path = self.filesystem()
        with filesystem.open_output_stream(f"{path}/{name}") as out:
            out.write((json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def local_copy(remote: Remote) -> Path:
    """This node's copy of the finished output (a manifest and its shards) at ``remote``, fetched once per node:
    shards this node wrote or fetched before are kept when they match their checksums, the rest downloaded and
    checked; the manifest is written last, so a copy with one is complete."""
    directory = remote.copy_dir()
    manifest = remote.read_bytes(MANIFEST_FILE)
    if manifest is None:
        raise StageError(f"{remote.base} has no {MANIFEST_FILE}: the stage that writes it has not finished; re-run it")

    def complete() -> bool:
        return (directory / MANIFEST_FILE).is_file() and (directory / MANIFEST_FILE).read_bytes() == manifest

    if complete():
        return directory
    with exclusive(cache_root(), f"copy-{directory.name}", f"Waiting for another process fetching {remote.base}"):
        if complete():  # another process on this node fetched it meanwhile
            return directory
        (directory / MANIFEST_FILE).unlink(missing_ok=True)
        shards = json.loads(manifest)["shards"]
        missing = corrupt_shards(directory, shards)
        for name in missing:
            remote.download(name, directory / name)
        bad = corrupt_shards(directory, [s for s in shards if s["file"] in missing])
        if bad:
            raise CorruptShards(f"{remote.base}: {bad[:3]} differ from their checksums in its {MANIFEST_FILE}; "
                                f"delete {remote.base} and re-run to build it again", bad)
        with atomic_path(directory / MANIFEST_FILE) as tmp:
            tmp.write_bytes(manifest)
    log.info("Copied %s to this node's %s (%d of %d shards downloaded)", remote.base, directory, len(missing),
             len(shards))
    return directory


def working_dir(remote: Remote) -> Path:
    """The driver's local working folder for a remote workdir: locks, plots, the default MLflow store."""
    return cache_root() / "workdirs" / hashlib.sha256(remote.base.encode()).hexdigest()[:16]


def checkpoint_storage(run_dir: Path | Remote) -> dict:
    """Ray Train's ``RunConfig`` storage arguments for checkpoints under ``run_dir``'s parent (a remote one
    through its pyarrow filesystem, which Ray Train writes to itself)."""
    if isinstance(run_dir, Path):
        return {"storage_path": str(run_dir.parent.resolve())}
    filesystem, path = run_dir.filesystem()
    return {"storage_path": path.rsplit("/", 1)[0], "storage_filesystem": filesystem}
