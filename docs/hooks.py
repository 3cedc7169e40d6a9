"""MkDocs hooks (``hooks:`` in mkdocs.yml): what a page holds that is not written by hand, filled in at build time.

A marker alone on a line of a page is replaced by

- ``<!-- generated: job-reference -->``: every job field, from the typed configuration
  (``pipeline/config/reference.py``);
- ``<!-- generated: command-reference -->``: every command and argument, from the parser
  (``pipeline/cli/reference.py``);
- ``<!-- include: PATH -->``: a file of the repository that lives outside ``docs/`` (``BENCHMARKS.md``), its relative
  links re-pointed from the file's folder to the page's; ``<!-- include: PATH (not-run: REASON) -->`` also marks
  every fenced code block of that file as not run, for REASON (see docs/contributing.md).

``expand`` is what the build and the tests (``tests/docs``) both use, so what is checked is what is published.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_GENERATED = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.M)
_INCLUDE = re.compile(r"^<!-- include: (\S+?)(?: \(not-run: (.+)\))? -->$", re.M)
_LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?(?:\s+\"[^\"]*\")?\))")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})", re.M)


def generated(name: str) -> str:
    if name == "job-reference":
        from pipeline.config.reference import job_reference

        return job_reference()
    if name == "command-reference":
        from pipeline.cli.reference import command_reference

        return command_reference()
    raise ValueError(f"<!-- generated: {name} -->: nothing of that name (job-reference, command-reference)")


def included(path: str, page: str, not_run: str | None) -> str:
    """The repository's file ``path`` as part of the page ``page`` (a path under docs/)."""
    source = (ROOT / path).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"docs/{page}: <!-- include: {path} -->: no such file in the repository")
    text = source.read_text(encoding="utf-8")
    page_dir = (DOCS / page).parent

    def repoint(match: re.Match[str]) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return match.group(0)  # a URL or an absolute link: as written
        resolved = (source.parent / target).resolve()
        if not resolved.is_relative_to(DOCS):
            return match.group(0)  # outside the site: the strict build names it
        return match.group(1) + Path(os.path.relpath(resolved, page_dir)).as_posix() + match.group(3)

    text = _LINK.sub(repoint, text)
    if not_run:
        text = mark_fences(text, not_run)
    return text


def fences(text: str) -> list[tuple[int, int]]:
    """(opening line, closing line) of every fenced code block of ``text``, 0-based; an unclosed block runs to the
    end, as Markdown reads it."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group(2)
        end = next(
            (j for j in range(i + 1, len(lines)) if re.fullmatch(rf"\s*{fence[0]}{{{len(fence)},}}\s*", lines[j])),
            len(lines),
        )
        found.append((i, end))
        i = end + 1
    return found


def mark_fences(text: str, reason: str) -> str:
    """Every fenced code block of ``text`` preceded by ``<!-- not-run: reason -->``."""
    lines = text.splitlines()
    for start, _ in reversed(fences(text)):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        lines.insert(start, f"{indent}<!-- not-run: {reason} -->")
    return "\n".join(lines) + "\n"


def expand(markdown: str, page: str) -> str:
    """``markdown`` of the page ``page`` (its path under docs/) with every marker replaced."""
    markdown = _GENERATED.sub(lambda m: generated(m.group(1)), markdown)
    return _INCLUDE.sub(lambda m: included(m.group(1), page, m.group(2)), markdown)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return expand(markdown, page.file.src_uri)
