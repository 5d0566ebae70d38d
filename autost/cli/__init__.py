"""The ``autost`` command line: the inspection and search commands (``commands``) and the
training ones, ``train``, ``tune`` and ``run`` (``train``)."""

from autost.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
