"""Neuron modules (LIF, PLIF) with a registry, and spike recording for the proxies."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from autost.errors import ConfigError, UnknownNameError
from autost.neurons.backend import BACKENDS, lif_multistep
from autost.neurons.surrogates import get_surrogate
from autost.registry import Registry

# --------------------------------------------------------------------------- modules


def _check_number(
    field: str, value: object, rule: str = "", ok: Callable[[float], bool] = bool
) -> float:
    """``value`` as a float, or :class:`ConfigError` naming ``field`` if it is not a finite
    number for which ``ok`` holds."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not ok(number):
        raise ConfigError(field, f"must be a finite number{rule}, got {value!r}")
    return float(number)


class LIF(nn.Module):
    """Multi-step leaky integrate-and-fire neuron over ``[T, ...]`` (no state between calls).

    Set ``record = True`` (or use :func:`record_spikes`) to keep the latest output spikes,
    detached, in ``last_spikes``.
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate: str = "sigmoid",
        alpha: float | None = None,
        detach_reset: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.tau = _check_number("tau", tau, " > 0", lambda v: v > 0)
        self.v_reset = _check_number("v_reset", v_reset, ok=lambda v: True)
        self.v_threshold = _check_number(
            "v_threshold", v_threshold, f" > v_reset ({v_reset})", lambda v: v > self.v_reset
        )
        try:
            get_surrogate(surrogate)
        except UnknownNameError as exc:
            raise ConfigError("surrogate", str(exc)) from None
        self.surrogate = surrogate
        if alpha is not None:
            alpha = _check_number("alpha", alpha, " > 0 (or None for the default)", lambda v: v > 0)
        self.alpha = alpha
        self.detach_reset = bool(detach_reset)
        if backend not in BACKENDS:
            raise ConfigError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend = backend
        self.record = False
        self.last_spikes: Tensor | None = None

    def time_constant(self) -> float | Tensor:
        """The membrane time constant used by ``forward``."""
        return self.tau

    def forward(self, x: Tensor) -> Tensor:
        spikes = lif_multistep(
            x,
            self.time_constant(),
            self.v_threshold,
            self.v_reset,
            self.surrogate,
            self.alpha,
            self.detach_reset,
            self.backend,
        )
        if self.record:
            self.last_spikes = spikes.detach()
        return spikes

    def firing_rate(self) -> float:
        """Mean of the recorded spikes (fraction of neurons x steps that fired)."""
        if self.last_spikes is None:
            raise RuntimeError("no spikes recorded: set record = True and run a forward pass")
        return float(self.last_spikes.float().mean())

    def extra_repr(self) -> str:
        tau = self.time_constant()
        tau_value = float(tau.detach()) if isinstance(tau, Tensor) else tau
        return (
            f"tau={tau_value:.4g}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
            f"surrogate={self.surrogate!r}, alpha={self.alpha}, detach_reset={self.detach_reset}"
        )


class PLIF(LIF):
    """Parametric LIF: a learnable ``tau = 1 / sigmoid(w)``, ``w`` set so that tau starts at
    ``tau`` (> 1). The attribute ``tau`` keeps that initial value; see :meth:`time_constant`."""

    def __init__(self, tau: float = 2.0, **kwargs: Any) -> None:
        _check_number("tau", tau, " > 1 (a PLIF has tau = 1 / sigmoid(w))", lambda v: v > 1)
        super().__init__(tau, **kwargs)
        self.w = nn.Parameter(torch.tensor(-math.log(tau - 1.0)))

    def time_constant(self) -> Tensor:
        return 1.0 / torch.sigmoid(self.w)


_NEURONS: Registry[type[LIF]] = Registry("neuron")
register_neuron = _NEURONS.register
register_neuron("lif")(LIF)
register_neuron("plif")(PLIF)


def make_neuron(kind: str, **kwargs: Any) -> LIF:
    """Build the neuron registered as ``kind`` (``lif``, ``plif``) with ``kwargs``."""
    return _NEURONS.get(kind)(**kwargs)


def list_neurons() -> list[str]:
    """Names of the registered neuron kinds."""
    return _NEURONS.names()


# --------------------------------------------------------------------------- recording


def neuron_layers(module: nn.Module) -> list[tuple[str, LIF]]:
    """Every LIF (or subclass) inside ``module`` with its module path."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, LIF)]


@contextmanager
def record_spikes(module: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Record every neuron of ``module`` while the block runs.

    Yields a dict, filled by each forward pass, from module path to that neuron's latest output
    spikes (detached); it keeps its contents after the block. On exit recording returns to its
    previous setting and the neurons drop the tensors they stored.
    """
    spikes: dict[str, Tensor] = {}
    layers = neuron_layers(module)
    previous = [neuron.record for _, neuron in layers]
    handles = []

    def hook_for(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def hook(neuron: nn.Module, inputs: Any, output: Tensor) -> None:
            spikes[name] = output.detach()

        return hook

    try:
        for name, neuron in layers:
            neuron.record = True
            handles.append(neuron.register_forward_hook(hook_for(name)))
        yield spikes
    finally:
        for handle in handles:
            handle.remove()
        for (_, neuron), was_recording in zip(layers, previous, strict=True):
            neuron.record = was_recording
            if not was_recording:
                neuron.last_spikes = None
