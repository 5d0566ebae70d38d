"""A per-device latency table: predict a candidate's latency without building it.

A candidate's forward is its input coding, stem and head (the *base*, set by the fields that
are not per layer) plus one encoder block per layer. The table holds, for one device, thread
count and batch, the measured milliseconds of every base and every block kind a space can
produce (a block kind: the space's fields with that layer's heads, MLP ratio and attention, at
depth 1); a candidate is predicted as ``base + sum of its blocks + constant``, the constant
fitted as the median residual against a few whole candidates measured with
:func:`autost.measure_latency`. A block is timed alone, on the tokens its depth-1 model feeds
it; a base is the depth-1 model with that block replaced by the identity.

``autost profile-device --space NAME --device cpu`` builds a table and writes it as JSON
(versioned, with the machine it was measured on); :meth:`LatencyTable.load` refuses a table of
another machine, device, autost or torch version with one line. A block kind missing from a
loaded table is timed when first asked for (and kept, so that saving it again stores it).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autost.errors import AutostError, ConfigError
from autost.io import atomic_write_text
from autost.model.config import PER_LAYER_FIELDS, ArchConfig
from autost.model.latency import (
    check_device,
    device_name,
    latency_input,
    time_forwards,
    torch_threads,
)
from autost.search.space import SearchSpace
from autost.version import __version__

TABLE_SCHEMA = 1
#: block kinds a space may have before ``profile_space`` refuses to enumerate them all
MAX_KINDS = 2000


def _digest(config: ArchConfig) -> str:
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def layer_config(config: ArchConfig, index: int) -> ArchConfig:
    """``config`` at depth 1 with layer ``index``'s heads, MLP ratio and attention."""
    if config.stages:
        raise AutostError(
            "the latency table predicts single-stage configs; measure a staged (QKFormer-style) "
            "config with autost.measure_latency"
        )
    layer = {name: [getattr(config, name)[index]] for name in PER_LAYER_FIELDS}
    return config.replace(depth=1, **layer)


def time_parts(
    config: ArchConfig, device: str, threads: int, batch: int, warmup: int, repeats: int
) -> tuple[float, float]:
    """Median milliseconds of the base (coding, stem, head) and of the one block of the
    depth-1 ``config``."""
    from autost.model.network import SpikingTransformer

    torch.manual_seed(0)
    model = SpikingTransformer(config).to(device).eval()
    x = latency_input(config, batch, device)
    seen: list[torch.Tensor] = []
    hook = model.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.inference_mode():
        model(x)
    hook.remove()
    tokens = seen[0]
    with torch_threads(threads):
        block = time_forwards(model.blocks[0], tokens, device, warmup, repeats)
        model.blocks = nn.ModuleList([nn.Identity()])
        base = time_forwards(model, x, device, warmup, repeats)
    return float(statistics.median(base)), float(statistics.median(block))


def _machine(device: str, threads: int, batch: int) -> dict[str, Any]:
    return {
        "device": device,
        "device_name": device_name(device),
        "threads": threads,
        "batch": batch,
        "autost": __version__,
        "torch": torch.__version__,
    }


@dataclass
class LatencyTable:
    """Measured milliseconds of bases and blocks on one device (see the module docstring)."""

    machine: dict[str, Any]
    space: str
    warmup: int = 3
    repeats: int = 10
    bases: dict[str, float] = field(default_factory=dict)
    blocks: dict[str, float] = field(default_factory=dict)
    constant_ms: float = 0.0
    fit: list[dict[str, float]] = field(default_factory=list)

    # ------------------------------------------------------------------ predicting
    def _parts(self, config: ArchConfig) -> tuple[float, list[float]]:
        base = math.nan
        blocks = []
        for index in range(config.depth):
            single = layer_config(config, index)
            key = _digest(single)
            if key not in self.blocks or (index == 0 and key not in self.bases):
                m = self.machine
                self.bases[key], self.blocks[key] = time_parts(
                    single, m["device"], m["threads"], m["batch"], self.warmup, self.repeats
                )
            if index == 0:
                base = self.bases[key]
            blocks.append(self.blocks[key])
        return base, blocks

    def predict(self, config: ArchConfig) -> float:
        """Predicted milliseconds of one forward of ``config`` (blocks not in the table are
        timed now and kept)."""
        base, blocks = self._parts(config)
        return base + sum(blocks) + self.constant_ms

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": TABLE_SCHEMA,
            "kind": "autost latency table",
            "machine": self.machine,
            "space": self.space,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "constant_ms": self.constant_ms,
            "fit": self.fit,
            "bases": self.bases,
            "blocks": self.blocks,
        }

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (atomically); returns the path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(
        cls, path: str | Path, device: str = "cpu", threads: int | None = None
    ) -> LatencyTable:
        """A table written by :meth:`save`, refused with one line when it was measured on
        another machine, device or thread count, or by another autost or torch version."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("kind") != "autost latency table":
                raise ValueError("not an autost latency table")
            if data.get("schema") != TABLE_SCHEMA:
                raise ValueError(f"schema {data.get('schema')!r}, this autost reads {TABLE_SCHEMA}")
            table = cls(
                machine=dict(data["machine"]),
                space=str(data["space"]),
                warmup=int(data["warmup"]),
                repeats=int(data["repeats"]),
                bases={str(k): float(v) for k, v in data["bases"].items()},
                blocks={str(k): float(v) for k, v in data["blocks"].items()},
                constant_ms=float(data["constant_ms"]),
                fit=list(data.get("fit", [])),
            )
            values = [*table.bases.values(), *table.blocks.values(), table.constant_ms]
            if not all(math.isfinite(v) for v in values):
                raise ValueError("a time is not a finite number")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AutostError(f"{path}: not a readable latency table ({exc})") from None
        check_device(device)
        here = _machine(device, table.machine.get("threads", 1) if threads is None else threads,
                        table.machine.get("batch", 1))  # fmt: skip
        for key in ("device", "device_name", "threads", "autost", "torch"):
            if table.machine.get(key) != here[key]:
                raise AutostError(
                    f"{path}: measured with {key} {table.machine.get(key)!r}, this run has "
                    f"{here[key]!r}: profile this device again (autost profile-device)"
                )
        return table


def block_kinds(space: SearchSpace) -> list[ArchConfig]:
    """Every depth-1 config a space's candidates are built of: its non-depth dimensions'
    values crossed, one value per per-layer field (invalid combinations left out)."""
    names = [n for n in space.dimensions if n != "depth"]
    try:
        values = [space.dimensions[n].values() for n in names]
    except AutostError as exc:
        raise AutostError(f"search space {space.name!r}: {exc}; cannot enumerate") from None
    count = math.prod(len(v) for v in values)
    if count > MAX_KINDS:
        raise AutostError(
            f"search space {space.name!r} has {count} block kinds (more than {MAX_KINDS}): "
            "a table would take too long to profile"
        )
    kinds: dict[str, ArchConfig] = {}
    for combo in itertools.product(*values):
        fields = {**space.fixed, "depth": 1}
        for name, value in zip(names, combo, strict=True):
            fields[name] = [value] if name in PER_LAYER_FIELDS else value
        try:
            cfg = ArchConfig(**fields)
        except (ConfigError, TypeError, ValueError):
            continue
        kinds.setdefault(_digest(cfg), cfg)
    return list(kinds.values())


def profile_space(
    space: SearchSpace | str,
    device: str = "cpu",
    threads: int | None = None,
    batch: int = 1,
    fit: int = 5,
    seed: int = 0,
    warmup: int = 3,
    repeats: int = 10,
    progress: bool = False,
    on_demand: bool = False,
) -> LatencyTable:
    """Time every block kind of ``space`` on ``device`` and fit the constant on ``fit``
    candidates drawn with ``seed``, each measured whole. A space with more than
    :data:`MAX_KINDS` kinds is refused, or with ``on_demand`` left to time each kind the first
    time a prediction needs it."""
    from autost.model.latency import measure_latency
    from autost.training.progress import progress_bar

    check_device(device)
    space = space if isinstance(space, SearchSpace) else SearchSpace.load(space)
    threads = torch.get_num_threads() if threads is None else threads
    if fit < 1:
        raise AutostError(f"latency table: fit must be >= 1, got {fit}")
    table = LatencyTable(_machine(device, threads, batch), space.name, warmup, repeats)
    try:
        kinds = block_kinds(space)
    except AutostError:
        if not on_demand:
            raise
        kinds = []  # too many to time up front: each is timed the first time it is asked for
    with progress_bar(len(kinds), desc="profiling", unit="block", enabled=progress) as bar:
        for cfg in kinds:
            key = _digest(cfg)
            table.bases[key], table.blocks[key] = time_parts(
                cfg, device, threads, batch, warmup, repeats
            )
            bar.update(1)
    rng = np.random.default_rng(seed)
    for _ in range(fit):
        cfg = space.sample(rng)
        measured = measure_latency(
            cfg, device=device, batch=batch, threads=threads, warmup=warmup, repeats=repeats
        ).median_ms
        summed = table.predict(cfg)  # constant still 0
        table.fit.append({"measured_ms": measured, "summed_ms": summed})
    table.constant_ms = float(
        statistics.median(f["measured_ms"] - f["summed_ms"] for f in table.fit)
    )
    return table


__all__ = ["LatencyTable", "block_kinds", "layer_config", "profile_space", "time_parts"]
