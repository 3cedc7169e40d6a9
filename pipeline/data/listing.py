"""Where a job's own samples are: a file, a folder of part files or a glob, on any filesystem pyarrow reads.

``data.path`` / ``data.test_path`` may be

- a local path: absolute, or relative to the data root (``paths.resolve_data_path``);
- a URI: ``s3://bucket/prefix``, ``gs://...``, ``hdfs://...``, ``abfs://...`` (pyarrow's own URI options, e.g.
  ``?endpoint_override=...``, work too). Credentials come the usual way (``AWS_ACCESS_KEY_ID``, ...) or from
  ``data.storage_options``, the keyword arguments of that scheme's pyarrow filesystem;

naming one file, a folder (every ``.parquet`` / ``.npy`` / ``.npz`` below it, in path order; names starting with
``_`` or ``.`` such as ``_SUCCESS`` are skipped), or a glob (``*``, ``?``, ``[...]``; ``*`` does not cross ``/``).

Listing reads no data: each file comes with its size and modification time, which identify the source's
content for the sample store's key, so a finished store is found again without reading a byte.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from pipeline.config.paths import resolve_data_path
from pipeline.errors import DataError
from pipeline.infrastructure.location import is_uri

SUFFIXES = (".parquet", ".npy", ".npz")
GLOB_CHARS = "*?["

# The pyarrow filesystem for each URI scheme, for data.storage_options.
FILESYSTEMS = {
    "s3": "S3FileSystem",
    "gs": "GcsFileSystem",
    "gcs": "GcsFileSystem",
    "hdfs": "HadoopFileSystem",
    "abfs": "AzureFileSystem",
    "abfss": "AzureFileSystem",
    "file": "LocalFileSystem",
}


@dataclass(frozen=True)
class SourceFile:
    """One file of a source: ``path`` inside ``filesystem``; ``name`` is how messages name it (URI or path)."""

    filesystem: pafs.FileSystem
    path: str
    name: str
    size: int
    mtime_ns: int | None

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.path)[1]


def _filesystem(value: str, root: Path, storage_options: dict[str, Any]) -> tuple[pafs.FileSystem, str, str]:
    """``(filesystem, path inside it, prefix that turns a path back into what the user wrote)``."""
    if not is_uri(value):
        return pafs.LocalFileSystem(), str(resolve_data_path(value, root)), ""
    scheme, rest = value.split("://", 1)
    try:
        if storage_options:
            if scheme not in FILESYSTEMS or not hasattr(pafs, FILESYSTEMS[scheme]):
                raise DataError(
                    f"data.storage_options: no pyarrow filesystem for {scheme}:// here; the schemes are "
                    f"{sorted(s for s, c in FILESYSTEMS.items() if hasattr(pafs, c))}"
                )
            filesystem = getattr(pafs, FILESYSTEMS[scheme])(**storage_options)
            return filesystem, rest.split("?", 1)[0], f"{scheme}://"
        filesystem, path = pafs.FileSystem.from_uri(value)
        return filesystem, path, f"{scheme}://"
    except TypeError as exc:
        raise DataError(
            f"data.storage_options: {exc}; use the keyword arguments of pyarrow.fs.{FILESYSTEMS.get(scheme)}"
        ) from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{value}: cannot open this location ({exc.__class__.__name__}: {exc}); check the URI, "
            f"the credentials and data.storage_options"
        ) from None


def list_source(
    value: str, key: str, root: Path, storage_options: dict[str, Any] | None = None, fix: str | None = None
) -> list[SourceFile]:
    """The files ``value`` (the job's ``key``, e.g. ``data.path``) names, sorted by path; reads no data. ``fix``:
    what a missing path's message advises (default: the job's keys)."""
    filesystem, path, prefix = _filesystem(value, root, storage_options or {})
    relative = not prefix and not Path(value).expanduser().is_absolute()
    where = f" (relative paths are read from the data root {root})" if relative and fix is None else ""
    fix = fix or (
        f"set {key} to your file, folder or glob, or point --data-root (or data.root, DRLIM_DATA_ROOT) "
        f"at the folder that holds it"
    )
    try:
        if any(c in path for c in GLOB_CHARS):
            parts = path.split("/")
            fixed = next(i for i, part in enumerate(parts) if any(c in part for c in GLOB_CHARS))
            base = "/".join(parts[:fixed]) or "/"
            infos = [i for i in _walk(filesystem, base) if _glob_match(i.path, path)]
        else:
            info = filesystem.get_file_info(path)
            if info.type == pafs.FileType.NotFound:
                raise DataError(f"{key}: {prefix}{path} does not exist{where}; {fix}")
            infos = [info] if info.type == pafs.FileType.File else _walk(filesystem, path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{key}: cannot list {prefix}{path} ({exc.__class__.__name__}: {exc}); check the path, the "
            f"credentials and data.storage_options"
        ) from None
    if len(infos) == 1 and infos[0].path.rstrip("/") == path.rstrip("/"):  # a file named directly: any suffix
        files = infos
    else:
        files = [i for i in infos if i.extension and f".{i.extension}" in SUFFIXES]
        if not files:
            raise DataError(
                f"{key}: no {'/'.join(SUFFIXES)} files in {prefix}{path}{where}; point {key} at your samples"
            )
    return [SourceFile(filesystem, i.path, f"{prefix}{i.path}", int(i.size or 0), i.mtime_ns) for i in files]


def _walk(filesystem: pafs.FileSystem, base: str) -> list[pafs.FileInfo]:
    """Every file below ``base`` in path order, less hidden and bookkeeping files (``.x``, ``_SUCCESS``)."""
    infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    keep = [
        i
        for i in infos
        if i.type == pafs.FileType.File
        and not any(part.startswith((".", "_")) for part in posixpath.relpath(i.path, base).split("/"))
    ]
    return sorted(keep, key=lambda i: i.path)


def _glob_match(path: str, pattern: str) -> bool:
    """Shell-style matching part by part, so ``*`` stays within one folder level."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def fingerprint(files: list[SourceFile]) -> list[tuple[str, int, int | None]]:
    """What identifies the files' content without reading it: name, size and modification time of each."""
    return [(f.name, f.size, f.mtime_ns) for f in files]


def local_file(path: Path) -> SourceFile:
    """A local file as a ``SourceFile`` (for tools and tests that name one file directly)."""
    info = pafs.LocalFileSystem().get_file_info(str(path))
    if info.type != pafs.FileType.File:
        raise DataError(f"data file {path} does not exist; set data.path (and data.test_path) to your files")
    return SourceFile(pafs.LocalFileSystem(), str(path), str(path), int(info.size), info.mtime_ns)
