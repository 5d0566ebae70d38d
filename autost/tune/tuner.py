"""Short-training evaluation and HPO on Ray Tune + Optuna: ``autost.tune`` / ``autost tune``.

Each trial is a short training by the built-in trainer (:class:`autost.training.Trainer`)
that reports every epoch to Ray Tune with a checkpoint. Architectures (the finalists of a
training-free search, or a whole search space) are searched jointly with the learning rate,
the weight decay and the timesteps by an Optuna sampler (TPE; NSGA-II when the objective is
``accuracy,energy``), and the ASHA scheduler stops unpromising trials early. Ray does the
scheduling and the retries of failed trials (``FailureConfig``).

The run directory ``out`` holds ``tune.json`` (the settings), ``study.db`` (the Optuna study:
the run's record, see :mod:`autost.tune.record`), ``tune/session-K/`` (Ray's files of the
K-th session; each trial's checkpoints hold its trainer run files: checkpoint.pt, weights.pt,
train.json, config.json, metrics.jsonl), ``ray.log`` (Ray's own log lines), ``trials.csv``
(every finished trial with its status: ``complete``, ``stopped_early`` by ASHA, or ``failed``
with its error), ``leaderboard.csv`` (complete trials only, best first) and ``best.json``
(none when every complete trial ended at chance level: such trials tell no candidate apart).

With finalists (``--from``) and at least as many trials, each finalist is tried once first
(queued in the study with the sampler drawing its training hyperparameters), then the
sampler chooses.

Resuming reads only ``tune.json``, ``study.db`` and weights-only checkpoints: nothing pickled
by Ray (``tuner.pkl``, ``searcher-state-*.pkl``) is ever loaded, so a tampered run folder
cannot run code, and a run folder that does not open cleanly is refused with nothing changed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.model.config import ArchConfig
from autost.runtime.workdir import sweep
from autost.tune.outputs import TuneResult, collect
from autost.tune.record import STUDY_NAME, TrialRecord
from autost.tune.trial import TRIAL_PREFIX, run_trial, trial_architecture

OBJECTIVES = {"accuracy": ("val_acc",), "accuracy,energy": ("val_acc", "energy_mj")}
EXPERIMENT = "tune"
#: Seconds a run that stopped its local Ray waits for the trial processes to exit, sweeping.
SWEEP_WAIT = 10.0
# settings a resumed run must share with the run it continues
RESUME_KEYS = (
    "space",
    "from",
    "dataset",
    "root",
    "dataset_options",
    "trials",
    "epochs",
    "objective",
    "seed",
)

__all__ = ["OBJECTIVES", "STUDY_NAME", "TrialRecord", "TuneResult", "tune"]


# ------------------------------------------------------------------------------ driver


def _finalists(source: str | Path, top: int) -> list[ArchConfig]:
    """The top ``top`` configs of a search run directory, or the configs of a folder of JSON
    files (``autost export --top K -o FOLDER``), in order."""
    from autost.model.network import resolve_config

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
            from autost.search.space import SearchSpace

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
    dataset_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    ray_output: bool = False,
) -> TuneResult:
    """Short-train ``trials`` candidates on ``dataset`` with Ray Tune; see the module docstring.

    Candidates come from ``from_dir`` (its ``top`` finalists) or the search space ``space``;
    ``timesteps`` (e.g. ``(2, 4)``) adds T to the tuned parameters. ``objective`` is
    ``accuracy`` (TPE) or ``accuracy,energy`` (NSGA-II; validation accuracy up, energy down).
    Without ``address`` a local Ray instance runs the experiment; with it, the experiment joins
    that cluster. ``resume=True`` continues the run in ``out`` from its own records: finished
    trials are kept, interrupted ones continue from their last checkpoint, the rest run.
    ``root`` and ``dataset_options`` (:func:`autost.data.load_dataset` options) reach every
    trial's data. Ray's own log lines go to ``out/ray.log`` (and to the terminal with
    ``ray_output``).
    """
    if objective not in OBJECTIVES:
        raise AutostError(f"unknown objective {objective!r} (choices: {', '.join(OBJECTIVES)})")
    if (space is None) == (from_dir is None):
        raise AutostError("give exactly one of --space or --from")
    if trials < 1 or epochs < 1 or top < 1:
        raise AutostError("--trials, --epochs and --top must be >= 1")
    if timesteps is not None and (not timesteps or any(int(t) < 1 for t in timesteps)):
        raise AutostError(f"--timesteps: expected positive integers, got {list(timesteps)}")
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise AutostError(f"--out {out} is a file, not a folder (nothing was changed)")
    previous = _previous_run(out, resume)
    finalists = _finalists(from_dir, top) if from_dir is not None else []
    space_dict = None
    if space is not None:
        from autost.search.space import SearchSpace

        space_obj = SearchSpace.load(space)
        space_obj.sample(seed)  # a clear error now when the space admits nothing
        space_dict = space_obj.to_spec()
        if timesteps and "timesteps" in space_obj.dimensions:
            raise AutostError(
                f"space {space_obj.name!r} already searches timesteps; drop --timesteps"
            )
    from autost.training.short import check_dataset

    # the data every trial reads: missing files or a misfit fail now, not in every trial
    probe = finalists[0] if finalists else space_obj.sample(seed)
    check_dataset(probe, dataset, root, dataset_options)

    from autost.training.settings import TrainSettings

    settings = TrainSettings(
        epochs=epochs, batch_size=batch_size, seed=seed, dataset_options=dataset_options or {}
    )
    setup = {
        "finalists": [c.to_dict() for c in finalists],
        "space": space_dict,
        "dataset": dataset,
        "root": None if root is None else str(Path(root).resolve()),
        "settings": settings.to_dict(),
    }
    record = {
        "schema_version": 2,
        "space": _source(space),
        "from": None if from_dir is None else str(Path(from_dir).resolve()),
        "top": top,
        "dataset": dataset,
        "root": setup["root"],
        "dataset_options": dict(dataset_options or {}),
        "trials": trials,
        "epochs": epochs,
        "objective": objective,
        "seed": seed,
        "address": address,
        "resources": {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
        "asha": {"grace_period": grace_period, "reduction_factor": reduction_factor},
        "max_failures": max_failures,
        "batch_size": batch_size,
        "search": {
            "lr": list(lr),
            "weight_decay": list(weight_decay),
            "timesteps": list(timesteps) if timesteps else None,
        },
        "finalists": setup["finalists"],
    }
    define = DefineByRun(space_dict, len(finalists), lr, weight_decay, timesteps)
    if previous is not None:
        _check_same_run(out, previous, record)
        study = _open_study(out, record, create=False)
    else:
        if address is not None:  # before anything is written
            from autost.runtime.ray_util import check_ray_address

            check_ray_address(address)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "tune.json", json.dumps(record, indent=2) + "\n")
        study = _open_study(out, record, create=True)

    from autost.tune.record import enqueue_finalists, read_trials, requeue

    def architecture(params: dict[str, Any]) -> ArchConfig:
        return trial_architecture(params, setup)

    finished, interrupted = read_trials(study, architecture, out / "study.db")
    remaining = trials - len(finished)
    if remaining > 0:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        from autost.runtime.ray_util import local_ray_record, ray_log, ray_session, stop_left_ray

        left = stop_left_ray(out)
        if left and progress:
            print(f"stopped {left} processes of the local Ray a killed run left", file=sys.stderr)
        import ray

        starts_ray = address is None and not ray.is_initialized()
        try:
            with (
                ray_log(out / "ray.log", echo=ray_output),
                ray_session(address),
                local_ray_record(out, started_here=starts_ray),
            ):
                requeue(study, interrupted)
                if finalists and trials >= len(finalists):  # each once, then the sampler
                    enqueue_finalists(study, len(finalists))
                _run(setup, record, define, study, out, remaining, progress and not ray_output)
        finally:
            # This node's folders of the trials Ray ended without unwinding; the trial
            # processes of a local Ray may take a few seconds to exit after its shutdown.
            sweep(TRIAL_PREFIX, wait=SWEEP_WAIT if starts_ray else 0.0)
        finished, _ = read_trials(study, architecture, out / "study.db")
    return collect(finished, out, OBJECTIVES[objective], resumed=trials - remaining)


def _source(space: str | Path | None) -> str | None:
    """A space as recorded: a shipped name as given, a file by its resolved path."""
    if space is None:
        return None
    path = Path(space)
    return str(path.resolve()) if path.suffix == ".toml" or path.exists() else str(space)


def _previous_run(out: Path, resume: bool) -> dict[str, Any] | None:
    """The settings of the run in ``out`` when resuming it; refuses a new run over an old one
    and an unreadable record (one line, nothing changed)."""
    path = out / "tune.json"
    if not resume:
        if path.exists() or (out / "study.db").exists():
            raise AutostError(
                f"{out} already holds a tuning run; pass --resume to continue it or choose "
                "another --out (nothing was changed)"
            )
        return None
    if not path.is_file():
        raise AutostError(f"{out}: no tuning run to resume (tune.json is missing)")
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AutostError(f"{path}: unreadable ({exc}); nothing was changed") from exc
    if not isinstance(previous, dict) or previous.get("schema_version") != 2:
        found = previous.get("schema_version") if isinstance(previous, dict) else "?"
        raise AutostError(
            f"{path}: not a tuning record this version resumes (schema_version {found!r}, "
            "expected 2); nothing was changed"
        )
    return previous


def _check_same_run(out: Path, previous: dict[str, Any], record: dict[str, Any]) -> None:
    for key in (*RESUME_KEYS, "finalists", "search"):
        if previous.get(key) != record[key]:
            shown = repr(previous.get(key))
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise AutostError(
                f"{out}: cannot resume with a different {key} ({shown} was used); "
                "nothing was changed"
            )


def _open_study(out: Path, record: dict[str, Any], create: bool) -> Any:
    """The run's Optuna study; an existing study.db is checked read-only before Optuna opens
    it (Optuna would otherwise add missing tables to whatever file it is given)."""
    import optuna

    from autost.search.study import check_storage

    url = f"sqlite:///{out / 'study.db'}"
    check_storage(url, resume=not create)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metrics = OBJECTIVES[record["objective"]]
    sampler: Any
    if len(metrics) > 1:
        sampler = optuna.samplers.NSGAIISampler(seed=record["seed"])
    else:
        sampler = optuna.samplers.TPESampler(seed=record["seed"])
    storage = optuna.storages.RDBStorage(url)
    directions = [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ][: len(metrics)]
    if create:
        return optuna.create_study(
            storage=storage, study_name=STUDY_NAME, sampler=sampler, directions=directions
        )
    optuna_log = logging.getLogger("optuna")  # its lines would come before our refusal
    optuna_log.setLevel(logging.CRITICAL + 1)
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage, sampler=sampler)
        study.get_trials(deepcopy=False)  # a damaged file is refused here, not mid-run
    except KeyError:
        raise AutostError(
            f"{out / 'study.db'}: holds no study {STUDY_NAME!r} (nothing was changed)"
        ) from None
    except Exception as exc:  # sqlalchemy / optuna errors on a damaged file
        while exc.__cause__ is not None:  # sqlite's own words, under Optuna's and sqlalchemy's
            exc = exc.__cause__  # type: ignore[assignment]
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AutostError(
            f"{out / 'study.db'}: damaged, cannot be read ({reason}); nothing was changed"
        ) from None
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if list(study.directions) != directions:
        raise AutostError(f"{out / 'study.db'}: the study's directions do not match --objective")
    return study


def _session_name(tune_dir: Path) -> str:
    numbers = [
        int(p.name.split("-", 1)[1])
        for p in tune_dir.glob("session-*")
        if p.name.split("-", 1)[1].isdigit()
    ]
    return f"session-{max(numbers, default=-1) + 1}"


def _run(
    setup: dict[str, Any],
    record: dict[str, Any],
    define: DefineByRun,
    study: Any,
    out: Path,
    remaining: int,
    progress: bool,
) -> None:
    from ray import tune as rt
    from ray.tune.schedulers import ASHAScheduler

    from autost.tune.record import RecordCallback, StudySearcher

    resources = {"cpu": record["resources"]["cpu"], "gpu": record["resources"]["gpu"]}
    trainable = rt.with_resources(rt.with_parameters(run_trial, setup=setup), resources)
    searcher = StudySearcher(study, define, OBJECTIVES[record["objective"]], record["epochs"], out)
    bar = _trial_bar(record["trials"], record["trials"] - remaining, progress)

    def finished(status: str, metrics: dict[str, float]) -> None:
        bar.update(1)
        if status == "complete":
            best = max(metrics.get("val_acc", 0.0), getattr(bar, "best", 0.0))
            bar.best = best
            bar.set_postfix_str(f"best val_acc {best:.4f}")

    searcher.on_finish = finished
    scheduler = ASHAScheduler(
        time_attr="epoch",  # the trainer's epoch: a re-run continues at its checkpoint's
        metric="val_acc",
        mode="max",
        max_t=record["epochs"],
        grace_period=record["asha"]["grace_period"],
        reduction_factor=record["asha"]["reduction_factor"],
    )
    tune_dir = out / EXPERIMENT
    tune_dir.mkdir(exist_ok=True)
    tuner = rt.Tuner(
        trainable,
        tune_config=rt.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=remaining,
            reuse_actors=True,  # a trial process serves the next trials: no start-up per trial
        ),
        run_config=rt.RunConfig(
            name=_session_name(tune_dir),
            storage_path=str(tune_dir),
            failure_config=rt.FailureConfig(max_failures=record["max_failures"]),
            checkpoint_config=rt.CheckpointConfig(num_to_keep=None),
            callbacks=[RecordCallback(searcher)],
            verbose=0,
        ),
    )
    try:
        tuner.fit()
    finally:
        bar.close()


def _trial_bar(total: int, done: int, enabled: bool) -> Any:
    from autost.training.progress import progress_bar

    return progress_bar(total, desc="tune", unit="trial", initial=done, enabled=enabled)
