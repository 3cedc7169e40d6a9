"""Local filesystem helpers: atomic files and folders, checksums, content hashes, locks, room checks.

Every stage writes through these (directly, or through ``location`` and ``tables``) so that an interrupted run
never leaves a file that looks finished, and a full disk is one error that names the filesystem and what was being
written (``NoSpaceError``), with nothing of the unfinished output left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import is_no_space, no_space

log = logging.getLogger(__name__)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def content_hash(obj: Any) -> str:
    """A stable short hash of a JSON-serialisable object (dict keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def no_space_as_error(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn a full filesystem under ``path`` met in the block into the one-line ``NoSpaceError``."""
    try:
        yield
    except OSError as exc:
        if is_no_space(exc):
            raise no_space(path, what) from None
        raise


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, what: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds.

    A full disk while writing becomes ``NoSpaceError`` naming ``what`` (default: ``final``)."""
    final = Path(final)
    with no_space_as_error(final, what or str(final)):
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            # mkstemp creates 0600 files; finished outputs get the usual permissions (others may read them).
            os.chmod(tmp_path, 0o666 & ~_umask())
            os.replace(tmp_path, final)
        finally:
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, what: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; it replaces ``final`` only if the block succeeds.

    A full disk while writing becomes ``NoSpaceError`` naming ``what`` (default: ``final``)."""
    final = Path(final)
    with no_space_as_error(final, what or str(final)):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def exclusive(workdir: str | os.PathLike, name: str, waiting: str) -> Iterator[None]:
    """Hold the lock ``name`` of ``workdir`` (a file in its ``.locks/``) for the block.

    Runs started together in one workdir take turns at building the same output; the later one then finds it
    finished and reuses it. ``waiting`` is logged when another process holds the lock. The OS releases the
    lock when its holder ends, killed or not, so a crashed run never blocks the next one.
    """
    locks = Path(workdir) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def reserve(path: str | os.PathLike, what: str) -> None:
    """Give every byte of ``path`` (a file made sparse, such as a new memory map) its disk blocks now: a full
    disk is then ``NoSpaceError`` here, not a crash (SIGBUS) when a page of the map is first written."""
    size = os.path.getsize(path)
    free = shutil.disk_usage(Path(path).parent).free  # before: a failed allocation may keep what it took
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError as exc:
            if is_no_space(exc):
                raise no_space(path, what, size, free) from None
            raise


def check_room(directory: str | os.PathLike, written_bytes: int, written_rows: int, total_rows: int, what: str) -> None:
    """Once the first ``written_rows`` of ``total_rows`` took ``written_bytes`` under ``directory``, refuse to
    write the rest (``NoSpaceError``) when its filesystem cannot hold as much again pro rata: a stage that cannot
    fit fails after its first shard, not at its last."""
    if written_rows == 0:  # nothing to go by
        return
    needed = written_bytes * (total_rows - written_rows) // written_rows
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise no_space(directory, what, needed, free)


def corrupt_shards(directory: Path, shards: list[dict]) -> list[str]:
    """The manifest entries' files under ``directory`` that are missing or differ from their sha256."""
    return [
        shard["file"]
        for shard in shards
        if not (directory / shard["file"]).is_file() or sha256_file(directory / shard["file"]) != shard["sha256"]
    ]


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())
