"""The short-training evaluator: the low-fidelity baseline that zero-cost proxies are measured
against (a recipe of ``kind = "short-training"``; its format is in
:mod:`autost.search.evaluator`)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from autost.errors import AutostError
from autost.model.config import ArchConfig
from autost.proxies import ReferencePool
from autost.search.evaluator import DEFAULT_DATASET, RECIPE_KINDS, Evaluator, _check_keys, _int

_SHORT_TOP_KEYS = {"kind", "description", "seed", "training", "data"}
_TRAINING_KEYS = {"steps", "epochs", "batch_size", "lr", "metric", "device"}
_SHORT_DATA_KEYS = {"dataset", "root", "options"}
#: What a short-training recipe scores by (both higher is better).
SHORT_METRICS = ("val_acc", "loss_drop")
_DEVICES = ("auto", "cpu", "cuda")


class ShortTrainingEvaluator(Evaluator):
    """A short-training recipe: each candidate trained for ``steps`` batches (or ``epochs``
    passes over the train split) from a seeded initialisation, scored by ``metric``.

    ``score`` returns ``loss_drop``, ``train_steps`` and (for ``metric = "val_acc"``)
    ``val_acc``, plus ``score``: the metric, ``-inf`` when the training diverged. The datasets
    are loaded once per evaluator. There is no reference pool: the score is absolute.
    """

    kind: ClassVar[str] = "short-training"

    def __init__(
        self,
        *,
        steps: int | None = None,
        epochs: int | None = None,
        batch_size: int = 64,
        lr: float = 5e-3,
        metric: str = "val_acc",
        device: str = "cpu",
        name: str = "<dict>",
        description: str = "",
        seed: int = 0,
        dataset: str = DEFAULT_DATASET,
        root: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            {},
            name=name,
            description=description,
            seed=seed,
            dataset=dataset,
            batch_size=batch_size,
            root=root,
            options=options,
        )
        if (steps is None) == (epochs is None):
            raise AutostError(f"{name}: training: give exactly one of steps and epochs")
        self.steps = steps
        self.epochs = epochs
        self.lr = lr
        self.metric = metric
        self.device = device
        self._data: dict[int, tuple[Any, Any, bool]] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> ShortTrainingEvaluator:
        """Validate a parsed short-training recipe; errors name ``source`` and the key."""

        def fail(key: str, message: str) -> AutostError:
            return AutostError(f"{source}: {key}: {message}")

        _check_keys(data, _SHORT_TOP_KEYS, source, "")
        training = data.get("training", {})
        table = data.get("data", {})
        for key, value in (("training", training), ("data", table)):
            if not isinstance(value, Mapping):
                raise fail(key, "must be a table")
        _check_keys(training, _TRAINING_KEYS, source, "training.")
        _check_keys(table, _SHORT_DATA_KEYS, source, "data.")
        length = {
            key: _int(training[key], f"training.{key}", source, minimum=1)
            for key in ("steps", "epochs")
            if key in training
        }
        if len(length) != 1:
            raise fail("training", "give exactly one of steps = N and epochs = N")
        lr = training.get("lr", 5e-3)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)):
            raise fail("training.lr", f"must be a number, got {lr!r}")
        if not (math.isfinite(lr) and lr > 0):
            raise fail("training.lr", f"must be finite and > 0, got {lr!r}")
        metric = training.get("metric", "val_acc")
        if metric not in SHORT_METRICS:
            raise fail(
                "training.metric", f"must be one of {', '.join(SHORT_METRICS)}, got {metric!r}"
            )
        device = training.get("device", "cpu")
        if device not in _DEVICES:
            raise fail("training.device", f"must be one of {', '.join(_DEVICES)}, got {device!r}")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise fail("description", "must be a string")
        dataset, root, options = (
            table.get("dataset", DEFAULT_DATASET),
            table.get("root"),
            table.get("options", {}),
        )
        if not isinstance(dataset, str):
            raise fail("data.dataset", f"must be a string, got {dataset!r}")
        if root is not None and not isinstance(root, str):
            raise fail("data.root", f"must be a string, got {root!r}")
        if not isinstance(options, Mapping):
            raise fail("data.options", "must be a table")
        from autost.data import list_datasets

        if dataset not in list_datasets():
            raise fail(
                "data.dataset", f"unknown dataset {dataset!r} ({', '.join(list_datasets())})"
            )
        return cls(
            **length,
            batch_size=_int(training.get("batch_size", 64), "training.batch_size", source, 1),
            lr=float(lr),
            metric=metric,
            device=device,
            name=Path(source).stem if source != "<dict>" else source,
            description=description,
            seed=_int(data.get("seed", 0), "seed", source, minimum=0),
            dataset=dataset,
            root=root,
            options=options,
        )

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a TOML/JSON-ready dict (``from_dict`` reads it back)."""
        length = {"steps": self.steps} if self.steps is not None else {"epochs": self.epochs}
        data: dict[str, Any] = {
            "kind": self.kind,
            "description": self.description,
            "seed": self.seed,
            "training": {
                **length,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "metric": self.metric,
                "device": self.device,
            },
            "data": {"dataset": self.dataset, "options": dict(self.options)},
        }
        if self.root is not None:
            data["data"]["root"] = self.root
        return data

    @property
    def proxies(self) -> list[str]:
        """None: the candidates are trained, not scored by proxies."""
        return []

    @property
    def needs_data(self) -> bool:
        return True

    @property
    def is_ensemble(self) -> bool:
        return False

    def __repr__(self) -> str:
        length = f"{self.steps} steps" if self.steps is not None else f"{self.epochs} epochs"
        return f"ShortTrainingEvaluator({self.name!r}: {self.metric} after {length})"

    def with_dataset(self, dataset: str, root: str | None = None, **options: Any) -> Evaluator:
        """A copy that trains on ``dataset`` (same training settings)."""
        data = self.to_dict()
        data["data"] = {"dataset": dataset, "options": options}
        if root is not None:
            data["data"]["root"] = root
        copy = ShortTrainingEvaluator.from_dict(data, f"{self.name} (dataset {dataset})")
        copy.name = self.name
        return copy

    def describe_score(self) -> str:
        length = f"{self.steps} steps" if self.steps is not None else f"{self.epochs} epoch(s)"
        what = (
            "validation accuracy"
            if self.metric == "val_acc"
            else "loss drop (mean loss of the first fifth of the steps minus the last fifth)"
        )
        return (
            f"score: {what} after {length} of training on {self.dataset} (AdamW lr "
            f"{self.lr:g}, batch {self.batch_size}, seed {self.seed}); higher is better"
        )

    def fit_reference(
        self, candidates: Sequence[ArchConfig] | Any, seed: int = 0, progress: bool = False
    ) -> ReferencePool:
        raise AutostError(f"evaluator {self.name!r} trains its candidates: no reference pool")

    def set_reference(self, pool: ReferencePool | str | os.PathLike[str]) -> ReferencePool:
        raise AutostError(f"evaluator {self.name!r} trains its candidates: no reference pool")

    def _datasets(self, config: ArchConfig) -> tuple[Any, Any, bool]:
        """The train and val splits for ``config`` (cached per frame count) and whether static."""
        from autost.data import dataset_info, load_dataset
        from autost.training.short import check_data

        static = dataset_info(self.dataset).kind == "static"
        steps = 1 if static else config.timesteps
        if steps not in self._data:
            splits = [
                load_dataset(self.dataset, self.root, split, timesteps=steps, **self.options)
                for split in ("train", "val")
            ]
            self._data[steps] = (splits[0], splits[1], static)
        train, val, _ = self._data[steps]
        check_data(config, train, self.dataset)
        if len(val) == 0:
            raise AutostError(f"evaluator {self.name!r}: dataset {self.dataset!r}: empty val split")
        return train, val, static

    def check_data(self, config: ArchConfig) -> None:
        """Load the train and val splits ``config`` would train on (one line if they fail)."""
        self._datasets(config)

    def raw_scores(self, config: ArchConfig) -> dict[str, float]:
        """Train ``config`` briefly; ``loss_drop``, ``train_steps`` and maybe ``val_acc``."""
        from autost.training.loop import resolve_device
        from autost.training.short import short_training

        train, val, static = self._datasets(config)
        steps = self.steps or (self.epochs or 1) * math.ceil(len(train) / self.batch_size)
        run = short_training(
            config,
            train,
            val if self.metric == "val_acc" else None,
            steps=steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            static=static,
            device=resolve_device(self.device),
        )
        scores = {"loss_drop": run.loss_drop, "train_steps": float(len(run.losses))}
        if self.metric == "val_acc":
            scores["val_acc"] = run.val_acc
        return scores

    def combine(self, raw: Mapping[str, float]) -> float:
        value = float(raw[self.metric])
        return -math.inf if math.isnan(value) else value


RECIPE_KINDS[ShortTrainingEvaluator.kind] = ShortTrainingEvaluator

__all__ = ["SHORT_METRICS", "ShortTrainingEvaluator"]
