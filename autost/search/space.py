"""``SearchSpace``: declarative (TOML) spaces of spiking transformers.

A space file has a ``[space]`` table (name, description), ``[fixed]`` config fields, one
``[dimensions.<field>]`` table per searched field and an optional ``constraints`` list::

    [space]
    name = "autost-small"
    [fixed]
    image_size = 32
    [dimensions.embed_dim]
    type = "int"          # "int" | "float" (low, high, step) or "choice" (choices)
    low = 256
    high = 512
    step = 64
    [dimensions.mlp_ratios]
    type = "choice"
    choices = [3, 4, 5]
    per_layer = true      # one value per layer; the list follows the sampled depth
    constraints = ["params <= 12e6", "params >= 11e6"]   # (top level, before any table)

Constraint metrics: ``params``, ``macs``, ``matmul_macs``, ``flops``, ``sops`` and
``energy_mj`` (analytic, every spiking layer at rate 1: an upper bound). Loading refuses a
fixed value or a choice that no candidate could use (a typo in a choice list, depth 0, a float
``embed_dim``), choices of mixed types, and a space from which no valid candidate can be drawn
(the error names the field or constraint that rejected the draws most often). Heads that do
not divide a layer's width, and any other invalid combination, are rejected per candidate by
``ArchConfig`` validation. Everything is checked analytically before a candidate is scored.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from autost.errors import AutostError, ConfigError
from autost.model.config import ArchConfig
from autost.search.dimensions import (
    Constraint,
    Dimension,
    _check_value,
    _parse_dimension,
    _plain,
    _values_to_check,
)

RNG = np.random.Generator | int | None


@dataclass
class SearchSpace:
    """A space of :class:`ArchConfig` candidates; see the module docstring for the file format."""

    name: str
    fixed: dict[str, Any]
    dimensions: dict[str, Dimension]
    constraints: list[Constraint] = field(default_factory=list)
    description: str = ""
    source: str = ""
    max_tries: int = 2000

    # -------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, name_or_path: str | Path) -> SearchSpace:
        """A shipped space by name (see :func:`list_spaces`) or a TOML file path."""
        text, source = _read_named("search_spaces", name_or_path, "search space")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AutostError(f"{source}: malformed TOML: {exc}") from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> SearchSpace:
        """Build and validate from parsed TOML."""
        unknown = set(data) - {"space", "fixed", "dimensions", "constraints"}
        if unknown:
            raise AutostError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
        meta = data.get("space", {})
        fixed = dict(data.get("fixed", {}))
        dims: dict[str, Dimension] = {}
        for name, spec in dict(data.get("dimensions", {})).items():
            dims[name] = _parse_dimension(name, spec, source)
        fields = {f for f in ArchConfig.__dataclass_fields__}
        for name in [*fixed, *dims]:
            if name not in fields:
                raise AutostError(f"{source}: {name!r} is not an ArchConfig field")
        both = set(fixed) & set(dims)
        if both:
            raise AutostError(f"{source}: {sorted(both)} both fixed and searched")
        for name, value in fixed.items():
            _check_value(name, value, f"{source}: fixed")
        for dim in dims.values():
            for value in _values_to_check(dim):
                _check_value(dim.name, value, f"{source}: dimensions", entry=dim.per_layer)
        raw = data.get("constraints", [])
        if not isinstance(raw, list):
            raise AutostError(f"{source}: constraints must be a list of strings")
        constraints = [Constraint.parse(c) for c in raw]
        space = cls(
            name=str(meta.get("name", Path(source).stem)),
            fixed=fixed,
            dimensions=dims,
            constraints=constraints,
            description=str(meta.get("description", "")),
            source=source,
        )
        space.sample(0)  # fail at load time when no combination of the values is valid
        return space

    def with_constraints(self, extra: Sequence[str | Constraint]) -> SearchSpace:
        """A copy with more constraints."""
        parsed = [c if isinstance(c, Constraint) else Constraint.parse(c) for c in extra]
        return SearchSpace(
            self.name,
            dict(self.fixed),
            dict(self.dimensions),
            [*self.constraints, *parsed],
            self.description,
            self.source,
            self.max_tries,
        )

    # -------------------------------------------------------------------------- params
    def depths(self) -> tuple[int, ...]:
        """Possible depths."""
        if "depth" in self.dimensions:
            return tuple(int(d) for d in self.dimensions["depth"].values())
        return (int(self.fixed.get("depth", ArchConfig().depth)),)

    def param_names(self, depth: int | None = None) -> list[str]:
        """Flat parameter names (per-layer ones as ``field[i]``) for ``depth`` (default: max)."""
        depth = max(self.depths()) if depth is None else depth
        names = []
        for name, dim in self.dimensions.items():
            if dim.per_layer:
                names += [f"{name}[{i}]" for i in range(depth)]
            else:
                names.append(name)
        return names

    def to_params(self, cfg: ArchConfig) -> dict[str, Any]:
        """The flat parameters of ``cfg`` in this space."""
        params: dict[str, Any] = {}
        for name, dim in self.dimensions.items():
            value = getattr(cfg, name)
            if dim.per_layer:
                for i, v in enumerate(value):
                    params[f"{name}[{i}]"] = _plain(v)
            else:
                params[name] = _plain(value)
        return params

    def from_params(self, params: Mapping[str, Any]) -> ArchConfig:
        """Build the config of flat ``params`` (extra per-layer entries beyond depth ignored)."""
        depth = int(params.get("depth", self.fixed.get("depth", ArchConfig().depth)))
        fields: dict[str, Any] = dict(self.fixed)
        for name, dim in self.dimensions.items():
            if dim.per_layer:
                fields[name] = [params[f"{name}[{i}]"] for i in range(depth)]
            else:
                fields[name] = params[name]
        return ArchConfig(**fields)

    # -------------------------------------------------------------------------- checks
    def metrics(self, cfg: ArchConfig) -> dict[str, float]:
        """The metrics constraints read: the analytic ones, and ``latency`` (ms, measured on
        this machine's CPU at batch 1 with torch's current threads, cached) when a constraint
        names it."""
        from autost.model.cost import estimate_cost

        report = estimate_cost(cfg)
        values = {
            "params": report.params,
            "macs": report.macs,
            "matmul_macs": report.matmul_macs,
            "flops": report.flops,
            "sops": report.sops,
            "energy_mj": report.energy_mj,
        }
        if any(c.metric == "latency" for c in self.constraints):
            from autost.model.latency import measure_latency

            values["latency"] = measure_latency(cfg, device="cpu", batch=1).median_ms
        return values

    def violations(self, cfg: ArchConfig) -> list[str]:
        """Constraints ``cfg`` breaks (empty when feasible)."""
        if not self.constraints:
            return []
        values = self.metrics(cfg)
        return [str(c) for c in self.constraints if not c.holds(values)]

    def feasible(self, cfg: ArchConfig) -> bool:
        """Whether ``cfg`` meets every constraint."""
        return not self.violations(cfg)

    def contains(self, cfg: ArchConfig) -> bool:
        """Whether ``cfg`` is a member: searched fields in range, everything else as fixed."""
        for name, dim in self.dimensions.items():
            value = getattr(cfg, name)
            if not all(dim.contains(v) for v in (value if dim.per_layer else (value,))):
                return False
        try:
            return self.from_params(self.to_params(cfg)) == cfg
        except (ConfigError, KeyError):
            return False

    # -------------------------------------------------------------------------- sampling
    def _draw(self, rng: np.random.Generator) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if "depth" in self.dimensions:
            params["depth"] = self.dimensions["depth"].sample(rng)
        depth = int(params.get("depth", self.fixed.get("depth", ArchConfig().depth)))
        for name, dim in self.dimensions.items():
            if name == "depth":
                continue
            if dim.per_layer:
                for i in range(depth):
                    params[f"{name}[{i}]"] = dim.sample(rng)
            else:
                params[name] = dim.sample(rng)
        return params

    def build(self, params: Mapping[str, Any]) -> ArchConfig | None:
        """The config of ``params`` if valid and feasible, else ``None``."""
        cfg = self._build(params)
        return cfg if isinstance(cfg, ArchConfig) else None

    def _build(self, params: Mapping[str, Any]) -> ArchConfig | list[tuple[str, str]]:
        """The config of ``params``, or why it was rejected: ``(reason, example)`` pairs, the
        reason a field (per-layer index dropped) or a constraint."""
        try:
            cfg = self.from_params(params)
        except ConfigError as exc:
            return [(re.sub(r"\[\d+\]", "", exc.field), str(exc))]
        if not self.constraints:
            return cfg
        values = self.metrics(cfg)
        broken = [c for c in self.constraints if not c.holds(values)]
        if not broken:
            return cfg
        return [(f"constraint {c}", f"{c.metric} = {values[c.metric]:.4g}") for c in broken]

    def sample(self, rng: RNG = None) -> ArchConfig:
        """A uniformly drawn valid, feasible candidate (rejection sampling).

        Raises :class:`AutostError` after ``max_tries`` rejections: the constraints (or the
        fixed fields) admit no candidate, or too few to find by chance. The message names the
        field or constraint that rejected the most draws.
        """
        gen = np.random.default_rng(rng)
        reasons: Counter[str] = Counter()
        examples: dict[str, str] = {}
        for _ in range(self.max_tries):
            cfg = self._build(self._draw(gen))
            if isinstance(cfg, ArchConfig):
                return cfg
            for reason, example in cfg:
                reasons[reason] += 1
                examples.setdefault(reason, example)
        top, count = reasons.most_common(1)[0]
        wanted = "valid candidate"
        if self.constraints:
            wanted += f" meets the constraints ({', '.join(map(str, self.constraints))})"
        rejected = (
            f"all were rejected by {top}"
            if count == self.max_tries
            else f"most were rejected by {top} ({count} of {self.max_tries})"
        )
        raise AutostError(
            f"search space {self.name!r}: no {wanted} after {self.max_tries} draws; "
            f"{rejected}, e.g. {examples[top]}"
        )

    def mutate(self, cfg: ArchConfig, rng: RNG = None, prob: float = 0.3) -> ArchConfig:
        """Resample each gene with probability ``prob`` (AutoST: depth, then per-layer genes);
        layers added by a deeper depth get fresh random genes. Retries until valid."""
        gen = np.random.default_rng(rng)
        base = self.to_params(cfg)
        for _ in range(self.max_tries):
            params = dict(base)
            for name, dim in self.dimensions.items():
                if not dim.per_layer and gen.random() < prob:
                    params[name] = dim.sample(gen)
            depth = int(params.get("depth", cfg.depth))
            for name, dim in self.dimensions.items():
                if dim.per_layer:
                    for i in range(depth):
                        key = f"{name}[{i}]"
                        if key not in params or gen.random() < prob:
                            params[key] = dim.sample(gen)
            child = self.build(_trim(params, depth))
            if child is not None:
                return child
        return self.sample(gen)

    def crossover(self, a: ArchConfig, b: ArchConfig, rng: RNG = None) -> ArchConfig:
        """Uniform crossover: each gene from either parent; per-layer genes align by index and
        fall back to the parent that has that layer. Retries until valid."""
        gen = np.random.default_rng(rng)
        pa, pb = self.to_params(a), self.to_params(b)
        for _ in range(self.max_tries):
            params = {
                k: (pa if gen.random() < 0.5 else pb).get(k) for k in sorted(set(pa) | set(pb))
            }
            raw_depth: Any = params.get("depth")
            depth = a.depth if raw_depth is None else int(raw_depth)
            for name, dim in self.dimensions.items():
                if dim.per_layer:
                    for i in range(depth):
                        key = f"{name}[{i}]"
                        if params.get(key) is None:
                            params[key] = pa.get(key, pb.get(key))
            params = {k: v for k, v in params.items() if v is not None}
            child = self.build(_trim(params, depth))
            if child is not None:
                return child
        return self.mutate(a, gen)

    # -------------------------------------------------------------------------- size
    def size(self) -> int:
        """Number of distinct parameter settings (before validity and constraints)."""
        if any(d.kind == "float" and d.step is None for d in self.dimensions.values()):
            raise AutostError(f"search space {self.name!r} has a continuous dimension")
        flat = math.prod(
            len(d.values()) for n, d in self.dimensions.items() if not d.per_layer and n != "depth"
        )
        layer = math.prod(len(d.values()) for d in self.dimensions.values() if d.per_layer)
        return flat * sum(layer**depth for depth in self.depths())

    def enumerate(self, limit: int = 1_000_000) -> Iterator[ArchConfig]:
        """Every valid, feasible candidate; refuses spaces larger than ``limit``."""
        total = self.size()
        if total > limit:
            raise AutostError(f"search space {self.name!r} has {total:,} settings (> {limit:,})")
        flat = [(n, d) for n, d in self.dimensions.items() if not d.per_layer and n != "depth"]
        layered = [(n, d) for n, d in self.dimensions.items() if d.per_layer]
        for depth in self.depths():
            for flat_values in itertools.product(*(d.values() for _, d in flat)):
                per_layer_axes = [d.values() for _, d in layered for _ in range(depth)]
                for layer_values in itertools.product(*per_layer_axes):
                    params: dict[str, Any] = dict(
                        zip([n for n, _ in flat], flat_values, strict=True)
                    )
                    if "depth" in self.dimensions:
                        params["depth"] = depth
                    it = iter(layer_values)
                    for name, _ in layered:
                        for i in range(depth):
                            params[f"{name}[{i}]"] = next(it)
                    cfg = self.build(params)
                    if cfg is not None:
                        yield cfg

    # -------------------------------------------------------------------------- adapters
    def _per_param(self, convert: Callable[[Dimension], Any]) -> dict[str, Any]:
        """``convert(dim)`` for every flat parameter (per-layer ones up to the max depth)."""
        return {key: convert(self.dimensions[key.split("[")[0]]) for key in self.param_names()}

    def optuna_distributions(self) -> dict[str, Any]:
        """Optuna distributions of every flat parameter (per-layer ones up to the max depth)."""
        return self._per_param(Dimension.optuna)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Flat parameters suggested by an Optuna trial (define-by-run; depth first)."""
        params: dict[str, Any] = {}
        if "depth" in self.dimensions:
            params["depth"] = _suggest(trial, "depth", self.dimensions["depth"])
        depth = int(params.get("depth", self.fixed.get("depth", ArchConfig().depth)))
        for name, dim in self.dimensions.items():
            if name == "depth":
                continue
            if dim.per_layer:
                for i in range(depth):
                    params[f"{name}[{i}]"] = _suggest(trial, f"{name}[{i}]", dim)
            else:
                params[name] = _suggest(trial, name, dim)
        return params

    def ray_param_space(self) -> dict[str, Any]:
        """A Ray Tune ``param_space`` of the flat parameters (per-layer up to the max depth)."""
        return self._per_param(Dimension.ray)

    def to_spec(self) -> dict[str, Any]:
        """The parsed-TOML form: ``SearchSpace.from_dict(space.to_spec())`` rebuilds the space
        (how a space travels to remote workers without its file)."""
        dims: dict[str, Any] = {}
        for name, d in self.dimensions.items():
            if d.kind == "choice":
                spec: dict[str, Any] = {"choices": [_plain(c) for c in d.choices]}
            else:
                spec = {"type": d.kind, "low": d.low, "high": d.high}
                if d.step is not None:
                    spec["step"] = d.step
            dims[name] = {**spec, "per_layer": d.per_layer}
        return {
            "space": {"name": self.name, "description": self.description},
            "fixed": dict(self.fixed),
            "dimensions": dims,
            "constraints": [str(c) for c in self.constraints],
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (for run.json)."""
        return {
            "name": self.name,
            "source": self.source,
            "fixed": self.fixed,
            "dimensions": {
                n: {k: v for k, v in d.__dict__.items() if k != "name"}
                for n, d in self.dimensions.items()
            },
            "constraints": [str(c) for c in self.constraints],
        }


def _suggest(trial: Any, name: str, dim: Dimension) -> Any:
    if dim.kind == "choice":
        return trial.suggest_categorical(name, [_plain(c) for c in dim.choices])
    if dim.kind == "int":
        return trial.suggest_int(name, int(dim.low), int(dim.high), step=int(dim.step or 1))
    return trial.suggest_float(name, dim.low, dim.high, step=dim.step)


def _trim(params: dict[str, Any], depth: int) -> dict[str, Any]:
    """Drop per-layer entries beyond ``depth``."""
    keep = {}
    for key, value in params.items():
        if "[" in key and int(key[key.index("[") + 1 : -1]) >= depth:
            continue
        keep[key] = value
    return keep


def _read_named(folder: str, name_or_path: str | Path, what: str) -> tuple[str, str]:
    """Text and source of a shipped resource by name, or of a file path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise AutostError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    shipped = shipped_files(folder)
    if str(name_or_path) not in shipped:
        import difflib

        close = difflib.get_close_matches(str(name_or_path), list(shipped), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AutostError(
            f"unknown {what} {str(name_or_path)!r}{hint} "
            f"(shipped: {', '.join(sorted(shipped))}; or pass a .toml path)"
        )
    return shipped[str(name_or_path)].read_text(encoding="utf-8"), f"{folder}/{name_or_path}.toml"


def shipped_files(folder: str) -> dict[str, Any]:
    """``name -> resource`` of the TOML files shipped in ``autost.<folder>``."""
    try:
        base: Any = resources.files(f"autost.{folder}")
    except ModuleNotFoundError:
        base = Path(__file__).resolve().parents[1] / folder
    return {
        entry.name[: -len(".toml")]: entry
        for entry in base.iterdir()
        if entry.name.endswith(".toml")
    }


def list_spaces() -> list[str]:
    """Names of the shipped search spaces."""
    return sorted(shipped_files("search_spaces"))
