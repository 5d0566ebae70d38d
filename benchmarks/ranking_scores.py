"""The scores of ``ranking.py``: every proxy, the ensembles and the low-fidelity baselines per
architecture, each run alone and timed in CPU seconds, cached in ``OUT/ranking_scores.csv``
(a proxy that raises is recorded as NaN with its error)."""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ranking_pools import DATASETS
from ranking_report import LOW_FIDELITY

import autost
from autost.proxies import list_proxies
from autost.search.space import SearchSpace

#: Batches per training epoch, and steps per baseline, of the ``--tiny`` smoke run.
TINY_BATCHES = 4
#: Ensembles reported beside the shipped ``zero-cost`` recipe: the candidates of its choice
#: (evaluators/zero-cost.toml says how it was made) and the previous default.
EXTRA_ENSEMBLES = ("sahd+grad_norm+flops", "sahd+flops", "sahd+flops+jacob_cov")
SCORE_HEADER = ["pool", "dataset", "arch", "name", "value", "seconds", "error"]
ScoreKey = tuple[str, str, int, str]


def read_scores(path: Path) -> dict[ScoreKey, tuple[float, float, str]]:
    """The score cache: ``(pool, dataset, arch, name) -> (oriented value, seconds, error)``;
    a later row of a key replaces an earlier one."""
    if not path.exists():
        return {}
    with path.open() as handle:
        return {
            (r["pool"], r["dataset"], int(r["arch"]), r["name"]): (
                float(r["value"]),
                float(r["seconds"]),
                r["error"],
            )
            for r in csv.DictReader(handle)
        }


class Scores:
    """Every proxy, the ``zero-cost`` ensemble and the :data:`LOW_FIDELITY` baselines of one
    dataset, per architecture, computed once and cached in ``OUT/ranking_scores.csv``.

    Each is run alone, as its own evaluator would run it (a fresh model, its own pass), and
    timed in CPU seconds of this process (``time.process_time``, all threads): unlike wall
    time, that barely depends on what else the machine runs. A proxy that raises is recorded
    as NaN with its error, and the others go on.
    """

    def __init__(
        self,
        out: Path,
        dataset: str,
        reference: int,
        mnist_root: str,
        extra_ensembles: Sequence[str] = (),
        tiny: bool = False,
    ) -> None:
        from autost.search.evaluator import Evaluator

        self.out, self.dataset, self.reference, self.tiny = out, dataset, reference, tiny
        self.spec = DATASETS[dataset]
        self.root = mnist_root if dataset == "mnist" else None
        self.path = out / "ranking_scores.csv"
        self.cache = read_scores(self.path)
        evaluator = Evaluator.load("zero-cost")
        if dataset != "digits":
            evaluator = evaluator.with_dataset(dataset, self.root, **self.spec["options"])
        self.ensemble = evaluator
        #: label -> recipe: the shipped ``zero-cost`` as ``ensemble``, and each of
        #: ``extra_ensembles`` ("a+b+c": equal weights, zero-cost's data and reference settings)
        self.ensembles: dict[str, Evaluator] = {"ensemble": evaluator}
        for label in extra_ensembles:
            data = evaluator.to_dict()
            data["proxies"] = {m: 1.0 for m in label.split("+")}
            data["description"] = f"equal-weight rank ensemble of {label}"
            self.ensembles[label] = Evaluator.from_dict(data, label)
        #: cache names carry each recipe's members and weights: a changed recipe is scored anew
        #: (an extra ensemble equal to the shipped one is reported once, as ``ensemble``)
        self.keys: dict[str, str] = {}
        for label, e in list(self.ensembles.items()):
            key = "ensemble:" + ",".join(f"{m}={w:g}" for m, w in e.weights.items())
            if key in self.keys.values():
                del self.ensembles[label]
            else:
                self.keys[label] = key

    def forget(self) -> None:
        """Ignore the cached values (``--rescore``) and the cached reference pool."""
        self.cache = {}
        (self.out / f"ranking_reference_{self.dataset}.json").unlink(missing_ok=True)

    def _record(self, key: ScoreKey, value: float, seconds: float, error: str = "") -> None:
        new_file = not self.path.exists() or not self.path.stat().st_size
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, SCORE_HEADER)
            if new_file:
                writer.writeheader()
            row = dict(zip(SCORE_HEADER[:4], key, strict=True))
            error = error.replace("\n", " ")[:300]
            text = f"{seconds:.4f}"
            writer.writerow({**row, "value": repr(value), "seconds": text, "error": error})
            handle.flush()
            os.fsync(handle.fileno())
        self.cache[key] = (value, float(text), error)  # as a resumed run reads it back

    def _value(self, name: str, cfg: autost.ArchConfig, baselines: dict[str, Any]) -> float:
        """The oriented value of ``name`` for ``cfg``, run alone."""
        from autost.proxies import ProxyContext, get_proxy

        for label, key in self.keys.items():
            if name == key:
                return float(self.ensembles[label].score(cfg)["score"])
        if name in baselines:
            return float(baselines[name].score(cfg)["score"])
        raw = ProxyContext(cfg, self.ensemble.batch(cfg), seed=0).score([name])[name]
        return get_proxy(name).oriented(raw)

    def fill(self, pool_name: str, configs: list[autost.ArchConfig]) -> None:
        """Compute what the cache lacks for ``configs`` of pool ``pool_name``: each value and
        its CPU seconds, NaN and the error for one that raises."""
        from autost.search.evaluator import Evaluator

        names = [*list_proxies(), *self.keys.values(), *LOW_FIDELITY]
        baselines: dict[str, Any] = {name: Evaluator.load(name) for name in LOW_FIDELITY}
        if self.tiny:  # the smoke run: the same code paths, a few steps
            for baseline in baselines.values():
                baseline.steps, baseline.epochs = TINY_BATCHES, None
        if self.dataset != "digits":
            baselines = {
                name: evaluator.with_dataset(self.dataset, self.root, **self.spec["options"])
                for name, evaluator in baselines.items()
            }
        for i, cfg in enumerate(configs):
            cfg = cfg.replace(image_size=self.spec["image_size"])
            missing = [n for n in names if (pool_name, self.dataset, i, n) not in self.cache]
            if not missing:
                continue
            self.ensemble.batch(cfg)  # loaded (and cached) outside the timings
            if set(self.keys.values()) & set(missing):
                self._reference()
            for name in missing:
                start = time.process_time()
                try:
                    value, error = self._value(name, cfg, baselines), ""
                except Exception as exc:
                    value, error = math.nan, f"{type(exc).__name__}: {exc}"
                    print(f"{pool_name} {self.dataset} arch {i}: {name} failed: {error}")
                seconds = time.process_time() - start
                self._record((pool_name, self.dataset, i, name), value, seconds, error)
            print(f"{pool_name} {self.dataset} arch {i}: scored", flush=True)

    def _reference(self) -> None:
        """The ensembles' reference pool: ``reference`` digits-space samples drawn with seed 0
        (not an evaluation pool), scored by every member of every ensemble, saved as
        ``OUT/ranking_reference_<dataset>.json`` (fitted again when it lacks a member)."""
        from autost.proxies.ensemble import ReferencePool
        from autost.search.evaluator import Evaluator

        if all(e.reference is not None for e in self.ensembles.values()):
            return
        members = {m: 1.0 for e in self.ensembles.values() for m in e.weights}
        path = self.out / f"ranking_reference_{self.dataset}.json"
        pool = ReferencePool.load(path) if path.exists() else None
        if pool is None or pool.size != self.reference or set(members) - set(pool.values):
            data = self.ensemble.to_dict()
            data["proxies"] = members
            union = Evaluator.from_dict(data, "reference of every ensemble")
            space = SearchSpace.load("digits")
            rng = np.random.default_rng(0)
            size = self.spec["image_size"]
            drawn = [space.sample(rng).replace(image_size=size) for _ in range(self.reference)]
            pool = union.fit_reference(drawn)
            pool.save(path)
        for evaluator in self.ensembles.values():
            evaluator.set_reference(pool)

    def table(
        self, pool_name: str, n: int
    ) -> tuple[dict[str, list[float]], dict[str, float], list[str]]:
        """Per name (every proxy scored for all ``n`` architectures, ``ensemble``, the
        baselines), the oriented values; the median CPU seconds per candidate of each; the
        failures, one line each."""
        labels = {key: label for label, key in self.keys.items()}
        names = [
            name
            for name in [*list_proxies(), *labels, *LOW_FIDELITY]
            if all((pool_name, self.dataset, i, name) in self.cache for i in range(n))
        ]
        values: dict[str, list[float]] = {}
        seconds: dict[str, float] = {}
        failures = []
        for name in names:
            rows = [self.cache[(pool_name, self.dataset, i, name)] for i in range(n)]
            label = labels.get(name, name)
            values[label] = [r[0] for r in rows]
            seconds[label] = float(np.median([r[1] for r in rows]))
            failures += [
                f"{pool_name} {self.dataset} arch {i}: {label}: {r[2]}"
                for i, r in enumerate(rows)
                if r[2]
            ]
        return values, seconds, failures
