"""Where a job's data files are: absolute paths as given, relative ones under the data root (import-light).

The job configuration checks ``climbs_out`` when it is loaded; the data stage resolves paths with
``resolve_data_path``.
"""

from __future__ import annotations

import os
from pathlib import Path


def climbs_out(value: str) -> bool:
    """Whether a relative path leaves the folder it is resolved against (``../x``, ``a/../../x``)."""
    path = Path(os.path.expanduser(value))
    return not path.is_absolute() and Path(os.path.normpath(path)).parts[:1] == ("..",)


def resolve_data_path(value: str, root: Path) -> Path:
    """A job file's data path: absolute (``~`` expanded) as given, relative ones under the data root."""
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else Path(os.path.normpath(root / path))
