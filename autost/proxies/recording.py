"""One forward pass recorded layer by layer: every neuron's firing rate and every synaptic
layer's input rate and MACs (streamed by hooks; no spike tensor outlives its layer), and the
cost report at those rates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
from torch import Tensor, nn

from autost.errors import AutostError
from autost.model.blocks.common import LayerCost
from autost.model.cost import E_AC_PJ, E_MAC_PJ, CostReport, LayerReport
from autost.proxies.kernels import KernelAccumulator
from autost.proxies.neuron_types import NeuronKind, _neurons

#: The synaptic layers: what the cost, grad_norm and synflow sum over.
SYNAPTIC = (nn.Linear, nn.modules.conv._ConvNd)


@dataclass(frozen=True)
class Activity:
    """What the shared forward pass recorded.

    ``layer_rates``: neuron module path -> mean spikes per neuron and timestep; ``input_rates``:
    conv/linear module path -> mean of its input (the firing rate of its input spikes);
    ``kernels``: the binary-code kernels, or ``None`` when they were not asked for. Recorded
    without a cost table (a model without config) also: ``input_macs``, conv/linear path ->
    multiply-accumulates over the batch (from the shapes), and ``real_inputs``, the conv/linears
    whose input was real-valued (not all integers: neither spikes nor sums of spikes).
    """

    layer_rates: dict[str, float]
    input_rates: dict[str, float]
    kernels: KernelAccumulator | None = field(default=None, compare=False)
    input_macs: dict[str, int] = field(default_factory=dict)
    real_inputs: frozenset[str] = frozenset()


def _macs(module: nn.Module, x: Tensor, out: Tensor) -> int:
    if isinstance(module, nn.Linear):
        return x.numel() * module.out_features
    assert isinstance(module, nn.modules.conv._ConvNd)
    kernel = prod(module.kernel_size)
    if module.transposed:
        return x.numel() * (module.out_channels // module.groups) * kernel
    return out.numel() * (module.in_channels // module.groups) * kernel


def _codes(
    name: str, module: nn.Module, kind: NeuronKind, out: Tensor, batch: int | None
) -> Tensor:
    """One layer's spikes as codes ``[T, B, ...]`` (a single step becomes ``T = 1``)."""
    multistep = kind.is_multistep(module)
    if multistep is None and batch is not None and out.dim() >= 1:
        first, second = out.shape[0] == batch, out.dim() >= 2 and out.shape[1] == batch
        multistep = None if first == second else second
    if multistep is None:
        raise AutostError(
            f"neuron {name!r} ({type(module).__name__}): cannot tell whether its output "
            f"{list(out.shape)} is [B, ...] or [T, B, ...]; pass multistep= to register_neuron"
        )
    codes = out if multistep else out.unsqueeze(0)
    if codes.dim() < 2 or (batch is not None and codes.shape[1] != batch):
        layout = "[T, B, ...]" if multistep else "[B, ...]"
        raise AutostError(
            f"neuron {name!r} ({type(module).__name__}): output {list(out.shape)} is not "
            f"{layout} with B = {batch}"
        )
    return codes


def record_activity(
    model: nn.Module,
    x: Tensor,
    table: Sequence[LayerCost] | None = None,
    kernels: bool = False,
    *,
    batch_size: int | None = None,
    forward: Callable[[Tensor], Any] | None = None,
) -> Activity:
    """One forward pass (``forward(x)``, default ``model(x)``) under no grad, recording the mean
    spike output of every neuron (:func:`find_neurons`) and the mean input of the conv/linear
    rows of ``table`` (every conv/linear, with MACs and real-valued inputs, when it is
    ``None``); ``kernels`` also accumulates SAHD kernels (``batch_size`` checks their layout).
    """
    # module path -> [sum, count]; sums stay tensors so that no hook waits on the device
    spikes: dict[str, list[Any]] = {}
    inputs: dict[str, list[Any]] = {}
    macs: dict[str, int] = {}
    real: dict[str, Any] = {}  # non-integer inputs: not spikes, nor sums of spikes
    acc = KernelAccumulator() if kernels else None

    def on_spikes(name: str, kind: NeuronKind) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            out = kind.spikes(output)
            if not isinstance(out, Tensor):
                raise AutostError(
                    f"neuron {name!r} ({type(module).__name__}) gave {type(out).__name__}, not a "
                    "spike tensor; register its class with register_neuron(cls, spikes=...)"
                )
            total = spikes.setdefault(name, [0.0, 0])
            if acc is None:
                count = out.sum()
            else:
                count = acc.add(_codes(name, module, kind, out, batch_size)).sum()
            total[0] = total[0] + count.double()
            total[1] += out.numel()

        return hook

    def on_synapse(name: str, measure: bool) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
            if not args:  # called with keywords only: not measured
                return
            total = inputs.setdefault(name, [0.0, 0])
            total[0] = total[0] + args[0].sum().double()
            total[1] += args[0].numel()
            if measure:
                macs[name] = macs.get(name, 0) + _macs(module, args[0], out)
                x = args[0]
                odd = (x != x.round()).sum() if x.is_floating_point() else 0
                real[name] = real.get(name, 0) + odd

        return hook

    handles = [m.register_forward_hook(on_spikes(n, k)) for n, m, k in _neurons(model)]
    if table is None:
        for name, module in model.named_modules():
            if isinstance(module, SYNAPTIC):
                handles.append(module.register_forward_hook(on_synapse(name, True)))
    else:
        modules = dict(model.named_modules())
        for row in table:
            module = modules.get(row.name)
            if row.kind in ("conv", "linear") and module is not None:
                handles.append(module.register_forward_hook(on_synapse(row.name, False)))
    try:
        with torch.no_grad():
            (forward or model)(x)
    finally:
        for handle in handles:
            handle.remove()
    return Activity(
        layer_rates={k: float(s) / n if n else 0.0 for k, (s, n) in spikes.items()},
        input_rates={k: float(s) / n if n else 0.0 for k, (s, n) in inputs.items()},
        kernels=acc,
        input_macs=macs,
        real_inputs=frozenset(k for k, n in real.items() if int(n)),
    )


def cost_rates(act: Activity, table: Sequence[LayerCost]) -> dict[str, float]:
    """Input rates for :func:`autost.estimate_cost` from a recorded pass.

    Conv/linear rows get the mean of their input; ``<block>.attn.qkv`` product rows get the
    firing rate of ``<block>.attn.q_lif``.
    """
    rates = dict(act.input_rates)
    for row in table:
        if row.kind == "matmul" and row.name.endswith(".qkv"):
            q_lif = row.name[: -len("qkv")] + "q_lif"
            if q_lif in act.layer_rates:
                rates[row.name] = act.layer_rates[q_lif]
    return rates


def model_cost(act: Activity, model: nn.Module, batch_size: int) -> CostReport:
    """Per-sample costs of a model without config, from a pass recorded without a table.

    Every conv/linear is one row, its MACs from its shapes. Input spikes (or sums of spikes, all
    integers): ``sops = MACs x mean input`` at 0.9 pJ each; real-valued input: MACs at 4.6 pJ.
    Attention products are not modules: ``matmul_macs`` is 0 and they are not in ``sops``.
    """
    modules = dict(model.named_modules())
    rows: list[LayerReport] = []
    for name, total in act.input_macs.items():
        module, macs = modules[name], total // batch_size
        spiking, rate = name not in act.real_inputs, act.input_rates[name]
        sops = macs * rate if spiking else 0.0
        rows.append(
            LayerReport(
                name,
                "linear" if isinstance(module, nn.Linear) else "conv",
                sum(p.numel() for p in module.parameters(recurse=False)),
                macs,
                0,
                spiking,
                rate if spiking else 1.0,
                sops,
                (sops * E_AC_PJ if spiking else macs * E_MAC_PJ) * 1e-9,
            )
        )
    layers = tuple(rows)
    return CostReport(
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(r.macs for r in layers),
        matmul_macs=0,
        sops=sum(r.sops for r in layers),
        energy_mj=sum(r.energy_mj for r in layers),
        _layers=lambda: layers,
    )


# --------------------------------------------------------------------------- the context
