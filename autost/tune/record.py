"""The tuning run's own record: an Optuna study in ``study.db`` that Ray Tune writes through.

Ray Tune's experiment state (``tuner.pkl``, ``searcher-state-*.pkl``, experiment snapshots) is
pickled, and restoring it runs whatever a writer of the run folder put there. autost therefore
never restores it: every trial is a trial of the Optuna study, asked for by
:class:`StudySearcher` when Ray starts it and told when Ray finishes it, with its status,
epochs, metrics, error and latest checkpoint as user attributes (JSON). A resumed run reads
only that study (plain SQLite rows), re-asks the trials a crash interrupted with their
parameters (continuing from their last checkpoint, loaded weights-only) and starts a new Ray
session for the trials still to run. Finished trials are never run again.

A trial's life in the study: RUNNING (asked; attributes updated every epoch) -> COMPLETE
(status ``complete`` or ``stopped_early``) or FAIL (status ``failed`` with its error, or
``interrupted`` when a resume found it still RUNNING and queued it again).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.search import Searcher

from autost.errors import AutostError
from autost.model.config import ArchConfig
from autost.runtime.faults import kill_point

STUDY_NAME = "autost-tune"
REPORTED = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_chance",  # the share of the validation split's most frequent class
    "mean_firing_rate",
    "sops",
    "energy_mj",
    "train_images_per_s",
)
FINISHED = ("complete", "stopped_early", "failed")
PRIVATE = "_"  # config keys that are not tuned parameters (the trial number, its checkpoint)


@dataclass
class TrialRecord:
    """One finished trial of a tuning run, as read back from the study."""

    trial_id: str
    status: str  # "complete", "stopped_early" or "failed"
    params: dict[str, Any]
    config: ArchConfig | None
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    number: int = -1  # the Optuna trial number

    @property
    def val_acc(self) -> float:
        return float(self.metrics.get("val_acc", 0.0))

    @property
    def at_chance(self) -> bool:
        """Whether the trial ended at chance level (see :func:`at_chance_level`)."""
        return at_chance_level(self.metrics)


def at_chance_level(metrics: Mapping[str, float]) -> bool:
    """Whether metrics ``metrics`` are no better than always answering the validation
    split's most frequent class (``val_chance``); False when that share is not recorded."""
    chance = metrics.get("val_chance")
    return chance is not None and float(metrics.get("val_acc", 0.0)) <= float(chance)


def public_params(config: dict[str, Any]) -> dict[str, Any]:
    """A Ray trial config without autost's private keys."""
    return {k: v for k, v in config.items() if not k.startswith(PRIVATE)}


class StudySearcher(Searcher):
    """A Ray Tune searcher that asks an Optuna study for each trial and records every
    result in it (see the module docstring); it is never pickled into Ray's state."""

    def __init__(
        self,
        study: Any,
        define: Callable[[Any], None],
        metrics: Sequence[str],
        epochs: int,
        out: Path,
    ) -> None:
        super().__init__(metric="val_acc", mode="max")
        self.study = study
        self.define = define
        self.metrics = list(metrics)
        self.epochs = epochs
        self.out = out
        self.running: dict[str, Any] = {}  # Ray trial id -> Optuna trial
        self.ray_trials: dict[str, Any] = {}  # Ray trial id -> Ray trial (for its error text)
        self.on_finish: Callable[[str, dict[str, float]], None] | None = None

    # -- Ray's searcher interface
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        trial = self.study.ask()
        self.define(trial)
        trial.set_user_attr("ray_trial_id", trial_id)
        self.running[trial_id] = trial
        config = dict(trial.params)
        config[PRIVATE + "number"] = trial.number
        resume_from = self._checkpoint_path(trial.user_attrs.get("resume_from"))
        if resume_from is not None:
            config[PRIVATE + "resume_from"] = str(resume_from)
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Results are recorded by :class:`RecordCallback` (which also sees the last one)."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        import optuna

        trial = self.running.pop(trial_id, None)
        if trial is None:
            return
        metrics = _scalars(result or {}) or dict(trial.user_attrs.get("metrics") or {})
        epochs = int(metrics.get("epoch", 0))
        status, text = "failed", ""
        if error:
            text = self._error_text(trial_id)
        elif "val_acc" not in metrics:
            text = "the trial reported no result"
        else:
            status = "complete" if epochs >= self.epochs else "stopped_early"
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("epochs", epochs)
        trial.set_user_attr("error", text)
        kill_point("tune-before-tell")
        trial.set_user_attr("status", status)  # the record is final only once told, below
        if status == "failed":
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            values = [float(metrics.get(m, math.nan)) for m in self.metrics]
            self.study.tell(trial, values if len(values) > 1 else values[0])
        kill_point("tune-after-tell")
        if self.on_finish is not None:
            self.on_finish(status, metrics)

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Nothing: the study is the searcher's state (Ray would pickle it here)."""

    def __getstate__(self) -> dict[str, Any]:  # Ray pickles its Tuner; never the study
        return {}

    # -- called by RecordCallback
    def record_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial = self.running.get(trial_id)
        if trial is not None:
            scalars = _scalars(result)
            trial.set_user_attr("metrics", scalars)
            trial.set_user_attr("epochs", int(scalars.get("epoch", 0)))
            kill_point("tune-result")

    def record_checkpoint(self, trial_id: str, path: str) -> None:
        trial = self.running.get(trial_id)
        if trial is not None:
            where = Path(path).resolve()
            if where.is_relative_to(self.out):
                trial.set_user_attr("checkpoint", where.relative_to(self.out).as_posix())

    # -- helpers
    def _checkpoint_path(self, relative: Any) -> Path | None:
        """A recorded checkpoint folder, only if it lies inside this run's ``tune/`` folder."""
        if not isinstance(relative, str) or not relative:
            return None
        path = (self.out / relative).resolve()
        if not path.is_relative_to(self.out / "tune") or not path.is_dir():
            return None
        return path

    def _error_text(self, trial_id: str) -> str:
        ray_trial = self.ray_trials.get(trial_id)
        text = ""
        if ray_trial is not None:
            try:  # Ray's text error file, in the trial's local folder (synced to storage later)
                local = ray_trial.error_file
                text = Path(local).read_text(errors="replace") if local else ""
            except Exception:  # the error file is Ray's; its absence is not ours to fail on
                text = ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else "the trial failed (no error text)"


class RecordCallback(Callback):
    """Feeds :class:`StudySearcher` what only callbacks see: every result, each
    checkpoint's location and the Ray trial (for its error text)."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.searcher.ray_trials[trial.trial_id] = trial

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.searcher.record_result(trial.trial_id, result)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        self.searcher.record_checkpoint(trial.trial_id, str(checkpoint.path))


def _scalars(result: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in REPORTED:
        value = result.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


# ------------------------------------------------------------------------------ reading back


def read_trials(
    study: Any, architecture: Callable[[dict[str, Any]], ArchConfig], db: Path
) -> tuple[list[TrialRecord], list[Any]]:
    """The finished trials of the study (validated: study.db is untrusted input) and the
    trials a crash left RUNNING (to be queued again)."""
    import optuna

    finished: list[TrialRecord] = []
    interrupted: list[Any] = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        status = attrs.get("status")
        if t.state == optuna.trial.TrialState.RUNNING:
            interrupted.append(t)
            continue
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL):
            continue  # WAITING: queued again by an earlier resume, asked for before any other
        if status not in FINISHED:
            continue  # "interrupted": superseded by its re-run
        try:
            metrics = {str(k): float(v) for k, v in dict(attrs.get("metrics") or {}).items()}
            epochs = int(attrs.get("epochs", 0))
            error = str(attrs.get("error", ""))
            trial_id = str(attrs.get("ray_trial_id", t.number))
        except (TypeError, ValueError) as exc:
            raise AutostError(f"{db}: trial {t.number} has a malformed record ({exc})") from exc
        params = dict(t.params)
        try:
            config: ArchConfig | None = architecture(params)
        except Exception:  # an invalid suggestion: the trial failed with that error
            config = None
        if status != "failed" and config is None:
            raise AutostError(f"{db}: trial {t.number} records parameters of no architecture")
        finished.append(
            TrialRecord(trial_id, status, params, config, epochs, metrics, error, t.number)
        )
    return finished, interrupted


def enqueue_finalists(study: Any, count: int) -> None:
    """Queue one trial of each of ``count`` finalists that no trial of the study has tried
    (asked or queued), so that each is tried once before the sampler chooses; the sampler
    still draws their training hyperparameters. Idempotent: a resume queues only the
    finalists a crash kept from being queued."""
    tried: set[int] = set()
    for t in study.get_trials(deepcopy=False):
        params = t.system_attrs.get("fixed_params") or t.params
        if isinstance(params.get("arch"), int):
            tried.add(params["arch"])
    for arch in range(count):
        if arch not in tried:
            study.enqueue_trial({"arch": arch})


def requeue(study: Any, interrupted: Sequence[Any]) -> None:
    """Close the trials a crash interrupted and queue each again with its parameters and last
    checkpoint (so that its re-run continues from there); the re-run is its record.

    Idempotent under a crash between the two writes: a trial closed as ``interrupted`` whose
    re-run was never queued is queued by the next resume.
    """
    import optuna

    queued = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    closed = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.FAIL
        and t.user_attrs.get("status") == "interrupted"
        and t.number not in queued
    ]
    for t in interrupted:
        study._storage.set_trial_user_attr(t._trial_id, "status", "interrupted")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        closed.append(t)
    for t in closed:
        kill_point("tune-requeue")
        attrs: dict[str, Any] = {"retry_of": t.number}
        resume_from = t.user_attrs.get("checkpoint")
        if isinstance(resume_from, str):
            attrs["resume_from"] = resume_from
        study.enqueue_trial(dict(t.params), user_attrs=attrs)
