"""``autost run``: training-free search, tuning of the top-K, full training of the winner, export.

Each stage writes its own folder under ``out`` (``search/``, ``tune/``, ``train/``,
``bundle/``) with the conventions of the stand-alone commands, and ``out/pipeline.json``
records the stages that finished. A re-run skips finished stages and resumes an interrupted
one; ``skip`` leaves stages out (without tuning, the search's best config is trained with the
default recipe) and ``only`` runs one stage on the outputs of the earlier ones.

The export bundle (``bundle/``) holds ``config.json`` (the schema-versioned config with its
provenance), ``weights.pt`` (weights only), ``report.md`` and the plots it shows;
``autost.create_model(bundle)`` rebuilds the model with its weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autost.errors import AutostError
from autost.io import atomic_write_text

STAGES = ("search", "tune", "train", "export")


@dataclass
class RunResult:
    """What :func:`run` returns: the run folder, the bundle, and what each stage did."""

    out: Path
    bundle: Path
    ran: list[str]
    skipped: list[str]


def _state(out: Path) -> dict[str, Any]:
    path = out / "pipeline.json"
    return json.loads(path.read_text()) if path.exists() else {"stages": {}}


def _finish(out: Path, state: dict[str, Any], stage: str, info: dict[str, Any]) -> None:
    state["stages"][stage] = {"status": "complete", "finished": time.strftime("%FT%T%z"), **info}
    atomic_write_text(out / "pipeline.json", json.dumps(state, indent=2) + "\n")


def run(
    space: str | Path,
    dataset: str = "digits",
    *,
    out: str | Path = "runs/run",
    evaluator: str | Path = "zero-cost",
    strategy: str = "evolution",
    budget: int = 200,
    top: int = 3,
    trials: int = 6,
    tune_epochs: int = 3,
    epochs: int = 30,
    address: str | None = None,
    seed: int = 0,
    skip: Sequence[str] = (),
    only: str | None = None,
    root: str | Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Search ``space``, tune its ``top`` finalists with ``trials`` short trainings, train the
    winner for ``epochs`` epochs on ``dataset`` and export it; see the module docstring."""
    unknown = sorted(set(skip) - set(STAGES)) + ([only] if only and only not in STAGES else [])
    if unknown:
        raise AutostError(f"unknown stage(s) {unknown} (stages: {', '.join(STAGES)})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = _state(out)
    ran: list[str] = []
    skipped: list[str] = []
    for stage in STAGES:
        wanted = stage == only if only else stage not in skip
        if not wanted or state["stages"].get(stage, {}).get("status") == "complete":
            skipped.append(stage)
            continue
        if stage == "search":
            from autost.search import search

            folder = out / "search"
            result = search(
                space,
                evaluator,
                strategy=strategy,
                budget=budget,
                seed=seed,
                dataset=dataset,
                out=folder,
                resume=(folder / "run.json").exists(),
                address=address,
                progress=progress,
            )
            _finish(out, state, stage, {"best": result.best.key, "evaluated": result.evaluated})
        elif stage == "tune":
            from ray.tune import Tuner

            from autost.tune import EXPERIMENT, tune

            _need(out / "search" / "best.json", "tune", "search")
            folder = out / "tune"
            tuned = tune(
                from_dir=out / "search",
                top=top,
                dataset=dataset,
                trials=trials,
                epochs=tune_epochs,
                address=address,
                out=folder,
                resume=Tuner.can_restore(str(folder.resolve() / EXPERIMENT)),
                seed=seed,
                root=root,
                progress=progress,
            )
            if not tuned.leaderboard:
                raise AutostError(f"tuning produced no complete trial: {tuned.summary()}")
            _finish(out, state, stage, {"summary": tuned.summary()})
        elif stage == "train":
            _train(out, dataset, epochs, seed, root, progress)
            _finish(out, state, stage, {})
        else:
            from autost.report import export_bundle

            _need(out / "train" / "weights.pt", "export", "train")
            export_bundle(out, out / "bundle")
            _finish(out, state, stage, {"bundle": str(out / "bundle")})
        ran.append(stage)
    return RunResult(out, out / "bundle", ran, skipped)


def _need(path: Path, stage: str, before: str) -> None:
    if not path.exists():
        raise AutostError(f"stage {stage!r} needs the {before!r} stage's output ({path})")


def _train(
    out: Path,
    dataset: str,
    epochs: int,
    seed: int,
    root: str | Path | None,
    progress: bool,
) -> None:
    """Train the tuned winner (its lr, weight decay and T), or the search's best config, in
    this process (``autost train --workers N`` trains data-parallel on its own)."""
    from autost.config import ArchConfig
    from autost.training import train

    overrides: dict[str, Any] = {}
    if (out / "tune" / "best.json").exists():
        best = json.loads((out / "tune" / "best.json").read_text())
        overrides = {k: best["params"][k] for k in ("lr", "weight_decay") if k in best["params"]}
    else:
        _need(out / "search" / "best.json", "train", "search")
        best = json.loads((out / "search" / "best.json").read_text())
    config = ArchConfig.from_dict(best["config"])
    folder = out / "train"
    result = train(
        config,
        dataset,
        out=folder,
        resume=(folder / "train.json").exists(),
        root=root,
        progress=progress,
        epochs=epochs,
        seed=seed,
        **overrides,
    )
    if result.status != "completed":
        raise AutostError(f"training the winner failed: {result.failure}")
