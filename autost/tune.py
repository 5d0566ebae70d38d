"""Short-training evaluation and HPO on Ray Tune + Optuna: ``autost.tune`` / ``autost tune``.

Each trial is a short training by the built-in trainer (:class:`autost.training.Trainer`)
that reports every epoch to Ray Tune with a checkpoint. Architectures (the finalists of a
training-free search, or a whole search space) are searched jointly with the learning rate,
the weight decay and the timesteps by ``OptunaSearch`` (TPE; NSGA-II when the objective is
``accuracy,energy``), and the ASHA scheduler stops unpromising trials early. Ray does the
scheduling, retries (``FailureConfig``) and experiment resume (``Tuner.restore``).

The run directory ``out`` holds ``study.db`` (the Optuna study), ``tune/`` (Ray's experiment;
each trial's latest checkpoint holds its trainer run files: checkpoint.pt, weights.pt,
train.json, config.json, metrics.jsonl), ``trials.csv`` (every trial with
its status: ``complete``, ``stopped_early`` by ASHA, or ``failed`` with its error),
``leaderboard.csv`` (complete trials only, best first), ``best.json`` and ``tune.json``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autost.config import ArchConfig
from autost.errors import AutostError
from autost.io import atomic_write_text

OBJECTIVES = {"accuracy": ("val_acc",), "accuracy,energy": ("val_acc", "energy_mj")}
STUDY_NAME = "autost-tune"
EXPERIMENT = "tune"
RUN_FILES = ("checkpoint.pt", "weights.pt", "train.json", "config.json", "metrics.jsonl")
REPORTED = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "mean_firing_rate",
    "sops",
    "energy_mj",
    "train_images_per_s",
)


@dataclass
class TrialRecord:
    """One trial of a tuning run, as read back from Ray's results."""

    trial_id: str
    status: str  # "complete", "stopped_early" or "failed"
    params: dict[str, Any]
    config: ArchConfig | None
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def val_acc(self) -> float:
        return float(self.metrics.get("val_acc", 0.0))


@dataclass
class TuneResult:
    """What :func:`tune` returns: trials by status (complete ones best first)."""

    out: Path
    leaderboard: list[TrialRecord]
    stopped_early: list[TrialRecord]
    failed: list[TrialRecord]

    @property
    def best(self) -> TrialRecord:
        if not self.leaderboard:
            raise AutostError(f"{self.out}: no trial completed")
        return self.leaderboard[0]

    def summary(self) -> str:
        """One line: counts by status, and the distinct errors of failed trials."""
        text = (
            f"{len(self.leaderboard)} complete, {len(self.stopped_early)} stopped early by "
            f"ASHA, {len(self.failed)} failed"
        )
        errors = sorted({t.error.splitlines()[-1] if t.error else "?" for t in self.failed})
        return text + (f" ({'; '.join(errors)[:500]})" if errors else "")


# ------------------------------------------------------------------------------ the trial


def trial_architecture(params: dict[str, Any], setup: dict[str, Any]) -> ArchConfig:
    """The architecture a trial's parameters describe (a finalist, or a point of the space)."""
    if setup["finalists"]:
        cfg = ArchConfig.from_dict(setup["finalists"][int(params["arch"])])
    else:
        from autost.space import SearchSpace

        space = SearchSpace.from_dict(setup["space"])
        arch_params = {k: v for k, v in params.items() if k not in ("lr", "weight_decay")}
        built = space.build(arch_params)
        if built is None:
            raise AutostError(f"the suggested architecture breaks the space: {arch_params}")
        cfg = built
    if "timesteps" in params:
        cfg = cfg.replace(timesteps=int(params["timesteps"]))
    return cfg


def run_trial(params: dict[str, Any], setup: dict[str, Any]) -> None:
    """A Ray Tune function trainable: a short training that reports every epoch."""
    import ray.tune

    from autost.training.loop import Distributed, Trainer, resolve_device
    from autost.training.settings import TrainSettings

    arch = trial_architecture(params, setup)
    settings = TrainSettings.from_dict(
        {
            **setup["settings"],
            "lr": float(params["lr"]),
            "weight_decay": float(params["weight_decay"]),
        }
    )
    # a private working folder: Ray reuses trial processes, and the trial's record is the
    # checkpoint it reports (all run files), which Ray keeps under out/tune/<trial>/
    run_dir = Path(tempfile.mkdtemp(prefix="autost-trial-")) / "run"
    checkpoint = ray.tune.get_checkpoint()
    if checkpoint is not None:  # a retry or a restored experiment: continue from it
        with checkpoint.as_directory() as folder:
            shutil.copytree(folder, run_dir)

    def report(metrics: dict[str, Any], path: Path | None) -> None:
        scalars = {k: float(metrics[k]) for k in REPORTED if k in metrics}
        with tempfile.TemporaryDirectory() as tmp:
            for name in RUN_FILES:
                if (run_dir / name).exists():
                    shutil.copy2(run_dir / name, Path(tmp) / name)
            ray.tune.report(scalars, checkpoint=ray.tune.Checkpoint.from_directory(tmp))

    trainer = Trainer(
        arch,
        setup["dataset"],
        settings,
        run_dir,
        root=setup["root"],
        progress=False,
        distributed=Distributed(0, 1, resolve_device(settings.device), report),
    )
    try:
        result = trainer.fit(resume=checkpoint is not None)
    finally:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    if result.status != "completed":
        raise AutostError(result.failure)


# ------------------------------------------------------------------------------ driver


def _finalists(source: str | Path, top: int) -> list[ArchConfig]:
    """The top ``top`` configs of a search run directory, or the configs of a folder of JSON
    files (``autost export --top K -o FOLDER``), in order."""
    from autost.models import resolve_config

    path = Path(source)
    if (path / "run.json").exists():
        from autost.search import load_run

        configs = [c.config for c in load_run(path)]
    elif path.is_dir():
        configs = [resolve_config(p) for p in sorted(path.glob("*.json"))]
    else:
        raise AutostError(f"--from {source}: not a search run directory or a folder of configs")
    if not configs:
        raise AutostError(f"--from {source}: holds no configs")
    return configs[:top]


class DefineByRun:
    """Optuna define-by-run space: the architecture, then the training hyperparameters
    (a class, so that Ray can pickle the searcher into its experiment checkpoint)."""

    def __init__(
        self,
        space_spec: dict[str, Any] | None,
        finalists: int,
        lr: tuple[float, float],
        weight_decay: tuple[float, float],
        timesteps: Sequence[int] | None,
    ) -> None:
        self.space_spec = space_spec
        self.finalists = finalists
        self.lr = lr
        self.weight_decay = weight_decay
        self.timesteps = list(timesteps) if timesteps else None

    def __call__(self, trial: Any) -> None:
        if self.finalists:
            trial.suggest_categorical("arch", list(range(self.finalists)))
        else:
            from autost.space import SearchSpace

            SearchSpace.from_dict(self.space_spec or {}).suggest(trial)
        if self.timesteps:
            trial.suggest_categorical("timesteps", self.timesteps)
        trial.suggest_float("lr", *self.lr, log=True)
        trial.suggest_float("weight_decay", *self.weight_decay, log=True)


def tune(
    space: str | Path | None = None,
    *,
    from_dir: str | Path | None = None,
    top: int = 5,
    dataset: str = "digits",
    trials: int = 10,
    epochs: int = 5,
    objective: str = "accuracy",
    address: str | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    out: str | Path = "runs/tune",
    resume: bool = False,
    seed: int = 0,
    batch_size: int = 64,
    grace_period: int = 1,
    reduction_factor: float = 2,
    max_failures: int = 2,
    lr: tuple[float, float] = (1e-4, 1e-2),
    weight_decay: tuple[float, float] = (1e-4, 1e-1),
    timesteps: Sequence[int] | None = None,
    root: str | Path | None = None,
    progress: bool = True,
) -> TuneResult:
    """Short-train ``trials`` candidates on ``dataset`` with Ray Tune; see the module docstring.

    Candidates come from ``from_dir`` (its ``top`` finalists) or the search space ``space``;
    ``timesteps`` (e.g. ``(2, 4)``) adds T to the tuned parameters. ``objective`` is
    ``accuracy`` (TPE) or ``accuracy,energy`` (NSGA-II; validation accuracy up, energy down).
    Without ``address`` a local Ray instance runs the experiment; with it, the experiment joins
    that cluster. ``resume=True`` restores an interrupted experiment from ``out``.
    """
    from ray import tune as rt

    from autost.search.scoring import check_ray_address, ray_session

    if objective not in OBJECTIVES:
        raise AutostError(f"unknown objective {objective!r} (choices: {', '.join(OBJECTIVES)})")
    if (space is None) == (from_dir is None):
        raise AutostError("give exactly one of --space or --from")
    if trials < 1 or epochs < 1 or top < 1:
        raise AutostError("--trials, --epochs and --top must be >= 1")
    out = Path(out).resolve()
    experiment = out / EXPERIMENT
    if resume and not rt.Tuner.can_restore(str(experiment)):
        raise AutostError(f"{out}: no tuning experiment to resume")
    if not resume and (out / "tune.json").exists():
        raise AutostError(
            f"{out} already holds a tuning run; pass --resume to continue it or choose another "
            "--out (nothing was changed)"
        )
    finalists = _finalists(from_dir, top) if from_dir is not None else []
    space_dict = None
    if space is not None:
        from autost.space import SearchSpace

        space_obj = SearchSpace.load(space)
        space_obj.sample(seed)  # a clear error now when the space admits nothing
        space_dict = space_obj.to_spec()
        if timesteps and "timesteps" in space_obj.dimensions:
            raise AutostError(
                f"space {space_obj.name!r} already searches timesteps; drop --timesteps"
            )
    from autost.training.settings import TrainSettings

    settings = TrainSettings(epochs=epochs, batch_size=batch_size, seed=seed)
    setup = {
        "finalists": [c.to_dict() for c in finalists],
        "space": space_dict,
        "dataset": dataset,
        "root": None if root is None else str(root),
        "settings": settings.to_dict(),
    }
    if address is not None:  # before anything is written
        check_ray_address(address)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "schema_version": 1,
        "space": str(space) if space is not None else None,
        "from": str(from_dir) if from_dir is not None else None,
        "top": top,
        "dataset": dataset,
        "trials": trials,
        "epochs": epochs,
        "objective": objective,
        "seed": seed,
        "address": address,
        "resources": {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
        "asha": {"grace_period": grace_period, "reduction_factor": reduction_factor},
        "max_failures": max_failures,
        "search": {
            "lr": list(lr),
            "weight_decay": list(weight_decay),
            "timesteps": list(timesteps) if timesteps else None,
        },
        "finalists": setup["finalists"],
    }
    if resume and (out / "tune.json").exists():
        previous = json.loads((out / "tune.json").read_text())
        for key in ("space", "from", "dataset", "trials", "epochs", "objective", "seed"):
            if previous.get(key) != record[key]:
                raise AutostError(
                    f"{out}: cannot resume with a different {key} ({previous.get(key)!r} was used)"
                )
    if not resume:
        atomic_write_text(out / "tune.json", json.dumps(record, indent=2) + "\n")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with ray_session(address):
        grid = _run(
            setup, finalists, record, experiment, resume, lr, weight_decay, timesteps, progress
        )
        return _collect(grid, setup, out, epochs, OBJECTIVES[objective])


def _run(
    setup: dict[str, Any],
    finalists: list[ArchConfig],
    record: dict[str, Any],
    experiment: Path,
    resume: bool,
    lr: tuple[float, float],
    weight_decay: tuple[float, float],
    timesteps: Sequence[int] | None,
    progress: bool,
) -> Any:
    import optuna
    from ray import tune as rt
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    resources = {"cpu": record["resources"]["cpu"], "gpu": record["resources"]["gpu"]}
    trainable = rt.with_resources(rt.with_parameters(run_trial, setup=setup), resources)
    if resume:
        tuner = rt.Tuner.restore(str(experiment), trainable, resume_errored=False)
        return tuner.fit()
    metrics = list(OBJECTIVES[record["objective"]])
    modes = ["max", "min"][: len(metrics)]
    multi = len(metrics) > 1
    sampler: Any
    if multi:
        sampler = optuna.samplers.NSGAIISampler(seed=record["seed"])
    else:
        sampler = optuna.samplers.TPESampler(seed=record["seed"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher = OptunaSearch(
        space=DefineByRun(setup["space"], len(finalists), lr, weight_decay, timesteps),
        metric=metrics if multi else metrics[0],
        mode=modes if multi else modes[0],
        sampler=sampler,
        study_name=STUDY_NAME,
        storage=optuna.storages.RDBStorage(f"sqlite:///{experiment.parent / 'study.db'}"),
    )
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        metric="val_acc",
        mode="max",
        max_t=record["epochs"],
        grace_period=record["asha"]["grace_period"],
        reduction_factor=record["asha"]["reduction_factor"],
    )
    tuner = rt.Tuner(
        trainable,
        tune_config=rt.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=record["trials"],
            reuse_actors=True,  # a trial process serves the next trials: no start-up per trial
        ),
        run_config=rt.RunConfig(
            name=EXPERIMENT,
            storage_path=str(experiment.parent),
            failure_config=rt.FailureConfig(max_failures=record["max_failures"]),
            # every checkpoint is kept: an experiment snapshot taken just before a crash may
            # name an older checkpoint than the trial's last, and restoring needs it to exist
            checkpoint_config=rt.CheckpointConfig(num_to_keep=None),
            verbose=1 if progress else 0,
        ),
    )
    return tuner.fit()


def _collect(
    grid: Any, setup: dict[str, Any], out: Path, epochs: int, metrics: tuple[str, ...]
) -> TuneResult:
    records: list[TrialRecord] = []
    for res in grid:
        params = {k: v for k, v in (res.config or {}).items()}
        last = res.metrics or {}
        done = int(last.get("training_iteration", 0))
        try:
            arch: ArchConfig | None = trial_architecture(params, setup)
        except Exception:  # an invalid suggestion: the trial failed with that error
            arch = None
        error = ""
        if res.error is not None:
            error = str(res.error).strip()
        status = "failed" if error else ("complete" if done >= epochs else "stopped_early")
        records.append(
            TrialRecord(
                trial_id=str(last.get("trial_id", res.path and Path(res.path).name)),
                status=status,
                params=params,
                config=arch,
                epochs=done,
                metrics={k: float(last[k]) for k in REPORTED if k in last},
                error=error,
            )
        )

    def rank(t: TrialRecord) -> tuple[float, ...]:
        values = [t.metrics.get(m, 0.0) for m in metrics]
        return (-values[0], *values[1:], 0.0)  # accuracy up, then energy down

    complete = sorted((t for t in records if t.status == "complete"), key=rank)
    stopped = sorted((t for t in records if t.status == "stopped_early"), key=rank)
    failed = [t for t in records if t.status == "failed"]
    result = TuneResult(out, complete, stopped, failed)
    _write_outputs(result)
    return result


def _rows(records: Sequence[TrialRecord]) -> str:
    columns = ["rank", "trial_id", "status", "epochs", *REPORTED[1:], "params", "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
    writer.writeheader()
    for i, t in enumerate(records, 1):
        writer.writerow(
            {
                "rank": i,
                "trial_id": t.trial_id,
                "status": t.status,
                "epochs": t.epochs,
                **t.metrics,
                "params": json.dumps(t.params, sort_keys=True),
                "error": t.error.splitlines()[-1] if t.error else "",
            }
        )
    return buffer.getvalue()


def _write_outputs(result: TuneResult) -> None:
    out = result.out
    atomic_write_text(out / "leaderboard.csv", _rows(result.leaderboard))
    everything = [*result.leaderboard, *result.stopped_early, *result.failed]
    atomic_write_text(out / "trials.csv", _rows(everything))
    if result.leaderboard:
        best = result.leaderboard[0]
        assert best.config is not None
        data = {
            "schema_version": 1,
            "trial_id": best.trial_id,
            "params": best.params,
            "metrics": best.metrics,
            "config": best.config.to_dict(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_text(out / "best.json", json.dumps(data, indent=2) + "\n")
