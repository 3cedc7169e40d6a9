"""Where the pipeline reads and writes: one ``Location`` for a local folder and a URI alike.

A ``Location`` is a folder on any filesystem pyarrow opens: a local path (``LocalFileSystem``) or a URI such as
``s3://bucket/prefix`` (its options, such as ``endpoint_override``, in the query string; credentials the usual
way, e.g. AWS environment variables). Every stage takes the workdir as one Location and names its outputs with
``child``. What differs between a local folder and object storage stays inside this class:

- writing: a writer writes files into ``node_dir`` and ``publish``es them (on object storage: uploaded from this
  node's copy; locally they are already in place);
- a whole output is made inside ``build``: locally in a temporary sibling folder renamed into place at the end,
  so a folder is either finished or absent; object storage has no rename, so there the manifest, written last
  (``tables.write_manifest``), is what marks an output finished;
- reading: ``node_copy`` is the local folder this node reads a finished output from: the folder itself, or this
  node's copy of a remote one (under ``DRLIM_CACHE``, default ``~/.cache/drlim``), fetched once per node and
  checked against the manifest's checksums;
- ``workspace``: locks, plots and the default MLflow store of a run stay on the driver's disk (a remote workdir
  gets a working folder there); set ``MLFLOW_TRACKING_URI`` to a tracking server to share runs between machines;
- ``ray_storage``: where Ray Train writes checkpoints (through the URI's pyarrow filesystem, itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import CorruptShards, StageError
from pipeline.infrastructure.atomic import atomic_dir, atomic_path, corrupt_shards, exclusive, write_json

if TYPE_CHECKING:
    import pyarrow.fs as pafs

log = logging.getLogger(__name__)

CACHE_ENV = "DRLIM_CACHE"
# Every finished output (sample store, pair set) lists its files here with their checksums; written last.
MANIFEST_FILE = "manifest.json"


def is_uri(value: str | os.PathLike) -> bool:
    return "://" in str(value)


def cache_root() -> Path:
    """This node's folder for copies of remote outputs (``DRLIM_CACHE``, default ``~/.cache/drlim``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "drlim").expanduser()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Location:
    """A folder: ``uri`` is an absolute local path or a URI (its query string, if any, holds its options)."""

    uri: str

    @classmethod
    def of(cls, value: str | os.PathLike | Location) -> Location:
        """A Location from a path (``~`` expanded, resolved to an absolute path) or a URI."""
        if isinstance(value, Location):
            return value
        text = os.fspath(value)
        return cls(text if is_uri(text) else str(Path(text).expanduser().resolve()))

    def __str__(self) -> str:
        return self.base

    @property
    def is_local(self) -> bool:
        return not is_uri(self.uri)

    @property
    def base(self) -> str:
        """The folder without its options: how messages name it."""
        return self.uri.split("?", 1)[0].rstrip("/") or "/"

    @property
    def name(self) -> str:
        return self.base.rsplit("/", 1)[-1]

    @property
    def path(self) -> Path:
        """The local folder (a local Location only)."""
        if not self.is_local:
            raise ValueError(f"{self.base} is not a local folder")
        return Path(self.uri)

    def child(self, *parts: str) -> Location:
        query = f"?{self.uri.split('?', 1)[1]}" if "?" in self.uri else ""
        return Location("/".join([self.base.rstrip("/"), *parts]) + query)

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """``(pyarrow filesystem, path of this folder inside it)``, opened once per object."""
        return self._opened

    @cached_property
    def _opened(self) -> tuple[pafs.FileSystem, str]:
        # Imported here: a command that only names a workdir (drlim --help, validate) does without pyarrow.
        import pyarrow as pa
        import pyarrow.fs as pafs

        if self.is_local:
            return pafs.LocalFileSystem(), self.uri
        try:
            return pafs.FileSystem.from_uri(self.uri)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise StageError(
                f"--workdir {self.base}: cannot open this location ({exc.__class__.__name__}: {exc}); "
                f"check the URI, its options and the credentials"
            ) from None

    @property
    def node_dir(self) -> Path:
        """The local folder where this node writes the files of this Location and reads them: the folder itself,
        or this node's copy of a remote one."""
        return self.path if self.is_local else cache_root() / "copies" / _digest(self.base)

    @property
    def workspace(self) -> Path:
        """The driver's local working folder for a workdir here: locks, plots, the default MLflow store."""
        return self.path if self.is_local else cache_root() / "workdirs" / _digest(self.base)

    def read_bytes(self, name: str) -> bytes | None:
        """The file ``name`` of the folder, or None when there is none."""
        import pyarrow.fs as pafs

        filesystem, path = self.filesystem()
        if filesystem.get_file_info(f"{path}/{name}").type != pafs.FileType.File:
            return None
        with filesystem.open_input_stream(f"{path}/{name}") as stream:
            return stream.read()

    def write_json(self, name: str, obj: Any) -> None:
        """Write the file ``name`` whole (locally through a temporary file and a rename)."""
        if self.is_local:
            write_json(self.path / name, obj)
            return
        filesystem, path = self.filesystem()
        with filesystem.open_output_stream(f"{path}/{name}") as out:
            out.write((json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())

    def publish(self, names: list[str]) -> None:
        """Make the files ``names`` written into ``node_dir`` part of the folder (on object storage: upload them,
        each object appearing whole or not at all)."""
        if self.is_local:
            return
        filesystem, path = self.filesystem()
        for name in names:
            with open(self.node_dir / name, "rb") as source, filesystem.open_output_stream(f"{path}/{name}") as out:
                while block := source.read(1 << 22):
                    out.write(block)

    def _download(self, name: str) -> None:
        filesystem, path = self.filesystem()
        with (
            atomic_path(self.node_dir / name, f"a copy of {self.base}/{name}") as tmp,
            filesystem.open_input_stream(f"{path}/{name}") as stream,
            open(tmp, "wb") as out,
        ):
            while block := stream.read(1 << 22):
                out.write(block)

    @contextlib.contextmanager
    def build(self, what: str) -> Iterator[Location]:
        """The Location to write a whole new output into, replacing this one only if the block succeeds: locally a
        temporary sibling folder, renamed into place at the end (a full disk there is ``NoSpaceError`` naming
        ``what``); on object storage this Location itself, where the manifest written last marks it finished."""
        if not self.is_local:
            yield self
            return
        with atomic_dir(self.path, what) as tmp:
            yield Location.of(tmp)

    def node_copy(self, verify: bool = False, manifest: bytes | None = None) -> Path:
        """The local folder this node reads the finished output here from (a manifest and the files it lists).

        A local folder is read in place; with ``verify`` every file is checked against its checksum first. A remote
        one is copied to this node once: files this node wrote or fetched before are kept when they match their
        checksums, the rest downloaded and checked; the copy's manifest is written last, so a copy with one is
        complete. Files that are missing or differ raise ``CorruptShards``. ``manifest``: its bytes, when the caller
        has read them already."""
        manifest = manifest if manifest is not None else self.read_bytes(MANIFEST_FILE)
        if manifest is None:
            raise StageError(
                f"{self.base} has no {MANIFEST_FILE}: the stage that writes it has not finished; re-run it"
            )
        shards = json.loads(manifest)["shards"]
        if self.is_local:
            bad = corrupt_shards(self.path, shards) if verify else []
            if bad:
                raise CorruptShards(f"{self.base}: {bad[:3]} are missing or differ from their checksums", bad)
            return self.path
        directory = self.node_dir

        def complete() -> bool:
            return (directory / MANIFEST_FILE).is_file() and (directory / MANIFEST_FILE).read_bytes() == manifest

        if complete():
            return directory
        with exclusive(cache_root(), f"copy-{directory.name}", f"Waiting for another process fetching {self.base}"):
            if complete():  # another process on this node fetched it meanwhile
                return directory
            (directory / MANIFEST_FILE).unlink(missing_ok=True)
            missing = corrupt_shards(directory, shards)
            for name in missing:
                self._download(name)
            bad = corrupt_shards(directory, [s for s in shards if s["file"] in missing])
            if bad:
                raise CorruptShards(
                    f"{self.base}: {bad[:3]} differ from their checksums in its {MANIFEST_FILE}; "
                    f"delete {self.base} and re-run to build it again",
                    bad,
                )
            with atomic_path(directory / MANIFEST_FILE) as tmp:
                tmp.write_bytes(manifest)
        log.info(
            "Copied %s to this node's %s (%d of %d shards downloaded)", self.base, directory, len(missing), len(shards)
        )
        return directory

    def ray_storage(self) -> dict[str, Any]:
        """Ray Train's ``RunConfig`` storage arguments for a run named like this folder, inside its parent (a remote
        one through its pyarrow filesystem, which Ray Train writes to itself)."""
        if self.is_local:
            return {"storage_path": str(self.path.parent.resolve())}
        filesystem, path = self.filesystem()
        return {"storage_path": path.rsplit("/", 1)[0], "storage_filesystem": filesystem}
