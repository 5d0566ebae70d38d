"""Channel mixers: the spiking MLP (Spikformer / SDT / QKFormer) and SEMM's EMSP."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from autost.model.blocks.common import (
    LayerCost,
    LinearBN,
    ShortcutBranch,
    neuron_cost,
    spiking_neuron,
)
from autost.model.config import ArchConfig
from autost.registry import Registry

MLPS: Registry[Any] = Registry("mlp")  # classes taking (cfg, layer), with costs()


@MLPS.register("mlp")
class SpikingMLP(ShortcutBranch):
    """Two token-wise linear layers with BN and a LIF between them (hidden = int(D * ratio)).

    With a membrane shortcut and hidden == D the Spike-driven Transformer adds the block input
    to the hidden membrane potential as well; that is kept here.
    """

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__(cfg)
        dim = cfg.layer_dims[layer]
        hidden = int(dim * cfg.mlp_ratios[layer])
        self.inner_residual = self.membrane and hidden == dim
        self.fc1 = LinearBN(dim, hidden, spikes=self.input_spikes)
        self.hidden_lif = spiking_neuron(cfg.neuron)
        self.fc2 = LinearBN(hidden, dim, spikes="binary")

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        return self.fc2(self.hidden_lif(self.fc1(spikes)))

    def forward(self, x: Tensor) -> Tensor:
        if not self.inner_residual:
            return super().forward(x)
        assert self.in_lif is not None
        h = self.fc1(self.in_lif(x)) + x
        return h + self.fc2(self.hidden_lif(h))

    @classmethod
    def costs(cls, cfg: ArchConfig, layer: int, tokens: int, name: str) -> list[LayerCost]:
        """Analytic rows of the MLP of encoder block ``layer`` with ``tokens`` tokens."""
        dim, t = cfg.layer_dims[layer], cfg.timesteps
        hidden = int(dim * cfg.mlp_ratios[layer])
        return [
            *LinearBN.costs(f"{name}.fc1", dim, hidden, tokens, t),
            neuron_cost(f"{name}.hidden_lif", cfg),
            *LinearBN.costs(f"{name}.fc2", hidden, dim, tokens, t),
            *cls.shortcut_costs(cfg, name),
        ]
