"""The package layout page (docs/reference/layout.md) lists exactly the modules of each package."""

from __future__ import annotations

import re

from tests.conftest import REPO
from tests.docs.blocks import DOCS


def test_the_layout_lists_exactly_the_modules_of_each_package():
    block = (DOCS / "reference" / "layout.md").read_text().split("```")[1]
    listed: dict[str, set[str]] = {}
    folder = None
    for line in block.splitlines():
        head = re.match(r"^([\w/]+/)\s", line)
        if head:
            folder = head.group(1)
        if folder and folder.startswith(("pipeline", "encoders", "jobs")):
            listed.setdefault(folder, set()).update(re.findall(r"\b(\w+\.py)\b", line))
    for folder, names in listed.items():
        present = {p.name for p in (REPO / folder).glob("*.py") if p.name != "__init__.py"}
        assert names == present, (
            f"{folder}: the layout lists {sorted(names - present)} that do not exist and "
            f"leaves out {sorted(present - names)}"
        )
    packages = {
        p.parent.relative_to(REPO).as_posix() + "/"
        for p in REPO.glob("*/**/__init__.py")
        if p.parts[len(REPO.parts)] in ("pipeline", "encoders")
    }
    assert packages <= set(listed), f"packages missing from the layout: {sorted(packages - set(listed))}"
