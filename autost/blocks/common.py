"""Pieces shared by every block: neuron factory, projections with BatchNorm, analytic cost rows.

Every block class pairs its ``nn.Module`` with a ``costs(...)`` classmethod that lists the same
layers analytically (parameters and multiply-accumulates), so that the analytic cost model and
``count_params`` never build a model, and a reader finds a block's structure in one file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from autost.config import ArchConfig, NeuronConfig
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


class LinearBN(nn.Module):
    """Token-wise linear layer followed by BatchNorm over channels, on ``[T, B, N, C]``."""

    def __init__(self, fin: int, fout: int, *, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(fin, fout, bias=bias)
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


def pool2d(x: Tensor) -> Tensor:
    """The 3x3 / stride 2 / padding 1 max-pool every stem here uses."""
    return torch.nn.functional.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ShortcutBranch(nn.Module):
    """``x + branch(x)`` with the configured shortcut.

    ``spike`` (Spikformer, QKFormer): the input is already spikes; the branch ends in a LIF, so
    spikes are added to spikes. ``membrane`` (Spike-driven Transformer): a LIF turns the
    membrane-potential input into spikes first, and the branch's BN output is added to the
    membrane potential. Either way the branch holds exactly one extra neuron layer.
    """

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        self.membrane = cfg.shortcut == "membrane"
        self.in_lif = spiking_neuron(cfg.neuron) if self.membrane else None
        self.out_lif = None if self.membrane else spiking_neuron(cfg.neuron)

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        """The branch on the input ``spikes``; ``x`` is the raw block input."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        spikes = x if self.in_lif is None else self.in_lif(x)
        y = self.branch(spikes, x)
        if self.out_lif is not None:
            y = self.out_lif(y)
        return x + y

    @staticmethod
    def shortcut_costs(cfg: ArchConfig, name: str) -> list[LayerCost]:
        """The branch's shortcut neuron."""
        which = "in_lif" if cfg.shortcut == "membrane" else "out_lif"
        return [neuron_cost(f"{name}.{which}", cfg)]
