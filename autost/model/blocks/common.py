"""Pieces shared by every block: neuron factory, projections with BatchNorm, analytic cost rows.

Every block class pairs its ``nn.Module`` with a ``costs(...)`` classmethod that lists the same
layers analytically (parameters and multiply-accumulates), so that the analytic cost model and
``count_params`` never build a model, and a reader finds a block's structure in one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from autost.model.blocks.lowmem import LowMemory, SpikeKind, SpikeLinear, max_pool2d, stream_kind
from autost.model.config import ArchConfig, NeuronConfig
from autost.neurons import make_neuron


@dataclass(frozen=True)
class LayerCost:
    """One row of the analytic per-layer table, per sample with all timesteps summed.

    ``macs`` counts dense conv/linear multiply-accumulates, ``matmul_macs`` the products between
    activations (attention). ``spiking_input`` tells whether the layer's input is spikes (its MACs
    become accumulates, SOPs, on neuromorphic hardware) or real values (the first layer).
    """

    name: str
    kind: str
    params: int = 0
    macs: int = 0
    matmul_macs: int = 0
    spiking_input: bool = True


def conv_cost(
    name: str,
    cin: int,
    cout: int,
    kernel: int,
    out_hw: int,
    timesteps: int,
    *,
    bias: bool = False,
    spiking_input: bool = True,
) -> LayerCost:
    """A square ``kernel`` conv producing ``out_hw`` x ``out_hw`` positions at every timestep."""
    weights = cin * cout * kernel * kernel
    return LayerCost(
        name,
        "conv",
        params=weights + (cout if bias else 0),
        macs=weights * out_hw * out_hw * timesteps,
        spiking_input=spiking_input,
    )


def linear_cost(
    name: str, fin: int, fout: int, tokens: int, timesteps: int, *, bias: bool = True
) -> LayerCost:
    """A token-wise linear layer (1x1 conv) applied to ``tokens`` tokens at every timestep."""
    return LayerCost(
        name,
        "linear",
        params=fin * fout + (fout if bias else 0),
        macs=fin * fout * tokens * timesteps,
    )


def bn_cost(name: str, channels: int) -> LayerCost:
    """BatchNorm: an affine weight and bias per channel (foldable into the preceding layer)."""
    return LayerCost(name, "bn", params=2 * channels)


def neuron_cost(name: str, cfg: ArchConfig) -> LayerCost:
    """A spiking neuron layer: PLIF has one learnable time constant, LIF none."""
    return LayerCost(name, "neuron", params=1 if cfg.neuron.kind == "plif" else 0)


def matmul_cost(name: str, macs: int) -> LayerCost:
    """A product between two activations (attention)."""
    return LayerCost(name, "matmul", matmul_macs=macs)


def spiking_neuron(neuron: NeuronConfig, threshold: float | None = None) -> nn.Module:
    """A multi-step neuron from the config; ``threshold`` overrides the firing threshold."""
    return make_neuron(
        neuron.kind,
        tau=neuron.tau,
        v_threshold=neuron.threshold if threshold is None else threshold,
        surrogate=neuron.surrogate,
        alpha=neuron.alpha,
        detach_reset=neuron.detach_reset,
    )


class _CanonicalGrad(torch.autograd.Function):
    """Identity whose backward hands on the gradient with the canonical strides of a layout."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, channels_last: bool) -> Tensor:
        ctx.channels_last = channels_last
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        _, c, h, w = grad.shape
        if ctx.channels_last:
            canonical, layout = (h * w * c, 1, w * c, c), torch.channels_last
        else:
            canonical, layout = (c * h * w, h * w, w, 1), torch.contiguous_format
        # clone, not contiguous(): a size-1 dim makes odd strides pass as "contiguous"
        return (grad if grad.stride() == canonical else grad.clone(memory_format=layout)), None


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose backward always receives a gradient in its input's layout.

    torch's CPU BatchNorm backward (2.13, float32 and float64) returns wrong dx, dgamma and dbeta
    for an NCHW input whose gradient is channels-last with non-canonical strides, which a size-1
    dim allows: at T x B = 1 the token transpose after a stem hands its last BN strides
    (C, 1, W*C, C). Re-laying such a gradient out is exact; for a channels-last gradient of an
    NCHW input it is also faster than torch's mixed-layout path. Same parameters and state keys.
    """

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = super().forward(x)
        if not y.requires_grad:
            return y
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        out: Tensor = _CanonicalGrad.apply(y, channels_last)
        return out


class LinearBN(nn.Module):
    """Token-wise linear layer followed by BatchNorm over channels, on ``[T, B, N, C]``.

    ``spikes`` says what the input holds (see :mod:`autost.model.blocks.lowmem`); with
    ``low_memory`` set the linear layer saves such an input as bool/uint8 for backward.
    """

    def __init__(
        self, fin: int, fout: int, *, bias: bool = True, spikes: SpikeKind | None = None
    ) -> None:
        super().__init__()
        self.linear = SpikeLinear(fin, fout, bias=bias, spikes=spikes)
        self.bn = nn.BatchNorm1d(fout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        shape = y.shape
        return self.bn(y.reshape(-1, shape[-1])).reshape(shape)

    @staticmethod
    def costs(
        name: str, fin: int, fout: int, tokens: int, timesteps: int, *, bias: bool = True
    ) -> list[LayerCost]:
        """Analytic rows of this layer."""
        return [
            linear_cost(f"{name}.linear", fin, fout, tokens, timesteps, bias=bias),
            bn_cost(f"{name}.bn", fout),
        ]


def run_neuron_tb(neuron: nn.Module, x: Tensor, timesteps: int) -> Tensor:
    """Apply a multi-step neuron to a ``[T*B, ...]`` tensor (time folded into the batch)."""
    out: Tensor = neuron(x.reshape(timesteps, -1, *x.shape[1:]))
    return out.reshape(x.shape)


def pool2d(x: Tensor, low_memory: bool = False) -> Tensor:
    """The 3x3 / stride 2 / padding 1 max-pool every stem here uses (``low_memory``: saving
    only the argmax positions for backward, see :func:`autost.model.blocks.lowmem.max_pool2d`)."""
    if low_memory:
        return max_pool2d(x, 3, 2, 1)
    return torch.nn.functional.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ShortcutBranch(LowMemory, nn.Module):
    """``x + branch(x)`` with the configured shortcut.

    ``spike`` (Spikformer, QKFormer): the input is already spikes; the branch ends in a LIF, so
    spikes are added to spikes. ``membrane`` (Spike-driven Transformer): a LIF turns the
    membrane-potential input into spikes first, and the branch's BN output is added to the
    membrane potential. Either way the branch holds exactly one extra neuron layer.
    ``input_spikes`` is what ``branch`` receives: spikes (membrane) or spike counts (spike).

    ``flat_out_lif`` (set by a subclass) runs ``out_lif`` over the flattened ``T*B`` axis,
    so that its membrane carries from one sample to the next (official QKFormer SSA).
    """

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        self.membrane = cfg.shortcut == "membrane"
        self.in_lif = spiking_neuron(cfg.neuron) if self.membrane else None
        self.out_lif = None if self.membrane else spiking_neuron(cfg.neuron)
        self.flat_out_lif = False
        self.input_spikes: SpikeKind | None = "binary" if self.membrane else stream_kind(cfg)

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        """The branch on the input ``spikes``; ``x`` is the raw block input."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        spikes = x if self.in_lif is None else self.in_lif(x)
        y = self.branch(spikes, x)
        if self.out_lif is not None and self.flat_out_lif:
            y = self.out_lif(y.flatten(0, 1)).reshape(y.shape)
        elif self.out_lif is not None:
            y = self.out_lif(y)
        return x + y

    @staticmethod
    def shortcut_costs(cfg: ArchConfig, name: str) -> list[LayerCost]:
        """The branch's shortcut neuron."""
        which = "in_lif" if cfg.shortcut == "membrane" else "out_lif"
        return [neuron_cost(f"{name}.{which}", cfg)]
