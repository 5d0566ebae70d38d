"""SEMM, the spiking experts mixture (Zhou et al., NeurIPS 2024): EMSA attention, EMSP MLP.

No official code has been released. The structure follows the paper's description (a spiking
router whose 0/1 outputs mask each expert per token and timestep, experts summed, no softmax and
no top-k) and the layer shapes of the public re-implementation in
Fancyssc/SpikingTransformerBenchmark (``spikf_semm_cifar.py``):

EMSA, E = ``num_experts`` head-wise experts of width d = D / E:
  q_i = LIF(BN(W_qi x)) per expert (stored as one D -> D projection), K = LIF(BN(W_k x)) (D -> d)
  and V = LIF(BN(W_v x)) (D -> D) shared, router r = LIF(BN(W_r x)) (D -> E);
  e_i = LIF(q_i K^T V * scale); y = sum_i r_i * e_i; out = BN(W_o y) (+ LIF with spike shortcut).
EMSP, channel-wise experts: h = LIF(BN(W_1 x)) (D -> r D) is split in halves; the first half goes
  through a depthwise 3x3 conv + BN + LIF over the token grid (one expert per channel), the
  second half is the router mask; out = BN(W_2 (experts * router)) (r D / 2 -> D).

Differences from that re-implementation: q/k/v/router biases follow ``qkv_bias`` (it always uses
biases); it hard-codes T = 4 and an 8x8 token grid, here any T and square grid work.
"""

from __future__ import annotations

import math

from torch import Tensor

from autost.errors import AutostError
from autost.model.blocks.attention import ATTENTIONS, Attention
from autost.model.blocks.common import (
    BatchNorm2d,
    LayerCost,
    LinearBN,
    ShortcutBranch,
    bn_cost,
    matmul_cost,
    neuron_cost,
    spiking_neuron,
)
from autost.model.blocks.lowmem import SpikeConv2d, SpikeKind, count_kind, spike_matmul, spike_mul
from autost.model.blocks.mlp import MLPS
from autost.model.config import ArchConfig


@ATTENTIONS.register("semm")
class EMSA(Attention):
    """Experts-mixture spiking attention; ``num_heads`` is unused (each expert is a head)."""

    projections = ()

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__(cfg, layer)
        dim, experts = self.dim, cfg.num_experts
        self.experts, self.width = experts, dim // experts
        bias, spikes = cfg.qkv_bias, self.input_spikes
        self.q = LinearBN(dim, dim, bias=bias, spikes=spikes)
        self.q_lif = spiking_neuron(cfg.neuron)
        self.k = LinearBN(dim, self.width, bias=bias, spikes=spikes)
        self.k_lif = spiking_neuron(cfg.neuron)
        self.v = LinearBN(dim, dim, bias=bias, spikes=spikes)
        self.v_lif = spiking_neuron(cfg.neuron)
        self.router = LinearBN(dim, experts, bias=bias, spikes=spikes)
        self.router_lif = spiking_neuron(cfg.neuron)
        # each expert's output neuron (the re-implementation's per-expert LIF, threshold 1)
        self.attn_lif = spiking_neuron(cfg.neuron)

    @classmethod
    def proj_spikes(cls, cfg: ArchConfig) -> SpikeKind | None:
        return count_kind(cfg.num_experts)  # the sum over experts of routed spikes

    @staticmethod
    def key_value_first(tokens: int, width: int, dim: int, experts: int) -> bool:
        """Whether Q (K^T V) is cheaper than (Q K^T) V; both give the same integers."""
        return tokens * width * dim * (1 + experts) <= experts * tokens * tokens * (width + dim)

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        t, b, n, c = spikes.shape
        e, d = self.experts, self.width
        q = self.spikes("q", spikes).reshape(t, b, n, e, d).transpose(2, 3)  # [T,B,E,N,d]
        k = self.spikes("k", spikes).unsqueeze(2)  # [T,B,1,N,d]
        v = self.spikes("v", spikes).unsqueeze(2)  # [T,B,1,N,D]
        kt, key_value_first = k.transpose(-2, -1), self.key_value_first(n, d, c, e)
        if not self.low_memory:
            out = q @ (kt @ v) if key_value_first else (q @ kt) @ v
        elif key_value_first:  # the same products, spike operands saved as bool
            out = spike_matmul(q, spike_matmul(kt, v, "binary", "binary"), "binary", None)
        else:
            out = spike_matmul(spike_matmul(q, kt, "binary", "binary"), v, None, "binary")
        experts = self.attn_lif(out * self.scale)  # [T,B,E,N,D]
        route = self.router_lif(self.router(spikes)).transpose(2, 3).unsqueeze(-1)  # [T,B,E,N,1]
        routed = spike_mul(route, experts) if self.low_memory else route * experts
        return self.proj(routed.sum(dim=2))

    @classmethod
    def costs(cls, cfg: ArchConfig, layer: int, tokens: int, name: str) -> list[LayerCost]:
        dim, t, e = cfg.layer_dims[layer], cfg.timesteps, cfg.num_experts
        width, bias = dim // e, cfg.qkv_bias
        if cls.key_value_first(tokens, width, dim, e):
            products = tokens * width * dim * (1 + e)
        else:
            products = e * tokens * tokens * (width + dim)
        return [
            *LinearBN.costs(f"{name}.q", dim, dim, tokens, t, bias=bias),
            neuron_cost(f"{name}.q_lif", cfg),
            *LinearBN.costs(f"{name}.k", dim, width, tokens, t, bias=bias),
            neuron_cost(f"{name}.k_lif", cfg),
            *LinearBN.costs(f"{name}.v", dim, dim, tokens, t, bias=bias),
            neuron_cost(f"{name}.v_lif", cfg),
            matmul_cost(f"{name}.qkv", products * t),
            neuron_cost(f"{name}.attn_lif", cfg),
            *LinearBN.costs(f"{name}.router", dim, e, tokens, t, bias=bias),
            neuron_cost(f"{name}.router_lif", cfg),
            *LinearBN.costs(f"{name}.proj", dim, dim, tokens, t, bias=True),
            *cls.shortcut_costs(cfg, name),
        ]


@MLPS.register("emsp")
class EMSP(ShortcutBranch):
    """Experts-mixture spiking perceptron with channel-wise (depthwise conv) experts."""

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__(cfg)
        dim = cfg.layer_dims[layer]
        hidden = int(dim * cfg.mlp_ratios[layer])
        self.half_width = hidden // 2
        self.fc1 = LinearBN(dim, hidden, spikes=self.input_spikes)
        self.hidden_lif = spiking_neuron(cfg.neuron)
        self.expert_conv = SpikeConv2d(
            self.half_width,
            self.half_width,
            3,
            padding=1,
            groups=self.half_width,
            bias=False,
            spikes="binary",
        )
        self.expert_bn = BatchNorm2d(self.half_width)
        self.expert_lif = spiking_neuron(cfg.neuron)
        self.fc2 = LinearBN(self.half_width, dim, spikes="binary")

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        t, b, n, _ = spikes.shape
        side = math.isqrt(n)
        if side * side != n:
            raise AutostError(f"SEMM experts need a square token grid, got {n} tokens")
        h = self.hidden_lif(self.fc1(spikes))
        experts, route = h[..., : self.half_width], h[..., self.half_width :]
        grid = experts.reshape(t * b, side, side, self.half_width).permute(0, 3, 1, 2)
        grid = self.expert_bn(self.expert_conv(grid))
        experts = self.expert_lif(grid.reshape(t, b, self.half_width, n).transpose(2, 3))
        return self.fc2(spike_mul(experts, route) if self.low_memory else experts * route)

    @classmethod
    def costs(cls, cfg: ArchConfig, layer: int, tokens: int, name: str) -> list[LayerCost]:
        dim, t = cfg.layer_dims[layer], cfg.timesteps
        hidden = int(dim * cfg.mlp_ratios[layer])
        half = hidden // 2
        return [
            *LinearBN.costs(f"{name}.fc1", dim, hidden, tokens, t),
            neuron_cost(f"{name}.hidden_lif", cfg),
            LayerCost(f"{name}.expert_conv", "conv", params=half * 9, macs=half * 9 * tokens * t),
            bn_cost(f"{name}.expert_bn", half),
            neuron_cost(f"{name}.expert_lif", cfg),
            *LinearBN.costs(f"{name}.fc2", half, dim, tokens, t),
            *cls.shortcut_costs(cfg, name),
        ]
