"""The code blocks of the documentation: found on each page, judged by the rule of docs/contributing.md, and run.

The rule: every fenced code block either runs in a test or is marked, on the line before it, with
``<!-- not-run: REASON -->``. A block that runs is ``bash`` (run with ``bash -euo pipefail``), ``python`` (run on its
own by this interpreter) or ``yaml`` (loaded as a job file, or part of one, as ``drlim validate`` loads it); a
block with ``title="NAME"`` is also saved as NAME first. The pages run in the order of the site's navigation, in
one folder laid out like a checkout (``jobs/``, and MNIST at ``../shared/data``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import yaml

from tests.conftest import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
RUNNABLE = ("bash", "python", "yaml")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:(.*?)-->\s*$")
_INFO = re.compile(r"^\s*(?:`{3,}|~{3,})\s*([\w+-]*)(.*)$")
_TITLE = re.compile(r"""title=["']([^"']+)["']""")


class BlockFailed(AssertionError):
    """A runnable block that did not run: its page and line, and what it printed."""


@cache
def hooks() -> ModuleType:
    """``docs/hooks.py``, the module the site's build uses to expand a page."""
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Block:
    page: str  # as the repository names it: docs/how-to/own-data.md, README.md
    line: int  # 1-based line of the opening fence
    lang: str
    title: str | None
    code: str
    not_run: str | None  # the reason given by the marker; None: the block runs

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(text: str, page: str) -> list[Block]:
    """Every fenced code block of ``text`` (the page ``page``), with its marker if the line before it holds one."""
    lines = text.splitlines()
    found = []
    for start, end in hooks().fences(text):
        info = _INFO.match(lines[start])
        assert info is not None
        title = _TITLE.search(info.group(2))
        previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = _NOT_RUN.match(previous)
        found.append(
            Block(
                page=page,
                line=start + 1,
                lang=info.group(1),
                title=title.group(1) if title else None,
                code=textwrap.dedent("\n".join(lines[start + 1 : end])) + "\n",
                not_run=marker.group(1).strip() if marker else None,
            )
        )
    return found


def site_pages() -> list[Path]:
    """The site's pages in the order of its navigation (mkdocs.yml)."""

    def walk(entries: list) -> list[str]:
        out = []
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            out += walk(value) if isinstance(value, list) else [value]
        return out

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    return [DOCS / page for page in walk(config["nav"])]


def page_name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def page_blocks(path: Path, expanded: bool = False) -> list[Block]:
    """The blocks of a page as written (``expanded``: as published, generated and included text in place)."""
    text = path.read_text(encoding="utf-8")
    if expanded and path.is_relative_to(DOCS):
        text = hooks().expand(text, path.relative_to(DOCS).as_posix())
    return blocks(text, page_name(path))


def rule_broken(block: Block) -> str | None:
    """What is wrong with ``block`` by the rule, or None."""
    if block.not_run is not None:
        return None if block.not_run else f"{block.where}: <!-- not-run: --> gives no reason; say why it is not run"
    if block.lang not in RUNNABLE:
        return (
            f"{block.where}: a ```{block.lang or '(no language)'} block is neither runnable ({', '.join(RUNNABLE)}) "
            f"nor marked <!-- not-run: REASON --> on the line before it"
        )
    return None


def sandbox(root: Path, mnist: Path) -> tuple[Path, dict[str, str]]:
    """A folder laid out like a checkout, ``root/drlim`` (its ``jobs/``, and MNIST at ``../shared/data``), and the
    environment a reader has there: no cluster, tracking server or data root of the caller's, and the project's
    commands first on PATH."""
    folder = root / "drlim"
    folder.mkdir()
    (folder / "jobs").symlink_to(REPO / "jobs")
    (root / "shared").mkdir()
    (root / "shared" / "data").symlink_to(mnist)
    drop = ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "DRLIM_DATA_ROOT", "RAY_API_SERVER_ADDRESS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return folder, env


def run_block(block: Block, folder: Path, env: dict[str, str], timeout: float = 900) -> None:
    """Run one block in ``folder``; ``BlockFailed`` names it when it fails."""
    if block.title:
        (folder / block.title).write_text(block.code, encoding="utf-8")
    if block.lang == "yaml":
        check_job(block, folder)
    elif block.lang in ("bash", "python"):
        command = ["bash", "-euo", "pipefail", "-c", block.code] if block.lang == "bash" else [sys.executable, "-"]
        run = _run(command, block.code if block.lang == "python" else None, folder, env, timeout)
        if run[0] != 0:
            raise BlockFailed(f"{block.where}: the {block.lang} block exited with {run[0]}:\n{block.code}\n{run[1]}")
    else:
        raise BlockFailed(rule_broken(block) or f"{block.where}: cannot run a {block.lang} block")


def _run(command: list[str], stdin: str | None, folder: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    from tests.integration.cli_runs import kill_session

    proc = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # what it starts (a local Ray) is swept up with it
    )
    try:
        out, _ = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        out = f"(no end within {timeout} s)"
    finally:
        kill_session(proc.pid)
    return (proc.returncode if proc.returncode is not None else -9), out[-6000:]


def check_job(block: Block, folder: Path) -> None:
    """A ``yaml`` block is a job file, or a part of one: valid as ``load_job`` reads it."""
    from pipeline.config import load_job
    from pipeline.errors import ConfigError

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=folder, delete=False) as handle:
        handle.write(block.code)
    try:
        load_job(handle.name)
    except ConfigError as exc:
        raise BlockFailed(f"{block.where}: the yaml block is not a valid job:\n{exc}") from None
    finally:
        os.unlink(handle.name)


def run_blocks(found: list[Block], folder: Path, env: dict[str, str], timeout: float = 900) -> int:
    """Run every runnable block of ``found`` in order; the number run."""
    ran = 0
    for block in found:
        if block.not_run is None:
            run_block(block, folder, env, timeout)
            ran += 1
    return ran
