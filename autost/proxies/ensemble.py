"""Rank ensembles of proxies: over a pool (:func:`rank_aggregate`) and, for online search,
against a fixed, persisted reference pool (:class:`ReferencePool`).

Every value is first *oriented*, ``sign * raw`` (higher is better). Non-finite values are
ranked explicitly: ``-inf < every finite value < +inf``, and NaN counts as ``-inf``. So the
log-determinant of a singular kernel (``-inf``) ranks last, an overflowed synflow (``+inf``)
first, an overflowed ``sops`` (sign -1) last; nothing raises.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from autost.errors import AutostError
from autost.proxies.base import get_proxy


def orient(name: str, values: Sequence[float]) -> np.ndarray:
    """``sign * values`` for proxy ``name`` as float64, NaN replaced by ``-inf``."""
    out = get_proxy(name).sign * np.asarray(values, dtype=np.float64)
    out[np.isnan(out)] = -np.inf
    return out


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validated weights: known proxies, finite and > 0, at least one."""
    if not weights:
        raise AutostError("an ensemble needs at least one proxy weight")
    out: dict[str, float] = {}
    for name, weight in weights.items():
        get_proxy(name)  # unknown names raise with close matches
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise AutostError(f"weight of {name!r} must be a number, got {weight!r}")
        if not (math.isfinite(weight) and weight > 0):
            raise AutostError(f"weight of {name!r} must be finite and > 0, got {weight!r}")
        out[name] = float(weight)
    return out


def normalised_ranks(oriented: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank) mapped to [0, 1]; 1 is the best.

    A pool of one gets 0.5.
    """
    from scipy.stats import rankdata

    n = len(oriented)
    if n == 1:
        return np.full(1, 0.5)
    return (rankdata(oriented, method="average") - 1.0) / (n - 1)


def rank_aggregate(
    scores: Mapping[str, Sequence[float]], weights: Mapping[str, float]
) -> list[float]:
    """Weighted mean of each candidate's normalised rank per proxy over a pool.

    ``scores[name]`` holds the raw values of proxy ``name`` for the pool's candidates (all the
    same length); ``weights[name]`` > 0 selects and weights the proxies. Returns one value in
    [0, 1] per candidate, higher is better.
    """
    weights = check_weights(weights)
    missing = sorted(set(weights) - set(scores))
    if missing:
        raise AutostError(f"no scores for weighted proxies {', '.join(missing)}")
    lengths = {len(scores[name]) for name in weights}
    if len(lengths) > 1:
        raise AutostError(f"proxy score lists differ in length: {sorted(lengths)}")
    n = lengths.pop()
    total = np.zeros(n)
    for name, weight in weights.items():
        if n:
            total += weight * normalised_ranks(orient(name, scores[name]))
    return (total / sum(weights.values())).tolist()


def _encode(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # "inf", "-inf", "nan"


def _decode(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AutostError(f"reference pool: not a number: {value!r}")
    try:
        return float(value)
    except ValueError:
        raise AutostError(f"reference pool: not a number: {value!r}") from None


@dataclass(frozen=True)
class ReferencePool:
    """Raw proxy values of a fixed set of reference candidates, and percentile scores in it.

    ``score(raw, weights)`` is the weighted mean of the candidate's oriented *mid-rank
    percentile* per proxy, ``(#{ref < v} + 0.5 #{ref == v}) / n``, in [0, 1]. The pool never
    changes during a search, so a candidate's score does not depend on what else was scored
    and a resumed search reproduces it exactly. ``to_dict``/``from_dict`` and ``save``/``load``
    round-trip through plain JSON (non-finite values as the strings ``"inf"``, ``"-inf"``,
    ``"nan"``); ``meta`` carries provenance (recipe, seed, ...).
    """

    values: Mapping[str, tuple[float, ...]]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = {len(v) for v in self.values.values()}
        if not self.values or len(sizes) != 1 or 0 in sizes:
            raise AutostError(
                "a reference pool needs the same, non-zero number of values per proxy"
            )
        for name in self.values:
            get_proxy(name)

    @classmethod
    def from_rows(
        cls, rows: Sequence[Mapping[str, float]], names: Sequence[str], **meta: Any
    ) -> ReferencePool:
        """A pool from per-candidate results (dicts with a value for every proxy in ``names``)."""
        return cls({n: tuple(float(row[n]) for row in rows) for n in names}, dict(meta))

    @property
    def size(self) -> int:
        """Number of reference candidates."""
        return len(next(iter(self.values.values())))

    @cached_property
    def _sorted(self) -> dict[str, np.ndarray]:
        return {name: np.sort(orient(name, vals)) for name, vals in self.values.items()}

    def percentile(self, name: str, raw: float) -> float:
        """Oriented mid-rank percentile of ``raw`` among the pool's values of proxy ``name``."""
        if name not in self.values:
            raise AutostError(
                f"the reference pool has no values for proxy {name!r} "
                f"(it has {', '.join(sorted(self.values))})"
            )
        ref = self._sorted[name]
        value = orient(name, [raw])[0]
        below = np.searchsorted(ref, value, side="left")
        upto = np.searchsorted(ref, value, side="right")
        return float(below + 0.5 * (upto - below)) / len(ref)

    def score(self, raw: Mapping[str, float], weights: Mapping[str, float]) -> float:
        """Weighted mean of the percentiles of ``raw[name]`` for every weighted proxy."""
        weights = check_weights(weights)
        total = sum(w * self.percentile(name, raw[name]) for name, w in weights.items())
        return total / sum(weights.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "values": {name: [_encode(v) for v in vals] for name, vals in self.values.items()},
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferencePool:
        """Inverse of :meth:`to_dict`."""
        values = data.get("values") if isinstance(data, Mapping) else None
        if not isinstance(values, Mapping):
            raise AutostError("reference pool: expected a mapping with a 'values' table")
        decoded = {}
        for name, vals in values.items():
            if not isinstance(vals, Sequence) or isinstance(vals, str):
                raise AutostError(f"reference pool: values of {name!r} must be a list")
            decoded[str(name)] = tuple(_decode(v) for v in vals)
        return cls(decoded, dict(data.get("meta") or {}))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the pool as JSON, atomically."""
        from autost.io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferencePool:
        """Read a pool written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise AutostError(f"cannot read reference pool {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise AutostError(f"{path}: malformed reference pool JSON: {exc}") from exc
        return cls.from_dict(data)
