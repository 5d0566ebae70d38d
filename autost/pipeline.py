"""``autost run``: training-free search, tuning of the top-K, full training of the winner, export.

Each stage writes its own folder under ``out`` (``search/``, ``tune/``, ``train/``,
``bundle/``) with the conventions of the stand-alone commands, and ``out/pipeline.json``
records the run's settings and the stages that finished. A re-run with the same settings skips
finished stages and resumes an interrupted one; other settings are refused, naming the first
that differs. ``skip`` leaves stages out (without tuning, the search's best config is trained
with the default recipe) and ``only`` runs one stage on the outputs of the earlier ones, even
when it finished before (``only="export"`` rewrites the bundle).

The export bundle (``bundle/``) is a Hub-ready folder (:mod:`autost.bundle.hub`): ``config.json``
(the schema-versioned config with its provenance and the command that reproduces the run),
``model.safetensors``, the ``README.md`` model card and the plots it shows;
``autost.create_model(bundle)`` rebuilds the model with its weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autost.bundle.report import SETTINGS
from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.model.config import ArchConfig
from autost.runtime.faults import kill_point

STAGES = ("search", "tune", "train", "export")
#: what a run is made with: a re-run into the same folder must repeat them


@dataclass
class RunResult:
    """What :func:`run` returns: the run folder, the bundle, and what each stage did."""

    out: Path
    bundle: Path
    ran: list[str]
    skipped: list[str]

    def summary(self) -> list[str]:
        """Lines about the outcome: the winner, its params and accuracy, the bundle."""
        return summary(self.out)


def _state(out: Path) -> dict[str, Any]:
    path = out / "pipeline.json"
    if not path.exists():
        return {"stages": {}}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AutostError(f"{path}: unreadable run record ({exc})") from exc
    if not isinstance(state, dict) or not isinstance(state.get("stages"), dict):
        raise AutostError(f"{path}: not an autost run record (no 'stages' table)")
    if not all(isinstance(v, dict) for v in state["stages"].values()) or not isinstance(
        state.get("settings", {}), dict
    ):
        raise AutostError(f"{path}: not an autost run record (malformed 'stages' or 'settings')")
    return state


def _save(out: Path, state: dict[str, Any]) -> None:
    atomic_write_text(out / "pipeline.json", json.dumps(state, indent=2) + "\n")


def _finish(out: Path, state: dict[str, Any], stage: str, info: dict[str, Any]) -> None:
    state["stages"][stage] = {"status": "complete", "finished": time.strftime("%FT%T%z"), **info}
    _save(out, state)


def _check_settings(out: Path, state: dict[str, Any], settings: dict[str, Any]) -> None:
    """Refuse to continue a run made with other settings (a run from before settings were
    recorded adopts these, and so does one that has made nothing yet)."""
    previous = state.get("settings", {})
    if not any(v.get("status") == "complete" for v in state["stages"].values()):
        from autost.search.folder import folder_state
        from autost.search.study import STUDY_NAME

        if folder_state(out / "search", None, STUDY_NAME).scored == 0:
            return  # nothing was made with the earlier settings: a fresh start
    for key in SETTINGS:
        if key in previous and previous[key] != settings[key]:
            raise AutostError(
                f"{out} holds a run made with {key}={previous[key]!r}, not {settings[key]!r}: "
                "run again with its settings to resume it, or choose another --out "
                "(nothing was changed)"
            )


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
    dataset_options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Search ``space``, tune its ``top`` finalists with ``trials`` short trainings, train the
    winner for ``epochs`` epochs on ``dataset`` and export it; see the module docstring.
    ``root`` and ``dataset_options`` (``autost.data.load_dataset`` options) reach every stage
    that reads the dataset."""
    unknown = sorted(set(skip) - set(STAGES)) + ([only] if only and only not in STAGES else [])
    if unknown:
        raise AutostError(f"unknown stage(s) {unknown} (stages: {', '.join(STAGES)})")
    out = Path(out)
    options = dict(dataset_options or {})
    settings = {
        "space": str(space),
        "dataset": dataset,
        "evaluator": str(evaluator),
        "strategy": strategy,
        "budget": budget,
        "top": top,
        "trials": trials,
        "tune_epochs": tune_epochs,
        "epochs": epochs,
        "seed": seed,
        "root": None if root is None else str(root),
        "dataset_options": options,
    }
    _preflight(out, settings, skip, only)
    state = _state(out)
    _check_settings(out, state, settings)
    out.mkdir(parents=True, exist_ok=True)
    kill_point("run-record")
    if state.get("settings") != settings:
        state["settings"] = settings
        _save(out, state)
    ran: list[str] = []
    skipped: list[str] = []
    for stage in STAGES:
        wanted = stage == only if only else stage not in skip
        done = state["stages"].get(stage, {}).get("status") == "complete"
        if not wanted or (done and only is None):
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
                root=root,
                dataset_options=options,
            )
            _finish(out, state, stage, {"best": result.best.key, "evaluated": result.evaluated})
        elif stage == "tune":
            from autost.tune import tune

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
                resume=(folder / "tune.json").exists(),
                seed=seed,
                root=root,
                progress=progress,
                dataset_options=options,
            )
            if not tuned.leaderboard:
                raise AutostError(f"tuning produced no complete trial: {tuned.summary()}")
            _finish(out, state, stage, {"summary": tuned.summary()})
        elif stage == "train":
            _train(out, dataset, epochs, seed, root, options, progress)
            _finish(out, state, stage, {})
        else:
            from autost.bundle.report import export_bundle

            _need(out / "train" / "weights.pt", "export", "train")
            export_bundle(out, out / "bundle")
            _finish(out, state, stage, {"bundle": str(out / "bundle")})
        kill_point(f"run-{stage}")
        ran.append(stage)
    return RunResult(out, out / "bundle", ran, skipped)


def _preflight(
    out: Path, settings: Mapping[str, Any], skip: Sequence[str], only: str | None
) -> None:
    """Check every setting, the space, the evaluator and the dataset's files before the run
    writes anything, so that a refused run leaves no record behind."""
    from autost.data import list_datasets
    from autost.search import STRATEGIES
    from autost.search.outputs import check_out_folder
    from autost.search.space import SearchSpace
    from autost.training.short import check_dataset

    check_out_folder(out)
    for key in ("budget", "top", "trials", "tune_epochs", "epochs"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            flag = "--" + key.replace("_", "-")
            raise AutostError(f"{flag} must be an integer >= 1, got {value!r}")
    if settings["strategy"] not in STRATEGIES:
        raise AutostError(
            f"unknown strategy {settings['strategy']!r} (choices: {', '.join(STRATEGIES)})"
        )
    space = SearchSpace.load(settings["space"])
    from autost.search.evaluator import Evaluator

    Evaluator.load(settings["evaluator"])
    dataset = settings["dataset"]
    if dataset not in list_datasets():
        import difflib

        close = difflib.get_close_matches(dataset, list_datasets(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AutostError(
            f"unknown dataset {dataset!r}{hint} (datasets: {', '.join(list_datasets())})"
        )
    wanted = [only] if only else [s for s in STAGES if s not in skip]
    if not {"tune", "train"} & set(wanted):
        return  # the search checks its own data
    check_dataset(
        space.sample(settings["seed"]), dataset, settings["root"], settings["dataset_options"]
    )


def _need(path: Path, stage: str, before: str) -> None:
    if not path.exists():
        raise AutostError(f"stage {stage!r} needs the {before!r} stage's output ({path})")


def _train(
    out: Path,
    dataset: str,
    epochs: int,
    seed: int,
    root: str | Path | None,
    options: Mapping[str, Any],
    progress: bool,
) -> None:
    """Train the tuned winner (its lr, weight decay and T), or the search's best config, in
    this process (``autost train --workers N`` trains data-parallel on its own)."""
    from autost.model.config import ArchConfig
    from autost.training import train

    overrides: dict[str, Any] = {}
    source = out / "tune" / "best.json"
    if not source.exists():
        source = out / "search" / "best.json"
        _need(source, "train", "search")
    best = json.loads(source.read_text())
    if source.parent.name == "tune":
        overrides = {k: best["params"][k] for k in ("lr", "weight_decay") if k in best["params"]}
    config = ArchConfig.from_json(source)  # checks the file's own schema_version too
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
        dataset_options=dict(options),
        **overrides,
    )
    if result.status != "completed":
        raise AutostError(f"training the winner failed: {result.failure}")


def describe(config: ArchConfig) -> str:
    """An architecture in one line: depth, width, heads, MLP ratios, attention and T."""

    def join(values: Sequence[Any]) -> str:
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)

    return (
        f"depth {config.depth}, dim {config.embed_dim}, heads {join(config.num_heads)}, "
        f"mlp ratios {join(config.mlp_ratios)}, attention {join(config.attention)}, "
        f"T {config.timesteps}"
    )


def summary(out: str | Path) -> list[str]:
    """What run ``out`` produced so far: the trained winner (architecture, params, final val
    accuracy, its search rank) and the bundle, one line each."""
    from autost.model.cost import count_params

    out = Path(out)
    lines: list[str] = []
    status_file = out / "train" / "train.json"
    if status_file.exists():
        status = json.loads(status_file.read_text())
        config = ArchConfig.from_dict(status["config"])
        lines.append(f"winner: {describe(config)}; {count_params(config):,} params")
        final = status.get("final") or {}
        if status.get("status") == "completed" and "val_acc" in final:
            lines.append(
                f"final val accuracy: {final['val_acc']:.4f} after {status['epochs_done']} "
                f"epochs on {status['dataset']}"
            )
    bundle = out / "bundle"
    if (bundle / "config.json").exists():
        prov = json.loads((bundle / "config.json").read_text()).get("provenance", {})
        match = prov.get("search") or {}
        if match.get("rank") is not None:
            lines.append(f"search rank of the winner: {match['rank']} of {match['of']}")
        lines.append(f"bundle: {bundle} (autost.create_model({str(bundle)!r}))")
    return lines
