"""README claims that drift when code moves: the layout lists every module, the key table every job field."""

import re

from pipeline.config import JobConfig
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:] if end < 0 else README[start:end]


def test_the_layout_lists_exactly_the_modules_of_each_package():
    block = _section("Layout").split("```")[1]
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
            f"{folder}: README lists {sorted(names - present)} that do not exist and "
            f"leaves out {sorted(present - names)}"
        )
    packages = {
        p.parent.relative_to(REPO).as_posix() + "/"
        for p in REPO.glob("*/**/__init__.py")
        if p.parts[len(REPO.parts)] in ("pipeline", "encoders")
    }
    assert packages <= set(listed), f"packages missing from the layout: {sorted(packages - set(listed))}"


def test_the_job_file_table_names_every_field():
    table = _section("The job file")
    named = set()
    for cell in re.findall(r"^\| (.*?) \|", table, re.M):
        prefix = None
        for key in re.findall(r"`([\w.]+)`", cell):
            if "." in key:  # `train.lr`, then `momentum` in the same cell means train.momentum
                prefix = key.rsplit(".", 1)[0]
                named.add(key)
            else:
                named.add(f"{prefix}.{key}" if prefix else key)
    missing = sorted(set(JobConfig().flat()) - named)
    assert not missing, f"README's job-file table lacks {missing}"
