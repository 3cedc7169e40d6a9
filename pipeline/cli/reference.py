"""The command reference, written from the ``drlim`` parser itself (``main.build_parser``).

Each command's section holds its usage line, its description and a table of its arguments (name, default, help),
read from argparse, so a command or an option added to the parser appears on the documentation site's command
page (``docs/hooks.py``) without anyone editing Markdown.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from pipeline.cli.main import build_parser

WIDTH = 100  # usage lines are wrapped at this width, whatever the terminal


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """(command words, parser, one-line help) for ``parser``'s subcommands and theirs, in the order --help lists
    them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name, "")
                yield from commands(sub, (*path, name))


def formatter_of(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    """The parser's own help formatter, at a fixed width (argparse's formatter classes all take ``width``)."""
    make: Any = parser.formatter_class
    made: argparse.HelpFormatter = make(prog=parser.prog, width=WIDTH)
    return made


def usage(parser: argparse.ArgumentParser) -> str:
    formatter = formatter_of(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = formatter_of(parser)
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            metavar = "" if action.nargs == 0 else " " + formatter._format_args(action, action.dest.upper())
            name = ", ".join(f"`{option}{metavar}`" for option in action.option_strings)
        else:
            name = f"`{formatter._metavar_formatter(action, action.dest)(1)[0]}`"
        if action.required and action.option_strings:
            name += " (required)"
        default = action.default
        unset = default is None or default is argparse.SUPPRESS or isinstance(default, bool) or default == []
        shown = "" if unset or action.nargs == 0 else f"`{default}`"
        help_text = formatter._expand_help(action) if action.help else ""
        rows.append(f"| {name} | {shown} | {_cell(help_text)} |")
    return rows


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(words: tuple[str, ...], parser: argparse.ArgumentParser, summary: str) -> list[str]:
    level = "#" * (1 + max(1, len(words)))  # drlim and its commands: level 2; a command's actions: level 3
    out = [f"{level} `{' '.join(('drlim', *words))}`", ""]
    if summary:
        out += [f"{summary[0].upper()}{summary[1:]}.", ""]
    out += ["<!-- not-run: a usage synopsis -->", "```text", usage(parser), "```", ""]
    if parser.description and parser.description.strip() != summary:
        description = parser.description.strip()
        if parser.formatter_class is argparse.RawDescriptionHelpFormatter:
            out += ["<!-- not-run: the command's own description, as --help prints it -->"]
            out += ["```text", description, "```", ""]
        else:
            out += [" ".join(description.split()), ""]
    rows = argument_rows(parser)
    if rows:
        out += ["| argument | default | meaning |", "|---|---|---|", *rows, ""]
    if parser.epilog:
        out += ["<!-- not-run: --help's closing lines -->", "```text", parser.epilog.strip(), "```", ""]
    return out


def command_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The command reference in Markdown: the ``drlim`` command's options, then one section per command."""
    parser = parser or build_parser()
    out = _section((), parser, "")
    for words, sub, summary in commands(parser):
        out += _section(words, sub, summary)
    return "\n".join(out).rstrip() + "\n"
