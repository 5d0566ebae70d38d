"""The parts of a search space file: its dimensions (one searched config field each) and its
constraints (an analytic metric, or measured latency, against a bound), parsed and checked
value by value."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from autost.errors import AutostError, ConfigError
from autost.model.config import PER_LAYER_FIELDS, check_field, check_layer_entry

METRICS = ("params", "macs", "matmul_macs", "flops", "sops", "energy_mj", "latency")
#: Metrics measured on this machine rather than computed from the config.
MEASURED = ("latency",)
#: ``latency`` bounds in milliseconds: the units it may be written in.
LATENCY_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
}
_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|==|<|>)\s*([-+0-9.eE_]+?)\s*([A-Za-z]*)\s*$")
#: Ranges with more values than this are checked at their ends only.
_MAX_CHECKED_VALUES = 10_000


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, e.g. ``params <= 12e6`` or ``latency <= 20ms`` (latency: measured
    by :func:`autost.model.latency.measure_latency`, in ms; ``us``, ``ms`` or ``s``)."""

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``'params<=12e6'``; raises :class:`AutostError` naming the problem."""
        match = _CONSTRAINT.match(str(text))
        if not match:
            raise AutostError(
                f"bad constraint {text!r}: expected '<metric> <op> <number>' with op one of "
                f"<=, >=, <, >, == and metric one of {', '.join(METRICS)}"
            )
        metric, op, number, unit = match.groups()
        if metric not in METRICS:
            raise AutostError(
                f"bad constraint {text!r}: unknown metric {metric!r} "
                f"(choices: {', '.join(METRICS)})"
            )
        try:
            bound = float(number.replace("_", ""))
        except ValueError:
            raise AutostError(f"bad constraint {text!r}: {number!r} is not a number") from None
        if metric == "latency":
            if unit not in LATENCY_UNITS:
                raise AutostError(
                    f"bad constraint {text!r}: latency needs a unit, one of "
                    f"{', '.join(LATENCY_UNITS)} (e.g. latency<=20ms), got {unit or 'none'!r}"
                )
            bound *= LATENCY_UNITS[unit]
        elif unit:
            raise AutostError(f"bad constraint {text!r}: {metric} takes no unit, got {unit!r}")
        return cls(metric, op, bound)

    def holds(self, metrics: Mapping[str, float]) -> bool:
        """Whether the constraint is met by ``metrics``."""
        return _OPS[self.op](metrics[self.metric], self.bound)

    def __str__(self) -> str:
        unit = "ms" if self.metric == "latency" else ""
        return f"{self.metric}{self.op}{self.bound:g}{unit}"


@dataclass(frozen=True)
class Dimension:
    """One searched field: a choice list or an int/float range with a step."""

    name: str
    kind: str
    choices: tuple[Any, ...] = ()
    low: float = 0
    high: float = 0
    step: float | None = None
    per_layer: bool = False

    def values(self) -> tuple[Any, ...]:
        """Every value (ranges enumerated by their step; continuous floats have none)."""
        if self.kind == "choice":
            return self.choices
        if self.kind == "int":
            return tuple(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise AutostError(f"dimension {self.name!r} is continuous and cannot be enumerated")
        n = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return tuple(round(self.low + i * self.step, 12) for i in range(n))

    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn uniformly."""
        if self.kind == "float" and self.step is None:
            return float(rng.uniform(self.low, self.high))
        values = self.values()
        return _plain(values[int(rng.integers(len(values)))])

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this dimension."""
        if self.kind == "float" and self.step is None:
            return isinstance(value, (int, float)) and self.low <= value <= self.high
        return any(_same(value, v) for v in self.values())

    def optuna(self) -> Any:
        """The equivalent Optuna distribution."""
        import optuna.distributions as od

        if self.kind == "choice":
            return od.CategoricalDistribution([_plain(c) for c in self.choices])
        if self.kind == "int":
            return od.IntDistribution(int(self.low), int(self.high), step=int(self.step or 1))
        return od.FloatDistribution(self.low, self.high, step=self.step)

    def ray(self) -> Any:
        """The equivalent Ray Tune search-space object."""
        from ray import tune

        if self.kind == "choice":
            return tune.choice([_plain(c) for c in self.choices])
        if self.kind == "int":
            return tune.choice(list(self.values()))
        if self.step is None:
            return tune.uniform(self.low, self.high)
        return tune.quniform(self.low, self.high, self.step)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _parse_dimension(name: str, spec: Any, source: str) -> Dimension:
    where = f"{source}: dimensions.{name}"
    if not isinstance(spec, Mapping):
        raise AutostError(f"{where} must be a table")
    kind = spec.get("type", "choice" if "choices" in spec else None)
    per_layer = bool(spec.get("per_layer", False))
    if per_layer and name not in PER_LAYER_FIELDS:
        raise AutostError(f"{where}: only {', '.join(PER_LAYER_FIELDS)} can be per_layer")
    if kind == "choice":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise AutostError(f"{where}: 'choices' must be a non-empty list")
        kinds = sorted({_kind(c) for c in choices})
        if len(kinds) > 1:
            raise AutostError(
                f"{where}: choices mix types ({' and '.join(kinds)}): {choices!r}; "
                "give values of one type"
            )
        return Dimension(name, "choice", tuple(choices), per_layer=per_layer)
    if kind in ("int", "float"):
        try:
            low, high = float(spec["low"]), float(spec["high"])
        except (KeyError, TypeError, ValueError):
            raise AutostError(f"{where}: {kind} ranges need numeric 'low' and 'high'") from None
        step = spec.get("step", 1 if kind == "int" else None)
        if step is not None and (not isinstance(step, (int, float)) or step <= 0):
            raise AutostError(f"{where}: 'step' must be > 0")
        if high < low:
            raise AutostError(f"{where}: empty range (low {low:g} > high {high:g})")
        if kind == "int" and not (low.is_integer() and high.is_integer()):
            raise AutostError(f"{where}: int ranges need integer bounds")
        return Dimension(
            name,
            kind,
            low=low,
            high=high,
            step=None if step is None else float(step),
            per_layer=per_layer,
        )
    raise AutostError(f"{where}: 'type' must be 'choice', 'int' or 'float'")


def _kind(value: Any) -> str:
    """The TOML kind of a value, for the mixed-types check (ints and floats are numbers)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "table"
    return type(value).__name__


def _values_to_check(dim: Dimension) -> tuple[Any, ...]:
    """The values of ``dim`` to check one by one (ranges too long to list: their ends)."""
    if dim.kind == "choice":
        return dim.choices
    ends = (int(dim.low), int(dim.high)) if dim.kind == "int" else (dim.low, dim.high)
    if dim.step is None or (dim.high - dim.low) / dim.step >= _MAX_CHECKED_VALUES:
        return ends
    return dim.values()


def _check_value(name: str, value: Any, where: str, entry: bool = False) -> None:
    """Refuse a value that no candidate could use, naming the field and the reason; ``entry``:
    ``value`` is one layer's entry of a per-layer field."""
    try:
        if entry:
            if isinstance(value, (list, Mapping)):
                raise ConfigError(name, f"a per_layer choice is one layer's value, got {value!r}")
            check_layer_entry(name, value)
        else:
            check_field(name, value)
    except ConfigError as exc:
        detail = str(exc).removeprefix(f"{exc.field}: ")
        raise AutostError(f"{where}.{exc.field}: {detail}") from None
