"""The ``drlim`` command: one module per group of subcommands, each registering its parser and handler."""

from pipeline.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
