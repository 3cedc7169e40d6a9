"""The README is the front door: short, its two commands exactly as they are, and its links lead somewhere."""

from __future__ import annotations

import re

from tests.conftest import REPO
from tests.docs.blocks import README, page_blocks

TEXT = README.read_text()
RUN = 'pip install -e ".[dev]" && drlim run jobs/mnist_4_9.yaml --data-root ../shared/data'
TEST = 'pip install -e ".[dev]" && make test'


def test_it_is_at_most_150_lines():
    assert len(TEXT.splitlines()) <= 150


def test_its_two_commands_are_the_install_and_run_and_the_test_command():
    commands = [b.code.strip() for b in page_blocks(README) if b.lang == "bash"]
    assert commands[:2] == [RUN, TEST]


def test_a_new_reader_finds_the_way_in_the_first_headings():
    headings = re.findall(r"^## (.+)$", TEXT, re.M)
    for wanted in (
        "Install and run",
        "Test",
        "Your own data",
        "From Python",
        "On a cluster",
        "The model registry",
        "Documentation",
    ):
        assert wanted in headings[:9], wanted
    assert headings.index("Install and run") == 0


def test_its_python_example_starts_with_the_estimator():
    first = next(b for b in page_blocks(README) if b.lang == "python")
    assert first.code.startswith("from pipeline import DrLIM\n") and "DrLIM().fit_transform(" in first.code


def test_every_relative_link_and_anchor_exists():
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", TEXT, re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", TEXT):
        if target.startswith("#"):
            assert target[1:] in anchors, target
        elif not re.match(r"^\w+://", target):
            assert (REPO / target.split("#")[0]).exists(), target
