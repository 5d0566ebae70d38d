"""Zero-cost evaluator recipes: which proxies with which weights, on which batch.

A recipe is a TOML file, shipped in ``evaluators/`` (addressable by name) or given as a path::

    description = "SNASNet's SAHD alone"
    seed = 0                 # torch.manual_seed before building each candidate

    [proxies]                # proxy name = weight (> 0); see autost.proxies.list_proxies()
    sahd = 1.0

    [data]                   # read only when a proxy needs data
    dataset = "digits"       # autost.data.list_datasets()
    split = "train"
    batch_size = 64
    seed = 0                 # which samples form the one fixed batch
    max_timesteps = 2        # optional: the proxies that read the batch run the candidate
                             # with at most this many timesteps (data-free ones, e.g. flops,
                             # see it whole); 0 or absent: the candidate's own
    root = "..."             # optional dataset folder
    options = {}             # extra load_dataset options

    [reference]              # only for ensembles (several proxies)
    size = 64                # candidates in the reference pool
    space = "digits"         # optional: search space (name or path) the pool is drawn from
    seed = 0                 # which candidates are drawn

:meth:`Evaluator.score` returns every proxy's raw value plus ``score``, higher is better: with
one proxy ``sign * raw``; with several, the weighted mean of the candidate's percentiles in a
fixed :class:`~autost.proxies.ReferencePool`. The pool is set explicitly
(:meth:`Evaluator.fit_reference` on a search space or configs, :meth:`Evaluator.set_reference`
with a saved pool) or, failing that, drawn on first use from ``reference.space`` with
``reference.seed``. Either way it never changes afterwards, so scores do not drift as a search
proceeds; a deterministic draw gives the same pool on resume, and saving it
(``evaluator.reference.save(path)``) makes resume exact across machines and saves its cost.

A recipe of ``kind = "short-training"`` (:class:`ShortTrainingEvaluator`) is the low-fidelity
baseline a zero-cost proxy is measured against: every candidate is trained for a few steps
(:func:`autost.training.short.short_training`) and scored by what that training measured::

    kind = "short-training"
    description = "Validation accuracy after one epoch"
    seed = 0                 # weights and batch order

    [training]
    epochs = 1               # or steps = N (exactly one of them)
    batch_size = 64
    lr = 5e-3                # AdamW, constant
    metric = "val_acc"       # or "loss_drop": mean loss of the first fifth of the steps
                             # minus that of the last fifth (no validation pass)
    device = "cpu"           # auto | cpu | cuda

    [data]
    dataset = "digits"       # its train split trains, its val split validates
    root = "..."             # optional
    options = {}
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from autost.errors import AutostError, UnknownNameError
from autost.model.config import ArchConfig
from autost.proxies import ReferencePool, get_proxy, score_all
from autost.runtime.faults import kill_point

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_DATASET = "digits"
_TOP_KEYS = {"kind", "description", "seed", "proxies", "data", "reference"}
KINDS = ("zero-cost", "short-training")
#: The classes of the recipe kinds other than ``zero-cost``: ``kind -> class`` with
#: ``from_dict(data, source)``. :mod:`autost.search.short_evaluator` registers
#: ``short-training`` (``autost.search`` imports it), so this module does not import it.
RECIPE_KINDS: dict[str, Any] = {}
_DATA_KEYS = {"dataset", "split", "batch_size", "seed", "max_timesteps", "root", "options"}
_REFERENCE_KEYS = {"size", "space", "seed"}


def shipped_recipes() -> dict[str, Any]:
    """``name -> resource`` of the recipes shipped in ``autost.evaluators`` (or ``evaluators/``)."""
    from importlib import resources

    try:
        base: Any = resources.files("autost.evaluators")
    except ModuleNotFoundError:
        base = Path(__file__).resolve().parents[1] / "evaluators"
        if not base.is_dir():
            return {}
    return {e.name[: -len(".toml")]: e for e in base.iterdir() if e.name.endswith(".toml")}


def list_evaluators() -> list[str]:
    """Names of the shipped evaluator recipes."""
    return sorted(shipped_recipes())


class Evaluator:
    """A zero-cost evaluator recipe; build with :meth:`load` or :meth:`from_dict` (which give a
    :class:`ShortTrainingEvaluator` for a recipe of ``kind = "short-training"``)."""

    kind: ClassVar[str] = "zero-cost"

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        name: str = "<dict>",
        description: str = "",
        seed: int = 0,
        dataset: str = DEFAULT_DATASET,
        split: str = "train",
        batch_size: int = 64,
        data_seed: int = 0,
        max_timesteps: int = 0,
        root: str | None = None,
        options: Mapping[str, Any] | None = None,
        reference_size: int = 64,
        reference_space: str | None = None,
        reference_seed: int = 0,
    ) -> None:
        self.weights = dict(weights)
        self.name = name
        self.description = description
        self.seed = seed
        self.dataset = dataset
        self.split = split
        self.batch_size = batch_size
        self.data_seed = data_seed
        self.max_timesteps = max_timesteps
        self.root = root
        self.options = dict(options or {})
        self.reference_size = reference_size
        self.reference_space = reference_space
        self.reference_seed = reference_seed
        self.reference: ReferencePool | None = None
        self._batches: dict[int, tuple[Tensor, Tensor]] = {}

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str]) -> Evaluator:
        """A shipped recipe by name (``autost.search.evaluator.list_evaluators()``), a TOML path, or
        a JSON file of :meth:`to_dict` (what a search run with ``root``/options scores with)."""
        path = Path(name_or_path)
        if path.suffix in (".toml", ".json") or path.exists():
            try:
                text, source = path.read_text(encoding="utf-8"), str(path)
            except OSError as exc:
                raise AutostError(f"cannot read evaluator file {path}: {exc.strerror}") from exc
        else:
            shipped = shipped_recipes()
            key = str(name_or_path)
            if key not in shipped:
                import difflib

                close = difflib.get_close_matches(key, list(shipped), n=3, cutoff=0.4)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise AutostError(
                    f"unknown evaluator {key!r}{hint} "
                    f"(shipped: {', '.join(sorted(shipped))}; or pass a .toml path)"
                )
            text, source = shipped[key].read_text(encoding="utf-8"), f"evaluators/{key}.toml"
        if path.suffix == ".json":  # a recipe as to_dict() writes it (a search run's own)
            import json

            try:
                data = json.loads(text)
            except ValueError as exc:
                raise AutostError(f"{source}: malformed JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise AutostError(f"{source}: expected a JSON object (a recipe)")
            return cls.from_dict(data, source)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AutostError(f"{source}: malformed TOML: {exc}") from exc
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Evaluator:
        """Validate a parsed recipe; errors name ``source`` and the offending key."""

        def fail(key: str, message: str) -> AutostError:
            return AutostError(f"{source}: {key}: {message}")

        kind = data.get("kind", "zero-cost")
        if kind != "zero-cost" and kind in RECIPE_KINDS:
            built: Evaluator = RECIPE_KINDS[kind].from_dict(data, source)
            return built
        if kind not in KINDS:
            raise fail("kind", f"unknown kind {kind!r} (choices: {', '.join(KINDS)})")
        _check_keys(data, _TOP_KEYS, source, "")
        proxies = data.get("proxies")
        if not isinstance(proxies, Mapping) or not proxies:
            raise fail("proxies", "needs a [proxies] table with at least one 'name = weight'")
        weights: dict[str, float] = {}
        for key, weight in proxies.items():
            try:
                get_proxy(key)
            except UnknownNameError as exc:
                raise fail(f"proxies.{key}", str(exc)) from None
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise fail(f"proxies.{key}", f"weight must be a number, got {weight!r}")
            if not (math.isfinite(weight) and weight > 0):
                raise fail(f"proxies.{key}", f"weight must be finite and > 0, got {weight!r}")
            weights[key] = float(weight)
        description = data.get("description", "")
        if not isinstance(description, str):
            raise fail("description", "must be a string")
        seed = _int(data.get("seed", 0), "seed", source, minimum=0)

        table = data.get("data", {})
        if not isinstance(table, Mapping):
            raise fail("data", "must be a table")
        _check_keys(table, _DATA_KEYS, source, "data.")
        dataset = table.get("dataset", DEFAULT_DATASET)
        split = table.get("split", "train")
        root = table.get("root")
        options = table.get("options", {})
        for key, value in (("dataset", dataset), ("split", split)):
            if not isinstance(value, str):
                raise fail(f"data.{key}", f"must be a string, got {value!r}")
        if root is not None and not isinstance(root, str):
            raise fail("data.root", f"must be a string, got {root!r}")
        if not isinstance(options, Mapping):
            raise fail("data.options", "must be a table")
        evaluator = cls(
            weights,
            name=Path(source).stem if source != "<dict>" else source,
            description=description,
            seed=seed,
            dataset=dataset,
            split=split,
            batch_size=_int(table.get("batch_size", 64), "data.batch_size", source, minimum=1),
            data_seed=_int(table.get("seed", 0), "data.seed", source, minimum=0),
            max_timesteps=_int(
                table.get("max_timesteps", 0), "data.max_timesteps", source, minimum=0
            ),
            root=root,
            options=options,
            **_reference(data, source),
        )
        if evaluator.needs_data:
            from autost.data import list_datasets

            known = list_datasets()
            if dataset not in known:
                raise fail("data.dataset", f"unknown dataset {dataset!r} ({', '.join(known)})")
        return evaluator

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a TOML/JSON-ready dict (``from_dict`` reads it back)."""
        data: dict[str, Any] = {
            "description": self.description,
            "seed": self.seed,
            "proxies": dict(self.weights),
            "data": {
                "dataset": self.dataset,
                "split": self.split,
                "batch_size": self.batch_size,
                "seed": self.data_seed,
                "options": dict(self.options),
            },
            "reference": {"size": self.reference_size, "seed": self.reference_seed},
        }
        if self.max_timesteps:  # absent when unset: older recipes keep their dict (and pools)
            data["data"]["max_timesteps"] = self.max_timesteps
        if self.reference_space is not None:
            data["reference"]["space"] = self.reference_space
        if self.root is not None:
            data["data"]["root"] = self.root
        return data

    # ------------------------------------------------------------------ properties
    @property
    def proxies(self) -> list[str]:
        """The recipe's proxy names, in file order."""
        return list(self.weights)

    @property
    def needs_data(self) -> bool:
        """Whether any proxy reads a batch of the dataset."""
        return any(get_proxy(n).needs_data for n in self.weights)

    @property
    def is_ensemble(self) -> bool:
        """Whether the combined score ranks several proxies (and needs a reference pool)."""
        return len(self.weights) > 1

    def __repr__(self) -> str:
        weights = ", ".join(f"{k}={v:g}" for k, v in self.weights.items())
        return f"Evaluator({self.name!r}: {weights})"

    # ------------------------------------------------------------------ data
    def batch(self, config: ArchConfig) -> tuple[Tensor, Tensor]:
        """One fixed batch ``(x [T, B, C, H, W], y [B])`` for ``config``'s timesteps (cached per T).

        The same ``data.seed`` picks the same samples for every T.
        """
        steps = config.timesteps
        if steps not in self._batches:
            from autost.data import load_dataset

            ds = load_dataset(
                self.dataset, root=self.root, split=self.split, timesteps=steps, **self.options
            )
            if len(ds) == 0:
                raise AutostError(f"evaluator {self.name!r}: dataset {self.dataset!r} is empty")
            gen = torch.Generator().manual_seed(self.data_seed)
            picks = torch.randperm(len(ds), generator=gen)[: self.batch_size].tolist()
            items = [ds[i] for i in picks]
            x = torch.stack([torch.as_tensor(item[0]) for item in items], dim=1).float()
            y = torch.tensor([int(item[1]) for item in items], dtype=torch.long)
            self._batches[steps] = (x.contiguous(), y)
        x, y = self._batches[steps]
        expected = (config.in_channels, config.image_size, config.image_size)
        if tuple(x.shape[2:]) != expected:
            raise AutostError(
                f"evaluator {self.name!r}: dataset {self.dataset!r} gives inputs "
                f"{list(x.shape[2:])}, the architecture expects {list(expected)} "
                "(set [data] dataset/options in the recipe, or the config's in_channels/image_size)"
            )
        return x, y

    def check_data(self, config: ArchConfig) -> None:
        """Read the data ``config`` would be scored with, so that missing files or a shape
        that does not fit fail now (before a run writes anything), with one line."""
        if self.needs_data:
            self.batch(self.data_config(config))

    def data_config(self, config: ArchConfig) -> ArchConfig:
        """The candidate the data proxies run: ``config`` with its timesteps capped at
        ``data.max_timesteps`` (``config`` itself when there is no cap or it is within it)."""
        if self.max_timesteps and config.timesteps > self.max_timesteps:
            return config.replace(timesteps=self.max_timesteps)
        return config

    # ------------------------------------------------------------------ scoring
    def raw_scores(self, config: ArchConfig) -> dict[str, float]:
        """Raw values of every proxy of the recipe for ``config`` (the data proxies on
        :meth:`data_config`, the others on ``config`` as it is)."""
        if not self.needs_data:
            return score_all(config, self.proxies, seed=self.seed)
        capped = self.data_config(config)
        if capped is config:
            return score_all(config, self.proxies, batch=self.batch(config), seed=self.seed)
        on_data = [n for n in self.proxies if get_proxy(n).needs_data]
        raw = score_all(capped, on_data, batch=self.batch(capped), seed=self.seed)
        rest = [n for n in self.proxies if n not in raw]
        if rest:
            raw.update(score_all(config, rest, seed=self.seed))
        return {n: raw[n] for n in self.proxies}

    def combine(self, raw: Mapping[str, float]) -> float:
        """The combined, higher-is-better score of raw proxy values."""
        if not self.is_ensemble:
            (name,) = self.weights
            value = get_proxy(name).oriented(raw[name])
            return -math.inf if math.isnan(value) else value
        if self.reference is None:
            if self.reference_space is None:
                raise AutostError(
                    f"evaluator {self.name!r} ranks {len(self.weights)} proxies against a "
                    "reference pool: set [reference] space in the recipe, call "
                    "fit_reference(space_or_configs), or set_reference(saved_pool)"
                )
            from autost.search.space import SearchSpace

            self.fit_reference(SearchSpace.load(self.reference_space), seed=self.reference_seed)
            assert self.reference is not None
        return self.reference.score(raw, self.weights)

    def describe_score(self) -> str:
        """What ``score`` means for this recipe, in one line (e.g. under a leaderboard)."""
        if not self.is_ensemble:
            (name,) = self.weights
            proxy = get_proxy(name)
            doc = (type(proxy).__doc__ or "").strip().splitlines()
            summary = re.sub(r"\s*\((higher|lower) is better\)", "", doc[0] if doc else name)
            summary = summary.rstrip(".")
            if proxy.sign > 0:
                return f"score: {name} ({summary}); higher is better"
            return f"score: -{name} ({name}: {summary}; lower is better), so higher is better"
        equal = len(set(self.weights.values())) == 1
        parts = self.proxies if equal else [f"{n} x{w:g}" for n, w in self.weights.items()]
        size = self.reference.size if self.reference is not None else self.reference_size
        # the leaderboard's order among equal scores (autost.search.study.rank_leaderboard)
        ties = sorted(self.weights, key=lambda name: -self.weights[name])
        return (
            f"score: {self.name} rank ensemble of {', '.join(parts)} "
            f"({'mean' if equal else 'weighted mean'} percentile among {size} reference "
            f"candidates, 0 to 1; higher is better); equal scores are ordered by "
            f"{', then '.join(ties)} (the better raw value first), then by candidate key"
        )

    def score(self, config: ArchConfig) -> dict[str, float]:
        """Every proxy's raw value for ``config`` and the combined ``score`` (higher is better)."""
        raw = self.raw_scores(config)
        return {**raw, "score": self.combine(raw)}

    # ------------------------------------------------------------------ reference pool
    def set_reference(self, pool: ReferencePool | str | os.PathLike[str]) -> ReferencePool:
        """Use ``pool`` (or the JSON file it names); it must hold every proxy of the recipe."""
        if not isinstance(pool, ReferencePool):
            pool = ReferencePool.load(pool)
        missing = [n for n in self.weights if n not in pool.values]
        if missing:
            raise AutostError(
                f"evaluator {self.name!r}: reference pool lacks proxies {', '.join(missing)}"
            )
        self.reference = pool
        return pool

    def with_dataset(self, dataset: str, root: str | None = None, **options: Any) -> Evaluator:
        """A copy that reads ``dataset`` (same split, batch size and seeds).

        The copy has no reference pool (its values depend on the data) and, for another
        dataset, no ``reference.space`` either: fit one on the searched space instead.
        """
        data = self.to_dict()
        data["data"].update(dataset=dataset, options=options)
        data["data"].pop("root", None)
        if root is not None:
            data["data"]["root"] = root
        if dataset != self.dataset:
            data["reference"].pop("space", None)
        copy = Evaluator.from_dict(data, f"{self.name} (dataset {dataset})")
        copy.name = self.name
        return copy

    def fit_reference(
        self, candidates: Sequence[ArchConfig] | Any, seed: int = 0, progress: bool = False
    ) -> ReferencePool:
        """Score a reference pool and use it.

        ``candidates`` is a sequence of configs, or a search space (anything with
        ``sample(rng)``) from which ``reference.size`` candidates are drawn with ``seed``;
        ``progress`` shows a progress bar on stderr while they are scored.
        """
        if hasattr(candidates, "sample"):
            rng = np.random.default_rng(seed)
            configs = [candidates.sample(rng) for _ in range(self.reference_size)]
        else:
            configs = list(candidates)
        if not configs:
            raise AutostError("a reference pool needs at least one candidate")
        from autost.training.progress import progress_bar

        rows = []
        with progress_bar(
            len(configs), desc="reference pool", unit="cand", enabled=progress
        ) as bar:
            for cfg in configs:
                rows.append(self.raw_scores(cfg))
                kill_point("search-reference-candidate")
                bar.update(1)
        pool = ReferencePool.from_rows(
            rows, self.proxies, evaluator=self.name, recipe=self.to_dict(),
            draw_seed=seed, configs=[cfg.to_dict() for cfg in configs],
        )  # fmt: skip
        return self.set_reference(pool)


def _check_keys(table: Mapping[str, Any], allowed: set[str], source: str, prefix: str) -> None:
    for key in table:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            choices = ", ".join(sorted(allowed))
            raise AutostError(f"{source}: {prefix}{key}: unknown key{hint} (allowed: {choices})")


def _int(value: Any, key: str, source: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AutostError(f"{source}: {key}: must be an integer >= {minimum}, got {value!r}")
    return value


def _reference(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    table = data.get("reference", {})
    if not isinstance(table, Mapping):
        raise AutostError(f"{source}: reference: must be a table")
    _check_keys(table, _REFERENCE_KEYS, source, "reference.")
    space = table.get("space")
    if space is not None and not isinstance(space, str):
        raise AutostError(f"{source}: reference.space: must be a string, got {space!r}")
    return {
        "reference_size": _int(table.get("size", 64), "reference.size", source, minimum=1),
        "reference_space": space,
        "reference_seed": _int(table.get("seed", 0), "reference.seed", source, minimum=0),
    }


__all__ = [
    "KINDS",
    "RECIPE_KINDS",
    "Evaluator",
    "list_evaluators",
    "shipped_recipes",
]
