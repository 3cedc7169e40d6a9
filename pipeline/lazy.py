"""Lazy re-exports for a package's ``__init__.py`` (PEP 562).

A package names what it re-exports and from which module; nothing is imported until a name is first used.
So importing one small module of a package (the catalogs the job configuration reads, say) never pulls in
Ray, FAISS or torch through the package's ``__init__.py``. An exported name must not also be the name of one
of the package's modules (a test checks this): importing that module would shadow the export.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose name ``n`` is ``exports[n]``'s attribute ``n``."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
