"""The rule for code on the documentation's pages (docs/contributing.md): every fenced block runs in a test or is
marked ``<!-- not-run: REASON -->``; and the runner of tests/integration/test_docs_pages.py catches a broken block."""

from __future__ import annotations

import re

import markdown
import pytest

from tests.docs.blocks import (
    DOCS,
    README,
    BlockFailed,
    blocks,
    hooks,
    page_blocks,
    page_name,
    rule_broken,
    run_blocks,
    site_pages,
)

PAGES = [*sorted(DOCS.rglob("*.md")), README]


def test_every_page_of_docs_is_on_the_site():
    assert set(site_pages()) == set(DOCS.rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_block_runs_or_says_why_not(page):
    found = page_blocks(page) + page_blocks(page, expanded=True)  # as written, and with generated text in place
    broken = [problem for block in found if (problem := rule_broken(block))]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_no_page_hides_an_indented_code_block_from_the_rule(page):
    """The rule reads fenced blocks; Markdown also makes a code block of text indented by four spaces. Rendered
    with the site's extensions, a page must hold exactly as many code blocks as it has fences."""
    text = page.read_text(encoding="utf-8")
    extensions = ["admonition", "attr_list", "md_in_html", "tables", "pymdownx.superfences"]
    html = markdown.markdown(text, extensions=extensions)
    assert len(re.findall(r"<pre\b", html)) == len(hooks().fences(text)), (
        f"{page_name(page)}: an indented code block; fence it and mark it (docs/contributing.md)"
    )


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_yaml_block_is_a_valid_job(page, tmp_path):
    jobs = [b for b in page_blocks(page) if b.lang == "yaml" and b.not_run is None]
    run_blocks(jobs, tmp_path, {})


BROKEN_PAGE = """\
# A page

```bash
echo made > made.txt
```

```python
from pathlib import Path
assert Path("made.txt").read_text() == "made\\n"
```

```yaml title="job.yaml"
train: {epochs: 2}
```

<!-- not-run: shown, not run -->
```bash
exit 3
```

{broken}
"""

BROKEN = {
    "bash": "```bash\ntest -f made.txt\nfalse\n```",
    "python": "```python\nraise SystemExit('this block is broken')\n```",
    "yaml": "```yaml\ntrain: {epoch: 2}\n```",
}


@pytest.mark.parametrize("lang", sorted(BROKEN))
def test_a_broken_block_fails_the_run_and_is_named(lang, tmp_path):
    text = BROKEN_PAGE.replace("{broken}", BROKEN[lang])
    found = blocks(text, "docs/example.md")
    env = {"PATH": "/usr/bin:/bin"}
    with pytest.raises(BlockFailed) as failed:
        run_blocks(found, tmp_path, env)
    line = BROKEN_PAGE.splitlines().index("{broken}") + 1
    assert failed.value.args[0].startswith(f"docs/example.md:{line}: the {lang} block")
    assert (tmp_path / "made.txt").read_text() == "made\n" and (tmp_path / "job.yaml").is_file()  # those before ran


def test_a_page_of_working_blocks_runs_them_all_and_skips_the_marked_one(tmp_path):
    found = blocks(BROKEN_PAGE.replace("{broken}", ""), "docs/example.md")
    assert run_blocks(found, tmp_path, {"PATH": "/usr/bin:/bin"}) == 3
    assert [b.not_run for b in found] == [None, None, None, "shown, not run"]


def test_a_block_neither_runnable_nor_marked_breaks_the_rule():
    found = blocks("```text\nout\n```\n\n<!-- not-run: -->\n```bash\nx\n```\n\n```\nplain\n```\n", "README.md")
    problems = [rule_broken(b) for b in found]
    assert problems[0] is not None and problems[0].startswith("README.md:1: a ```text block")
    assert problems[1] is not None and "gives no reason" in problems[1]
    assert problems[2] is not None and "(no language)" in problems[2]


def test_included_files_are_marked_by_the_include_and_their_links_repointed():
    text = hooks().expand("<!-- include: infra/README.md (not-run: clusters) -->\n", "reference/deployment.md")
    found = blocks(text, "docs/reference/deployment.md")
    assert len(found) > 5 and all(b.not_run == "clusters" for b in found)
    text = hooks().expand("<!-- include: BENCHMARKS.md -->\n", "benchmarks.md")
    assert "](docs/images/" not in text and "](images/quality_per_time.png)" in text
