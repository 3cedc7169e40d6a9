"""The command reference is generated from the drlim parser: every command and argument is on it, and one added
to the parser appears on the site's page without editing Markdown."""

from __future__ import annotations

import argparse

from pipeline.cli import reference as ref
from pipeline.cli.main import build_parser
from tests.docs.blocks import DOCS, hooks


def test_every_command_and_every_argument_is_on_the_page():
    parser = build_parser()
    page = hooks().expand((DOCS / "reference" / "commands.md").read_text(), "reference/commands.md")
    found = list(ref.commands(parser))
    assert {" ".join(words) for words, _, _ in found} >= {
        "run",
        "pairs",
        "validate",
        "tune",
        "submit",
        "status",
        "logs",
        "stop",
        "embed",
        "models",
        "models promote",
        "report",
    }
    for words, sub, _ in found:
        heading = f"`{' '.join(('drlim', *words))}`"
        assert f"## {heading}\n" in page or f"### {heading}\n" in page, heading
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            names = action.option_strings or [action.metavar or action.dest]
            assert any(f"`{name}" in page for name in names), (words, names)


def test_defaults_and_help_come_from_the_parser():
    text = ref.command_reference()
    assert "| `--metric METRIC` | `val/trustworthiness_5` | validation metric that picks the best trial" in text
    assert "| `--concurrent CONCURRENT` | `1` |" in text
    assert "| `--workdir WORKDIR` (required) |" in text  # submit's
    assert "drlim embed [-h] --model MODEL --input PATH" in text


def test_a_new_option_appears_on_the_site_without_editing_markdown(monkeypatch):
    def parser_with_an_option() -> argparse.ArgumentParser:
        parser = build_parser()
        [run] = [sub for words, sub, _ in ref.commands(parser) if words == ("run",)]
        run.add_argument("--dry-run", action="store_true", help="print the stages without running them")
        return parser

    page = (DOCS / "reference" / "commands.md").read_text()
    assert "--dry-run" not in hooks().expand(page, "reference/commands.md")
    monkeypatch.setattr(ref, "build_parser", parser_with_an_option)
    assert "| `--dry-run` |  | print the stages without running them |" in hooks().expand(page, "reference/commands.md")
