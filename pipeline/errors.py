"""User-facing errors: each names what is wrong and how to fix it.

The CLI prints these as one message (no traceback); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class DrlimError(Exception):
    """An error caused by the user's input or environment, with a message that says how to fix it."""


class ConfigError(DrlimError):
    """A job file or override is invalid."""


class DataError(DrlimError):
    """Input data is missing, corrupt or inconsistent with the job."""


class StageError(DrlimError):
    """A stage found outputs of an earlier stage it cannot trust."""


class CorruptShards(StageError):
    """Shards of a finished output that are missing or differ from their checksums (``files``)."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


class TrackingError(DrlimError):
    """The MLflow tracking server or registry cannot be used."""


class NoSpaceError(DrlimError):
    """A filesystem the run writes to is full."""


def is_no_space(exc: BaseException) -> bool:
    """A full filesystem or quota, however a library reports it (pyarrow and Ray keep only the message, SQLite
    says "database or disk is full")."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(exc) for text in ("No space left on device", "database or disk is full"))


def is_permanent(exc: BaseException) -> bool:
    """An error that running the same step again cannot cure: bad input or settings, or a full disk."""
    return isinstance(exc, DrlimError) or is_no_space(exc)


def mount_point(path: str | os.PathLike) -> Path:
    """The mount point of the filesystem that holds ``path`` (or would hold it: its nearest existing folder)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    device = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def no_space(
    path: str | os.PathLike, what: str, needed_bytes: int | None = None, free_bytes: int | None = None
) -> NoSpaceError:
    """The one-line error for a full filesystem under ``path`` while writing ``what`` (``free_bytes``: measured
    before the attempt, default now)."""
    fs = mount_point(path)
    free = shutil.disk_usage(fs).free if free_bytes is None else free_bytes
    need = f"needs ~{_megabytes(max(needed_bytes - free, 0))} more, " if needed_bytes is not None else ""
    return NoSpaceError(
        f"no space left on {fs} while writing {what} ({need}{_megabytes(free)} free); free space or move "
        f"--workdir; finished stages are kept"
    )


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n < 10 * 2**20 else f"{n / 2**20:.0f} MB"


def first_line(exc: BaseException) -> str:
    """The first line of a library's exception message (without a trailing full stop), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else exc.__class__.__name__
