"""Spiking neurons found by type in any PyTorch network, their state reset and their output
spikes read.

:func:`find_neurons` knows autost's LIF/PLIF, SpikingJelly's ``BaseNode``/``SimpleBaseNode``
(and the legacy ``clock_driven`` ``BaseNode``), snnTorch's ``SpikingNeuron`` and Norse's
``SNNCell``/``SNNRecurrentCell``/``SNN``/``SNNRecurrent`` (not its non-spiking leaky
integrators ``LICell``/``LI``/``LIBoxCell``). A library is consulted only once it is imported
(a model built from its neurons has imported it), so nothing is imported here. Other classes
are added with :func:`register_neuron`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from autost.errors import AutostError
from autost.neurons import LIF

N = TypeVar("N", bound=nn.Module)


def output_spikes(output: Any) -> Any:
    """The default spike reader: the output itself, or the first element of a tuple/list output
    (snnTorch's ``(spk, mem)``, Norse's ``(z, state)``)."""
    return output[0] if isinstance(output, (tuple, list)) and output else output


@dataclass(frozen=True)
class NeuronKind:
    """How the proxies read one neuron class.

    ``spikes`` maps the module's output to its spike tensor; ``multistep`` says whether that
    tensor is time-major ``[T, B, ...]`` (one call per sequence) or ``[B, ...]`` (one call per
    step): a bool, a function of the module, or ``None`` to tell from the batch size; ``reset``
    (or ``None`` for a stateless neuron) clears the module's state before and after every pass.
    """

    spikes: Callable[[Any], Any] = output_spikes
    multistep: bool | Callable[[Any], bool] | None = None
    reset: Callable[[Any], None] | None = None

    def is_multistep(self, module: nn.Module) -> bool | None:
        """``multistep`` for ``module`` (``None``: unknown)."""
        return self.multistep(module) if callable(self.multistep) else self.multistep


_REGISTERED: dict[type, NeuronKind] = {}


def register_neuron(
    cls: type[N],
    spikes: Callable[[Any], Any] | None = None,
    *,
    multistep: bool | Callable[[N], bool] | None = None,
    reset: Callable[[N], None] | None = None,
) -> type[N]:
    """Make :func:`find_neurons` find ``cls`` (and its subclasses); returns ``cls``.

    ``spikes(output)`` returns the spike tensor from the module's output (default: the output,
    or its first element when it is a tuple: ``spikes=lambda out: out[1]`` for a neuron that
    returns ``(state, spikes)``). ``multistep``: ``True`` if the output is ``[T, B, ...]``,
    ``False`` if ``[B, ...]`` per call, ``None`` to tell from the batch size. ``reset(module)``
    clears a stateful neuron. Registering a class again replaces its entry. (Not to be confused
    with :func:`autost.neurons.register_neuron`, which names neuron kinds for configs.)
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise AutostError(f"register_neuron: {cls!r} is not a torch.nn.Module class")
    for name, fn in (("spikes", spikes), ("reset", reset)):
        if fn is not None and not callable(fn):
            raise AutostError(f"register_neuron: {name} must be callable or None, got {fn!r}")
    _REGISTERED[cls] = NeuronKind(spikes or output_spikes, multistep, reset)
    return cls


def _call(method: str) -> Callable[[nn.Module], None]:
    def reset(module: nn.Module) -> None:
        fn = getattr(module, method, None)
        if callable(fn):
            fn()

    return reset


def _library_kinds() -> dict[type, NeuronKind | None]:
    """The neuron classes of the libraries already imported (``None``: not a spiking neuron)."""
    kinds: dict[type, NeuronKind | None] = {LIF: NeuronKind(multistep=True)}

    def add(module: str, names: Sequence[str], kind: NeuronKind | None) -> None:
        found = sys.modules.get(module)
        for name in names:
            cls = getattr(found, name, None)
            if isinstance(cls, type):
                kinds[cls] = kind

    step_mode = NeuronKind(
        multistep=lambda m: getattr(m, "step_mode", "s") == "m", reset=_call("reset")
    )
    add("spikingjelly.activation_based.neuron", ["BaseNode", "SimpleBaseNode"], step_mode)
    legacy = NeuronKind(
        multistep=lambda m: type(m).__name__.startswith("MultiStep"), reset=_call("reset")
    )
    add("spikingjelly.clock_driven.neuron", ["BaseNode"], legacy)
    add("snntorch", ["SpikingNeuron"], NeuronKind(multistep=False, reset=_call("reset_mem")))
    add("snntorch", ["StateLeaky"], NeuronKind(multistep=True, reset=_call("reset_mem")))
    add("norse.torch.module.snn", ["SNNCell", "SNNRecurrentCell"], NeuronKind(multistep=False))
    add("norse.torch.module.snn", ["SNN", "SNNRecurrent"], NeuronKind(multistep=True))
    add("norse.torch.module.leaky_integrator", ["LICell", "LI"], None)  # voltages, not spikes
    add("norse.torch.module.leaky_integrator_box", ["LIBoxCell"], None)
    return kinds


def _neurons(model: nn.Module) -> list[tuple[str, nn.Module, NeuronKind]]:
    kinds = {**_library_kinds(), **_REGISTERED}
    found: list[tuple[str, nn.Module, NeuronKind]] = []
    for name, module in model.named_modules():
        if found and (not found[-1][0] or name.startswith(found[-1][0] + ".")):
            continue  # inside a neuron: the outermost module is the neuron
        kind = next((kinds[c] for c in type(module).__mro__ if c in kinds), None)
        if kind is not None:
            found.append((name, module, kind))
    return found


def find_neurons(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every spiking neuron module of ``model`` with its path, found by type (outermost only)."""
    return [(name, module) for name, module, _ in _neurons(model)]


def reset_neurons(model: nn.Module) -> None:
    """Clear the state of every stateful neuron of ``model`` (SpikingJelly, snnTorch, ...)."""
    for _, module, kind in _neurons(model):
        if kind.reset is not None:
            kind.reset(module)


def _reset_hook(module: nn.Module, *args: Any) -> None:
    reset_neurons(module)


# --------------------------------------------------------------------------- recording
