"""The ``autost`` commands that train: ``train``, ``tune`` (Ray Tune short trainings) and
``run`` (search, tune, train and export in one go); :mod:`autost.cli` registers them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from autost.errors import AutostError


def add_dataset_args(
    parser: argparse.ArgumentParser, default: str | None = "digits", help: str | None = None
) -> None:
    """The dataset arguments every command that loads data takes: ``--dataset``, ``--root``
    and the repeatable ``--dataset-option KEY=VALUE``."""
    parser.add_argument(
        "--dataset",
        default=default,
        help=help
        or "dataset name, e.g. digits (embedded: needs no files), mnist, cifar10, nmnist "
        "(all: autost.data.list_datasets(); default: %(default)s)",
    )
    parser.add_argument("--root", default=None, help="dataset files (for datasets that need them)")
    parser.add_argument(
        "--dataset-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset loader option KEY=VALUE, repeatable (e.g. source=test: MNIST from its t10k "
        "files alone; image_size=16)",
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from autost.data import parse_options
    from autost.training import TrainSettings, train

    overrides = {
        name: getattr(args, name)
        for name in ("epochs", "batch_size", "lr", "weight_decay", "loss", "amp", "device")
        if getattr(args, name) is not None
    }
    if args.low_memory is not None:
        overrides["low_memory"] = args.low_memory
    if args.resume and args.out is None:
        raise AutostError("--resume needs --out DIR, the run to continue")
    out = args.out or time.strftime("runs/train-%Y%m%d-%H%M%S")
    settings = TrainSettings(
        compile=args.compile,
        checkpoint_blocks=args.checkpoint_blocks,
        seed=args.seed,
        workers=args.loader_workers,
    )
    result = train(
        args.config,
        args.dataset,
        out=out,
        settings=settings,
        resume=args.resume,
        root=args.root,
        progress=not args.quiet,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        address=args.address,
        dataset_options=parse_options(args.dataset_option),
        **overrides,
    )
    if result.status != "completed":
        where = Path(out) / "metrics.jsonl"
        print(f"autost: training failed: {result.failure} (see {where})", file=sys.stderr)
        return 1
    import autost
    from autost.pipeline import describe

    final, epochs = result.final, len(result.metrics)
    chance = final.get("val_chance")
    at_chance = chance is not None and final["val_acc"] <= chance
    print(f"model: {describe(result.config)}; {autost.count_params(result.config):,} params")
    print(
        f"final val accuracy: {final['val_acc']:.4f} after {epochs} epoch"
        f"{'s' if epochs != 1 else ''} on {args.dataset} (best {result.best_val_acc:.4f})"
        + (
            f"; at chance level: always answering the most frequent class scores {chance:.4f}"
            if at_chance
            else ""
        )
    )
    print(
        f"energy per sample: {final['energy_mj']:.4g} mJ ({final['sops']:,.0f} SOPs) at the "
        f"measured mean firing rate {final['mean_firing_rate']:.4f}"
    )
    print(f"run: {result.out} (weights.pt, metrics.csv, train.json)")
    return 0


def add_train(sub: Any) -> None:
    """Register ``autost train`` on the subparsers ``sub``."""
    t = sub.add_parser(
        "train",
        help="fully train an architecture",
        description="Train CONFIG (a preset, a config JSON, or a search run directory) with "
        "AdamW, warm-up + cosine decay, label smoothing and gradient clipping; checkpoints every "
        "epoch; --resume continues.",
    )
    t.add_argument("config", help="preset name, config JSON, best.json or search run directory")
    add_dataset_args(t)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--weight-decay", type=float, default=None)
    t.add_argument("--loss", choices=["ce", "tet", "trt"], default=None)
    t.add_argument("--out", default=None, help="run directory (default: runs/train-<date>-<time>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--device", choices=["auto", "cuda", "cpu"], default=None)
    t.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], default=None)
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument(
        "--low-memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="save spike inputs for backward as bool/uint8: same gradients, less memory "
        "(default: off; worth it on large models)",
    )
    t.add_argument(
        "--checkpoint-blocks",
        action="store_true",
        help="recompute each encoder block in backward (same gradients, less memory, slower)",
    )
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the weights, the data order and augmentation (default: %(default)s)",
    )
    t.add_argument(
        "--loader-workers",
        type=int,
        default=0,
        help="DataLoader worker processes (default: %(default)s)",
    )
    t.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Ray Train workers (data parallel) (default: %(default)s)",
    )
    t.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0,
        help="GPUs per Ray Train worker (default: %(default)s)",
    )
    t.add_argument("--address", default=None, help="Ray cluster address for Ray Train")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)


def _cmd_tune(args: argparse.Namespace) -> int:
    from autost.data import parse_options
    from autost.tune import tune

    if args.resume and args.out is None:
        raise AutostError("--resume needs --out DIR, the run to continue")
    steps = _int_list("--timesteps", args.timesteps) if args.timesteps else None
    result = tune(
        args.space,
        from_dir=args.from_dir,
        top=args.top,
        dataset=args.dataset,
        trials=args.trials,
        epochs=args.epochs,
        objective=args.objective,
        address=args.address,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        out=args.out or time.strftime("runs/tune-%Y%m%d-%H%M%S"),
        resume=args.resume,
        seed=args.seed,
        batch_size=args.batch_size,
        grace_period=args.grace_period,
        max_failures=args.max_failures,
        timesteps=steps,
        root=args.root,
        progress=not args.quiet,
        ray_output=args.ray_output,
        dataset_options=parse_options(args.dataset_option),
    )
    if not result.leaderboard:
        print(f"autost: every trial failed or stopped: {result.summary()}", file=sys.stderr)
        return 1
    print(f"{result.summary()} -> {result.out}")
    if result.at_chance:
        return 0
    import autost
    from autost.pipeline import describe

    best = result.best
    assert best.config is not None
    epochs = f"{best.epochs} epoch{'s' if best.epochs != 1 else ''}"
    line = f"best trial: {best.number}, val accuracy {best.val_acc:.4f} after {epochs}"
    if "arch" in best.params:
        count = len(json.loads((result.out / "tune.json").read_text())["finalists"])
        rank = int(best.params["arch"]) + 1
        searched = (Path(args.from_dir) / "run.json").exists()
        where = f"search rank {rank}" if searched else f"config {rank} of --from by file name"
        line += f"; finalist {rank} of {count} ({where})"
    names = {"lr": "lr", "weight_decay": "weight decay", "timesteps": "T"}
    line += "".join(f", {n} {best.params[k]:.3g}" for k, n in names.items() if k in best.params)
    print(line)
    config = best.config
    print(f"architecture: {describe(config)}; {autost.count_params(config):,} params")
    print(f"best config: {result.out / 'best.json'}")
    return 0


def add_tune(sub: Any) -> None:
    """Register ``autost tune`` on the subparsers ``sub``."""
    t = sub.add_parser(
        "tune",
        help="short-train finalists or a space on Ray Tune (Optuna + ASHA)",
        description="Search architectures jointly with lr, weight decay and timesteps by short "
        "trainings on Ray Tune: OptunaSearch (TPE, or NSGA-II for accuracy,energy) and ASHA.",
    )
    t.add_argument("--space", default=None, help="search space name or TOML path")
    t.add_argument("--from", dest="from_dir", default=None, help="search run dir or config folder")
    t.add_argument(
        "--top", type=int, default=5, help="finalists taken from --from (default: %(default)s)"
    )
    add_dataset_args(t)
    t.add_argument("--trials", type=int, default=10, help="short trainings (default: %(default)s)")
    t.add_argument(
        "--epochs",
        type=int,
        default=5,
        help="epochs per trial, ASHA's max_t (default: %(default)s)",
    )
    t.add_argument(
        "--objective", default="accuracy", help="accuracy (TPE) or accuracy,energy (NSGA-II)"
    )
    t.add_argument("--timesteps", default=None, help="comma-separated T choices to tune")
    t.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    t.add_argument(
        "--cpus-per-trial", type=float, default=1, help="CPUs per trial (default: %(default)s)"
    )
    t.add_argument(
        "--gpus-per-trial", type=float, default=0, help="GPUs per trial (default: %(default)s)"
    )
    t.add_argument(
        "--batch-size", type=int, default=64, help="training batch (default: %(default)s)"
    )
    t.add_argument(
        "--grace-period",
        type=int,
        default=1,
        help="ASHA: epochs before stopping (default: %(default)s)",
    )
    t.add_argument(
        "--max-failures",
        type=int,
        default=2,
        help="retries of a failed trial (default: %(default)s)",
    )
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the sampler and the trainings (default: %(default)s)",
    )
    t.add_argument("--out", default=None, help="run directory (default: runs/tune-<date>-<time>)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (finished trials are kept, interrupted ones continue)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument(
        "--ray-output", action="store_true", help="show Ray's own output (always in DIR/ray.log)"
    )
    t.set_defaults(func=_cmd_tune)


def _int_list(option: str, text: str) -> list[int]:
    """``2,4`` as ``[2, 4]``; one clear line for anything else."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise AutostError(
            f"{option}: expected comma-separated integers such as 2,4, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise AutostError(f"{option}: values must be >= 1, got {text!r}")
    return values


def _cmd_run(args: argparse.Namespace) -> int:
    from autost.data import parse_options
    from autost.pipeline import run

    result = run(
        args.space,
        args.dataset,
        out=args.out,
        evaluator=args.evaluator,
        strategy=args.strategy,
        budget=args.budget,
        top=args.top,
        trials=args.trials,
        tune_epochs=args.tune_epochs,
        epochs=args.epochs,
        address=args.address,
        seed=args.seed,
        skip=args.skip,
        only=args.only,
        root=args.root,
        progress=not args.quiet,
        dataset_options=parse_options(args.dataset_option),
    )
    print(
        f"ran: {', '.join(result.ran) or 'nothing'}; already done or skipped: "
        f"{', '.join(result.skipped) or 'nothing'}"
    )
    for line in result.summary():
        print(line)
    return 0


def add_run(sub: Any) -> None:
    """Register ``autost run`` on the subparsers ``sub``."""
    r = sub.add_parser(
        "run",
        help="search, tune, train and export in one resumable command",
        description="Training-free search, tuning of the top-K on Ray Tune, full training of "
        "the winner and export of a bundle (config with provenance, weights, report, plots). "
        "Finished stages are skipped when the command is run again with the same settings "
        "(other settings into the same --out are refused); --only STAGE runs that stage again "
        "even when it finished (--only export rewrites the bundle).",
    )
    r.add_argument(
        "--space", required=True, help="search space name or TOML path ('autost spaces' lists them)"
    )
    add_dataset_args(r)
    r.add_argument("--out", default="runs/run", help="run directory (default: %(default)s)")
    r.add_argument(
        "--evaluator",
        default="zero-cost",
        help="search: evaluator recipe name or TOML path ('autost proxies' lists them; "
        "default: %(default)s)",
    )
    r.add_argument(
        "--strategy",
        default="evolution",
        help="search: random | evolution | tpe | nsga2 (default: %(default)s)",
    )
    r.add_argument(
        "--budget", type=int, default=200, help="search: candidates to draw (default: %(default)s)"
    )
    r.add_argument(
        "--top", type=int, default=3, help="tune: finalists from the search (default: %(default)s)"
    )
    r.add_argument(
        "--trials", type=int, default=6, help="tune: short trainings (default: %(default)s)"
    )
    r.add_argument(
        "--tune-epochs", type=int, default=3, help="tune: epochs per trial (default: %(default)s)"
    )
    r.add_argument(
        "--epochs", type=int, default=30, help="train: epochs for the winner (default: %(default)s)"
    )
    r.add_argument(
        "--address",
        default=None,
        help="Ray cluster for search scoring and tuning (default: a local Ray)",
    )
    r.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the search, the tuning and the training (default: %(default)s)",
    )
    r.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["search", "tune", "train", "export"],
        help="leave this stage out (repeatable)",
    )
    r.add_argument(
        "--only",
        default=None,
        choices=["search", "tune", "train", "export"],
        help="run this stage alone, even when it finished",
    )
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=_cmd_run)
