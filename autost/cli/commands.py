"""The ``autost`` command line. User errors print one line on stderr and exit with status 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from autost.cli.train import add_dataset_args, add_run, add_train, add_tune
from autost.errors import AutostError


def _cmd_models(args: argparse.Namespace) -> int:
    import autost

    names = autost.list_models(args.pattern)
    if not names:
        raise AutostError(f"no preset matches {args.pattern!r}; try 'autost models'")
    rows: list[dict[str, Any]] = []
    for name in names:
        cfg = autost.model.network.resolve_config(name)
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
        if args.latency:  # measured here, one preset at a time (cached)
            measured = autost.measure_latency(cfg, device="cpu", batch=1)
            rows[-1]["latency_ms"] = measured.median_ms
            rows[-1]["latency_spread_ms"] = [measured.p10_ms, measured.p90_ms]
            where = f"{measured.device_name}, {measured.threads} thread(s), batch 1"
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'model':<30} {'params':>12} {'T':>3} {'input':>11} {'classes':>7}  attention"
    if args.latency:
        header = header.replace("  attention", f" {'latency ms':>11}  attention")
    print(header)
    print("-" * len(header))
    for row in rows:
        shape = f"{row['in_channels']}x{row['image_size']}x{row['image_size']}"
        latency = f" {row['latency_ms']:>11.1f}" if args.latency else ""
        print(
            f"{row['name']:<30} {row['params'] / 1e6:>11.2f}M {row['timesteps']:>3} "
            f"{shape:>11} {row['num_classes']:>7}{latency}  {row['attention']}"
        )
    if args.latency:
        print(f"latency: median of 10 forwards on this CPU ({where})")
    return 0


def _cmd_profile_device(args: argparse.Namespace) -> int:
    from autost.model.latency import check_device
    from autost.search.latency_table import profile_space
    from autost.search.space import SearchSpace

    check_device(args.device)
    out = Path(args.out)
    if out.is_dir():
        raise AutostError(f"--out {out} is a folder; name the table's JSON file")
    if not out.parent.is_dir():
        raise AutostError(f"--out {out}: folder {out.parent} does not exist")
    for name, value in (("--threads", args.threads), ("--batch", args.batch), ("--fit", args.fit)):
        if value is not None and value < 1:
            raise AutostError(f"{name} must be >= 1, got {value}")
    space = SearchSpace.load(args.space)  # profile_space refuses too many kinds before timing
    start = time.perf_counter()
    table = profile_space(
        space, args.device, args.threads, args.batch, fit=args.fit, progress=not args.quiet,
        on_demand=args.on_demand,
    )  # fmt: skip
    table.save(out)
    m = table.machine
    print(
        f"profiled {len(table.blocks)} block kinds of {space.name} on {m['device']} "
        f"({m['device_name']}, "
        f"{m['threads']} thread(s), batch {m['batch']}) in {time.perf_counter() - start:.1f} s; "
        f"constant {table.constant_ms:+.3f} ms (fitted on {len(table.fit)} candidates); "
        f"table: {out}"
    )
    return 0


def _cmd_spaces(args: argparse.Namespace) -> int:
    from autost.search.space import SearchSpace, list_spaces

    rows = []
    for name in list_spaces():
        space = SearchSpace.load(name)
        try:
            size = f"{space.size():.3g}"
        except AutostError:
            size = "continuous"
        rows.append({"name": name, "size": size, "description": space.description})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'space':<22} {'settings':>10}  description")
    for row in rows:
        print(f"{row['name']:<22} {row['size']:>10}  {row['description']}")
    return 0


def _cmd_proxies(args: argparse.Namespace) -> int:
    from autost.proxies import get_proxy, list_proxies
    from autost.search.evaluator import list_evaluators

    rows = []
    for name in list_proxies():
        proxy = get_proxy(name)
        rows.append(
            {
                "name": name,
                "sign": "+" if proxy.sign > 0 else "-",
                "data": "batch" if proxy.needs_data else "none",
                # the docstring's first paragraph: a summary may wrap mid-reference
                "description": " ".join((proxy.__doc__ or "").strip().split("\n\n")[0].split()),
            }
        )
    if args.json:
        print(json.dumps({"proxies": rows, "evaluators": list_evaluators()}, indent=2))
        return 0
    width = max(len("proxy"), *(len(row["name"]) for row in rows))
    print(f"{'proxy':<{width}} {'sign':>4} {'data':>6}  description")
    for row in rows:
        print(f"{row['name']:<{width}} {row['sign']:>4} {row['data']:>6}  {row['description']}")
    print(f"\nevaluator recipes: {', '.join(list_evaluators())}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from autost.data import parse_options
    from autost.search import EvolutionSettings, leaderboard_rows, search

    evolution = EvolutionSettings(
        population=args.population,
        parents=args.parents,
        mutations=args.mutations,
        crossovers=args.crossovers,
        generations=args.generations,
    )
    if args.resume and args.out is None:
        raise AutostError("--resume needs --out DIR, the run to continue")
    out = args.out or time.strftime("runs/search-%Y%m%d-%H%M%S")
    result = search(
        args.space,
        args.evaluator,
        strategy=args.strategy,
        budget=args.budget,
        constraints=args.constraint,
        seed=args.seed,
        dataset=args.dataset,
        out=out,
        resume=args.resume,
        workers=args.workers,
        address=args.address,
        storage=args.storage,
        study_name=args.study_name,
        evolution=evolution,
        progress=not args.quiet,
        root=args.root,
        dataset_options=parse_options(args.dataset_option),
    )
    rows = leaderboard_rows(result.leaderboard[: args.show])
    print(f"{result.summary()} -> {result.out}")
    # per-layer heads and MLP ratios tell apart rows that share size, depth and attention
    heads = max([len("heads"), *(len(row["num_heads"]) for row in rows)])
    mlp = max([len("mlp"), *(len(row["mlp_ratios"]) for row in rows)])
    # the raw values that order equal scores (the line under the table says how)
    ties = result.leaderboard[0].tie_break if result.leaderboard else ()
    tie_width = {name: max(len(name), 11) for name in ties}
    print(
        f"{'#':>3} {'score':>10}{''.join(f' {n:>{w}}' for n, w in tie_width.items())} "
        f"{'params':>9} {'MFLOPs':>9} {'T':>2} {'depth':>5} "
        f"{'dim':>4}  {'heads':<{heads}}  {'mlp':<{mlp}}  attention"
    )
    for row in rows:
        tie_values = "".join(f" {row[f'proxy_{n}']:>{w}.6g}" for n, w in tie_width.items())
        print(
            f"{row['rank']:>3} {row['score']:>10.4g}{tie_values} {row['params'] / 1e6:>8.2f}M "
            f"{row['flops'] / 1e6:>9.1f} {row['timesteps']:>2} {row['depth']:>5} "
            f"{row['embed_dim']:>4}  {row['num_heads']:<{heads}}  {row['mlp_ratios']:<{mlp}}  "
            f"{row['attention']}"
        )
    print(result.score_meaning)
    print(f"best config: {result.out / 'best.json'}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from autost.search import export

    for path in export(args.run, top=args.top, target=args.output):
        print(path)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from autost.bundle.hub import is_bundle, rewrite_bundle
    from autost.model.config import parse_overrides

    if is_bundle(args.source):
        for flag, given in (("--preset", args.preset is not None), ("--set", bool(args.set))):
            if given:
                raise AutostError(f"{args.source} is a bundle: {flag} is for official checkpoints")
        print(rewrite_bundle(args.source, args.output))
        return 0
    if args.preset is None:
        raise AutostError(
            f"{args.source} is not a bundle folder: converting an official checkpoint needs "
            "--preset NAME"
        )
    from autost.bundle.official import convert

    print(convert(args.source, args.preset, args.output, **parse_overrides(args.set)))
    return 0


DEFAULT = " (default: %(default)s)"  # argparse fills in the option's default


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``--help`` still prints the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
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
    models.add_argument(
        "--latency",
        action="store_true",
        help="also measure each preset's latency on this CPU (batch 1; cached)",
    )
    models.set_defaults(func=_cmd_models)

    spaces = sub.add_parser(
        "spaces",
        help="list the shipped search spaces",
        description="List the shipped search spaces with their sizes.",
    )
    spaces.add_argument("--json", action="store_true", help="print JSON instead of a table")
    spaces.set_defaults(func=_cmd_spaces)

    prof = sub.add_parser(
        "profile-device",
        help="time a space's blocks on this device: a latency table",
        description="Time every block kind a search space can produce on this device (and the "
        "base: input coding, stem and head), fit the constant on a few whole candidates, and "
        "write the latency table that predicts a candidate's latency without building it.",
    )
    prof.add_argument("--space", required=True, help="shipped space name or TOML path")
    prof.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    prof.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    prof.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
    prof.add_argument("--fit", type=int, default=5, help="whole candidates measured (default: 5)")
    prof.add_argument("--out", required=True, help="the table's JSON file")
    prof.add_argument(
        "--on-demand",
        action="store_true",
        help="for a space with too many block kinds: time only those of the fit candidates "
        "(the others are timed when a prediction first needs them)",
    )
    prof.add_argument("--quiet", action="store_true", help="no progress bar")
    prof.set_defaults(func=_cmd_profile_device)

    proxies = sub.add_parser(
        "proxies",
        help="list the training-free proxies and recipes",
        description="List the proxies (sign, data needs) and the shipped evaluator recipes.",
    )
    proxies.add_argument("--json", action="store_true", help="print JSON instead of a table")
    proxies.set_defaults(func=_cmd_proxies)

    s = sub.add_parser(
        "search",
        help="training-free search of a space",
        description="Rank candidates of a search space with training-free proxies. Writes "
        "DIR/study.db (Optuna), DIR/leaderboard.csv, DIR/best.json, DIR/run.json and, for a "
        "rank ensemble such as zero-cost, DIR/reference.json (the pool it ranks against).",
    )
    s.add_argument("--space", default="digits", help="shipped space name or TOML path" + DEFAULT)
    s.add_argument("--evaluator", default="zero-cost", help="recipe name or TOML path" + DEFAULT)
    s.add_argument(
        "--strategy",
        default="evolution",
        help="random | evolution | tpe | nsga2" + DEFAULT,
    )
    s.add_argument(
        "--budget",
        type=int,
        default=200,
        help="candidates to draw (evolution runs as many generations as that takes;"
        " default: %(default)s)",
    )
    s.add_argument(
        "--constraint",
        action="append",
        default=[],
        help="analytic constraint, e.g. 'params<=12e6' (repeatable)",
    )
    s.add_argument("--seed", type=int, default=0, help="seed of the strategy" + DEFAULT)
    add_dataset_args(s, None, "dataset for data proxies (recipe's default)")
    s.add_argument("--out", default=None, help="run directory (default: runs/search-<date>-<time>)")
    s.add_argument("--resume", action="store_true", help="continue the run in --out")
    s.add_argument("--workers", type=int, default=1, help="local scoring processes" + DEFAULT)
    s.add_argument("--address", default=None, help="Ray cluster address for scoring tasks")
    s.add_argument(
        "--storage",
        default=None,
        help="Optuna storage: a database URL or journal:PATH (default: sqlite DIR/study.db)",
    )
    s.add_argument(
        "--study-name",
        default="autost-search",
        help="study name in the storage (several runs can share one database)" + DEFAULT,
    )
    s.add_argument("--population", type=int, default=50, help="evolution: population" + DEFAULT)
    s.add_argument("--parents", type=int, default=10, help="evolution: parents" + DEFAULT)
    s.add_argument("--mutations", type=int, default=25, help="evolution: mutations" + DEFAULT)
    s.add_argument("--crossovers", type=int, default=25, help="evolution: crossovers" + DEFAULT)
    s.add_argument(
        "--generations",
        type=int,
        default=None,
        help="evolution: at most this many generations; it must leave room for --budget "
        "(default: as many as --budget needs)",
    )
    s.add_argument("--show", type=int, default=10, help="rows of the final table" + DEFAULT)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_search)

    e = sub.add_parser(
        "export",
        help="export the best configs of a search run",
        description="Write the top-K configs of a run; each file rebuilds "
        "with autost.create_model(path).",
    )
    e.add_argument("run", help="search run directory")
    e.add_argument("--top", type=int, default=1, help="how many configs, best first" + DEFAULT)
    e.add_argument(
        "-o",
        "--output",
        default=None,
        help="file (--top 1) or folder (--top > 1) (default: DIR/best-export.json or DIR/export)",
    )
    e.set_defaults(func=_cmd_export)

    c = sub.add_parser(
        "convert",
        help="write an official checkpoint or an older bundle as a Hub-ready bundle",
        description="Write a Hub-ready bundle folder (config.json, model.safetensors, README.md "
        "model card) that autost.create_model(folder) loads. SOURCE is an official "
        "Spikformer/SDT/QKFormer checkpoint (loaded weights-only: nothing in it runs; its keys "
        "are mapped onto --preset, and one that does not fit is refused, naming the first "
        "missing, unexpected or misshapen key), or a bundle folder, for instance one with "
        "weights.pt from before safetensors (the card is written anew from its config.json; "
        "-o may be the same folder: its weights.pt is removed once the new file is written).",
    )
    c.add_argument("source", help="official checkpoint file (.pth / .pt) or bundle folder")
    c.add_argument(
        "--preset", default=None, help="preset name (see 'autost models') or config JSON"
    )
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for an official checkpoint, e.g. ssa_flat_proj_lif=true, which "
        "official QKFormer weights need to reproduce the official outputs at batch >= 2 "
        "(repeatable; KEY is an ArchConfig field or neuron.NAME, VALUE JSON or text)",
    )
    c.add_argument("-o", "--output", required=True, help="bundle folder to write")
    c.set_defaults(func=_cmd_convert)
    add_train(sub)
    add_tune(sub)
    add_run(sub)
    return parser


#: Optuna's ExperimentalWarning texts ("Argument ``group`` is an experimental feature. ...",
#: "X is experimental (supported from vN). ..."), matched without importing optuna.
OPTUNA_EXPERIMENTAL = r"(?s).* is (an )?experimental.*The interface can change in the future"


def hide_optuna_experimental_warnings() -> None:
    """Ignore Optuna's ExperimentalWarning (TPE's ``group=True``, ...): it is about Optuna's
    API, not the user's run, so the CLI shows its own lines only. Matched by message and, when
    optuna is already imported, by category; call it inside ``warnings.catch_warnings()``."""
    import warnings

    warnings.filterwarnings("ignore", message=OPTUNA_EXPERIMENTAL)  # a Warning, not UserWarning
    optuna = sys.modules.get("optuna")
    if optuna is not None:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autost`` console script."""
    import warnings

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
        with warnings.catch_warnings():
            hide_optuna_experimental_warnings()
            code: int = args.func(args)
        return code
    except AutostError as exc:
        message = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"autost: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autost: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``autost models | head``): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # what a shell reports for a process ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
