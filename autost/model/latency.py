"""Measured latency of a model where it runs: :func:`measure_latency`.

One measurement is ``warmup`` untimed forwards, then ``repeats`` timed ones of one fixed input
in eval mode under ``torch.inference_mode`` (on CUDA each is timed with events around the
forward and a synchronize); the result is their median with the 10th and 90th percentiles as
its spread. The input is the one the model takes: a static batch ``[B, C, H, W]`` (coded over
the timesteps by the model), or time-major event frames ``[T, B, 2, H, W]`` for a two-channel
(event) input.

Measurements are cached as JSON under ``$AUTOST_CACHE/latency/`` keyed by everything they
depend on: the config, the device (the CPU model or the GPU's name), threads, batch, timesteps,
the repeats, and the autost and torch versions. A cache file is written atomically; one that
does not read back as what this module wrote is refused with one line naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.model.config import ArchConfig
from autost.version import __version__

LATENCY_SCHEMA = 1
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Latency:
    """One measured latency: milliseconds per forward of a batch, and where it was measured."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    device: str
    device_name: str
    threads: int
    batch: int
    timesteps: int
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without ``cached``)."""
        data = asdict(self)
        data.pop("cached")
        return data

    def __str__(self) -> str:
        return (
            f"{self.median_ms:.3g} ms [{self.p10_ms:.3g}, {self.p90_ms:.3g}] on {self.device} "
            f"({self.device_name}, {self.threads} thread(s)), batch {self.batch}, "
            f"T {self.timesteps}"
        )


def device_name(device: str) -> str:
    """What ``device`` is on this machine: the GPU's name, or the CPU's model and core count."""
    if device == "cuda":
        return str(torch.cuda.get_device_name(0))
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} CPUs)"


def check_device(device: str) -> str:
    """``device`` when this machine has it; otherwise one line saying why not."""
    if device not in DEVICES:
        raise AutostError(f"unknown device {device!r} (choices: {', '.join(DEVICES)})")
    if device == "cuda" and not torch.cuda.is_available():
        raise AutostError("device 'cuda': no CUDA GPU is available on this machine")
    return device


def _config_key(config: ArchConfig) -> str:
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _cache_folder() -> Path:
    from autost.data.base import default_cache_root

    return default_cache_root() / "latency"


def latency_input(config: ArchConfig, batch: int, device: str) -> torch.Tensor:
    """The fixed input a latency is measured on (see the module docstring)."""
    gen = torch.Generator().manual_seed(0)
    side, channels = config.image_size, config.in_channels
    if channels == 2:  # event frames, time-major, as the event datasets give them
        shape = (config.timesteps, batch, channels, side, side)
        return (torch.rand(shape, generator=gen) < 0.1).float().to(device)
    return torch.randn((batch, channels, side, side), generator=gen).to(device)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_forwards(
    model: nn.Module, x: torch.Tensor, device: str, warmup: int, repeats: int
) -> list[float]:
    """Milliseconds of each of ``repeats`` forwards of ``x`` after ``warmup`` untimed ones."""
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
            for _ in range(repeats):
                start, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                start.record()
                model(x)
                end.record()
                torch.cuda.synchronize()
                times.append(float(start.elapsed_time(end)))
        else:
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
    return times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _read_cached(path: Path, key: Mapping[str, Any]) -> Latency | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("key") != dict(key):
            raise ValueError("its key is not the one it is stored under")
        value = data["latency"]
        result = Latency(**value, cached=True)
        numbers = (result.median_ms, result.p10_ms, result.p90_ms)
        if not all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in numbers):
            raise ValueError("a time is not a positive number")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise AutostError(
            f"{path}: not a latency measurement autost wrote ({exc}); delete it to measure again"
        ) from None
    return result


def measure_latency(
    spec: Any,
    device: str = "cpu",
    batch: int = 1,
    threads: int | None = None,
    timesteps: int | None = None,
    warmup: int = 3,
    repeats: int = 10,
    cache: bool = True,
) -> Latency:
    """Measured latency of one forward of a batch of ``batch`` through ``spec`` (anything
    :func:`autost.create_model` takes, or a :class:`SpikingTransformer`) on ``device``.

    ``threads`` sets torch's CPU threads for the measurement (default: the current count);
    ``timesteps`` replaces the config's. The model's own weights are used when ``spec`` is a
    model or a bundle; latency does not depend on them. Cached (see the module docstring)
    unless ``cache`` is false; a cached result has ``cached=True``.
    """
    from autost.model.network import SpikingTransformer, create_model

    check_device(device)
    for name, value, low in (("batch", batch, 1), ("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise AutostError(f"latency: {name} must be an integer >= {low}, got {value!r}")
    if threads is None:
        threads = torch.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise AutostError(f"latency: threads must be an integer >= 1, got {threads!r}")
    model = spec if isinstance(spec, SpikingTransformer) else create_model(spec)
    config = model.config
    if timesteps is not None:
        if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
            raise AutostError(f"latency: timesteps must be an integer >= 1, got {timesteps!r}")
        if timesteps != config.timesteps:
            state = model.state_dict()
            config = config.replace(timesteps=timesteps)
            model = SpikingTransformer(config)
            model.load_state_dict(state)  # T changes no parameter
    name = device_name(device)
    key = {
        "schema": LATENCY_SCHEMA,
        "config": _config_key(config),
        "device": device,
        "device_name": name,
        "threads": threads,
        "batch": batch,
        "timesteps": config.timesteps,
        "warmup": warmup,
        "repeats": repeats,
        "autost": __version__,
        "torch": torch.__version__,
    }
    path = _cache_folder() / (
        hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32] + ".json"
    )
    if cache:
        found = _read_cached(path, key)
        if found is not None:
            return found
    model = model.to(device).eval()
    with torch_threads(threads):
        times = time_forwards(model, latency_input(config, batch, device), device, warmup, repeats)
    result = Latency(
        median_ms=float(statistics.median(times)),
        p10_ms=float(_percentile(times, 0.1)),
        p90_ms=float(_percentile(times, 0.9)),
        repeats=repeats,
        device=device,
        device_name=name,
        threads=threads,
        batch=batch,
        timesteps=config.timesteps,
    )
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "latency": result.to_dict()}) + "\n")
    return result


__all__ = ["DEVICES", "Latency", "check_device", "measure_latency"]
