"""The documentation's code, run as a reader runs it: every page of the site in the order of its navigation, then
the README, each runnable block (``bash``, ``python``, ``yaml``; see docs/contributing.md) in order, in one folder
laid out like a checkout with the team's MNIST at ``../shared/data``. The guides' commands run as written; where a
page runs a shortened job, the page says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import mnist_root
from tests.docs.blocks import README, page_blocks, page_name, run_blocks, sandbox, site_pages

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

PAGES = [*site_pages(), README]


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The reader's folder and environment, shared by the pages in order (a page may use what an earlier one
    made, as the getting-started pages do)."""
    root = mnist_root()
    assert root is not None
    return sandbox(tmp_path_factory.mktemp("reader"), root)


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_the_page_runs_as_written(page, reader):
    folder, env = reader
    run_blocks(page_blocks(page), folder, env)
