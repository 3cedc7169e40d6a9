"""The project's modules form layers, each importing only its own or lower ones, with no import cycle:

    foundation (errors, lazy) < config < infrastructure < stages (and encoders) < orchestration (and the
    estimator) < commands

Checked from the source: every import statement of every module, at module level or inside a function (imports
for type checkers only, under ``if TYPE_CHECKING:``, run nowhere and are left out)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

LAYERS = [
    ("foundation", ("pipeline/__init__.py", "pipeline/errors.py", "pipeline/lazy.py")),
    ("config", ("pipeline/config/",)),
    ("infrastructure", ("pipeline/infrastructure/",)),
    (
        "stages",
        (
            "pipeline/data/",
            "pipeline/pairs/",
            "pipeline/train/",
            "pipeline/evaluate/",
            "pipeline/embed/",
            "pipeline/explore/",
            "encoders/",
        ),
    ),
    ("orchestration", ("pipeline/orchestration/", "pipeline/estimator/")),
    ("commands", ("pipeline/cli/", "jobs/")),
]


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("pipeline", "encoders", "jobs"):
        for path in (REPO / top).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _layer(path: Path) -> int:
    relative = path.relative_to(REPO).as_posix()
    for rank, (_, prefixes) in enumerate(LAYERS):
        if relative.startswith(prefixes):
            return rank
    raise AssertionError(f"{relative} belongs to no layer; add it to LAYERS")


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    return skipped


def imports(name: str) -> set[str]:
    """The project's modules that module ``name`` imports (``from a import b`` is module a.b when there is one)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in MODULES and target != name}
    return found


def test_every_module_imports_only_its_own_layer_or_lower_ones():
    wrong = []
    for name, path in MODULES.items():
        for imported in imports(name):
            if _layer(MODULES[imported]) > _layer(path):
                wrong.append(
                    f"{name} ({LAYERS[_layer(path)][0]}) imports {imported} ({LAYERS[_layer(MODULES[imported])][0]})"
                )
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {name: imports(name) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for imported in sorted(graph[name]):
            if state.get(imported) == 1:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)
