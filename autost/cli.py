"""The ``autost`` command line. User errors print one line on stderr and exit with status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from autost.errors import AutostError


def _cmd_models(args: argparse.Namespace) -> int:
    import autost

    names = autost.list_models(args.pattern)
    if not names:
        raise AutostError(f"no preset matches {args.pattern!r}; try 'autost models'")
    rows = []
    for name in names:
        cfg = autost.models.resolve_config(name)
        rows.append(
            {
                "name": name,
                "params": autost.count_params(cfg),
                "timesteps": cfg.timesteps,
                "image_size": cfg.image_size,
                "in_channels": cfg.in_channels,
                "num_classes": cfg.num_classes,
                "attention": ",".join(sorted(set(cfg.attention))),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'model':<30} {'params':>12} {'T':>3} {'input':>11} {'classes':>7}  attention"
    print(header)
    print("-" * len(header))
    for row in rows:
        shape = f"{row['in_channels']}x{row['image_size']}x{row['image_size']}"
        print(
            f"{row['name']:<30} {row['params'] / 1e6:>11.2f}M {row['timesteps']:>3} "
            f"{shape:>11} {row['num_classes']:>7}  {row['attention']}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="autost",
        description="Training-free architecture search for spiking transformers.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    models = sub.add_parser(
        "models",
        help="list the model presets with their parameter counts",
        description="List the registered presets (<family>-<depth>-<dim>-<dataset>) with their "
        "analytic parameter counts, timesteps and input shapes.",
    )
    models.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'sdt-*'")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autost`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from autost import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code: int = args.func(args)
        return code
    except AutostError as exc:
        print(f"autost: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autost: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
