"""Spiking attention mechanisms on ``[T, B, N, C]`` tokens, each in the ``ATTENTIONS`` registry.

Every mechanism is a :class:`ShortcutBranch` (so it works with spike and membrane shortcuts),
ends in a biased token-wise projection with BN, and lists its layers in ``costs``.

- ``ssa`` (Spikformer): Q, K, V = LIF(BN(W x)); out = LIF_0.5(Q K^T V * scale), no softmax.
  The product is evaluated as Q (K^T V) when N > head width, else (Q K^T) V — the same integers.
- ``sdsa`` (Spike-driven Transformer): out = Q * LIF_0.5(sum over tokens of K * V), column-wise;
  only masks and additions, no matrix product. ``sdsa_dvs_pool`` adds the official CIFAR10-DVS
  max-pools (see :class:`SDSA`).
- ``qk-token`` (QKFormer): per head, a token mask LIF_0.5(sum of Q over the head's channels)
  selects tokens of K; ``qk-channel``: a channel mask LIF_0.5(sum of Q over tokens) selects
  channels of K. Linear in N, no V.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from autost.errors import AutostError
from autost.model.blocks.common import (
    LayerCost,
    LinearBN,
    ShortcutBranch,
    matmul_cost,
    neuron_cost,
    spiking_neuron,
)
from autost.model.blocks.lowmem import SpikeKind, max_pool2d, spike_matmul, spike_mul
from autost.model.config import ArchConfig
from autost.registry import Registry

ATTENTIONS: Registry[type[Attention]] = Registry("attention")


class Attention(ShortcutBranch):
    """Base: spiking projections named ``q``, ``k`` (and ``v``) and an output projection."""

    projections: tuple[str, ...] = ("q", "k", "v")

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__(cfg)
        self.dim = cfg.layer_dims[layer]
        self.heads = cfg.num_heads[layer]
        self.scale = cfg.attn_scale
        spikes = self.input_spikes
        for p in self.projections:
            self.add_module(p, LinearBN(self.dim, self.dim, bias=cfg.qkv_bias, spikes=spikes))
            self.add_module(f"{p}_lif", spiking_neuron(cfg.neuron))
        self.attn_lif = spiking_neuron(cfg.neuron, cfg.neuron.attn_threshold)
        self.proj = LinearBN(self.dim, self.dim, bias=True, spikes=self.proj_spikes(cfg))

    @classmethod
    def proj_spikes(cls, cfg: ArchConfig) -> SpikeKind | None:
        """What the output projection receives (see :mod:`autost.model.blocks.lowmem`)."""
        return "binary"

    def spikes(self, name: str, x: Tensor) -> Tensor:
        """Spikes of projection ``name`` (``q``, ``k`` or ``v``) of the input spikes ``x``."""
        out: Tensor = getattr(self, f"{name}_lif")(getattr(self, name)(x))
        return out

    @classmethod
    def core_costs(cls, cfg: ArchConfig, layer: int, tokens: int, name: str) -> list[LayerCost]:
        """Rows between the projections and the output projection (products, masks)."""
        return []

    @classmethod
    def costs(cls, cfg: ArchConfig, layer: int, tokens: int, name: str) -> list[LayerCost]:
        """Analytic rows of the attention of encoder block ``layer`` with ``tokens`` tokens."""
        dim, t = cfg.layer_dims[layer], cfg.timesteps
        rows: list[LayerCost] = []
        for p in cls.projections:
            rows += LinearBN.costs(f"{name}.{p}", dim, dim, tokens, t, bias=cfg.qkv_bias)
            rows.append(neuron_cost(f"{name}.{p}_lif", cfg))
        rows += cls.core_costs(cfg, layer, tokens, name)
        rows.append(neuron_cost(f"{name}.attn_lif", cfg))
        rows += LinearBN.costs(f"{name}.proj", dim, dim, tokens, t, bias=True)
        return rows + cls.shortcut_costs(cfg, name)


@ATTENTIONS.register("ssa")
class SSA(Attention):
    """Spikformer's spiking self-attention (also QKFormer's last stages).

    Its output neuron (``out_lif``, the official ``proj_lif``) runs per sample. Every official
    QKFormer instead runs ``proj_lif`` on the ``[T*B, C, N]`` tensor before the reshape, so its
    membrane carries from sample ``b`` to ``b+1`` (and from the last sample at step ``t`` to
    the first at ``t+1``): equal at batch 1, different at batch >= 2. ``ssa_flat_proj_lif``
    reproduces that for official checkpoints; Spikformer's SSA and QKFormer's Q-K token
    attention reshape first (per sample).
    """

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__(cfg, layer)
        self.flat_out_lif = cfg.ssa_flat_proj_lif
        self.tim: nn.Module | None = None
        if cfg.tim:
            from autost.model.blocks.tim import TIM

            self.tim = TIM(cfg, layer)

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        t, b, n, c = spikes.shape
        h = self.heads
        q = self.spikes("q", spikes)
        if self.tim is not None:
            q = self.tim(q)
        q, k, v = (
            s.reshape(t, b, n, h, c // h).transpose(2, 3)
            for s in (q, self.spikes("k", spikes), self.spikes("v", spikes))
        )
        kt = k.transpose(-2, -1)
        if not self.low_memory:
            out = q @ (kt @ v) if n > c // h else (q @ kt) @ v
        elif n > c // h:  # the same products, spike operands saved as bool
            out = spike_matmul(q, spike_matmul(kt, v, "binary", "binary"), "binary", None)
        else:
            out = spike_matmul(spike_matmul(q, kt, "binary", "binary"), v, None, "binary")
        out = (out * self.scale).transpose(2, 3).reshape(t, b, n, c)
        return self.proj(self.attn_lif(out))

    @classmethod
    def core_costs(cls, cfg: ArchConfig, layer: int, tokens: int, name: str) -> list[LayerCost]:
        dim, heads, t = cfg.layer_dims[layer], cfg.num_heads[layer], cfg.timesteps
        width = dim // heads
        # two products per head: N*N*d each for (QK^T)V, N*d*d each for Q(K^T V)
        per_head = 2 * tokens * width * min(tokens, width)
        rows = [matmul_cost(f"{name}.qkv", per_head * heads * t)]
        if cfg.tim:
            from autost.model.blocks.tim import TIM

            rows = TIM.costs(cfg, layer, tokens, f"{name}.tim") + rows
        return rows


@ATTENTIONS.register("sdsa")
class SDSA(Attention):
    """The Spike-driven Transformer's spike-driven self-attention (SDSA, version 1).

    The official code also builds a talking-heads Conv1d and an ``attn_lif`` that its forward
    never calls; both are left out (``attn_lif`` here is its ``talking_heads_lif``).

    ``sdsa_dvs_pool`` (the official CIFAR10-DVS "DVS mode", its ``Erode``): a parameter-free
    3x3 max-pool, stride 1, padding 1, applied to the K and V spikes over the token grid, then
    to K*V before the token sum and to the output Q*KV before the projection. The last two,
    as in the official ``[T, B, heads, N, head_dim]`` layout, pool each head's (token index,
    channel) plane: neighbouring tokens in row-major order (wrapping across grid rows) and
    neighbouring channels of the head. No parameters, no multiply-accumulates.
    """

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__(cfg, layer)
        self.dvs_pool = cfg.sdsa_dvs_pool
        self.grid_side = cfg.layer_sides[layer]  # the token grid the pools work on
        self.image_size = cfg.image_size

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        q, k, v = (self.spikes(p, spikes) for p in ("q", "k", "v"))
        low = self.low_memory
        if self.dvs_pool:
            self._check_grid(spikes.shape[2])
            k, v = _pool_grid(k, self.grid_side, low), _pool_grid(v, self.grid_side, low)
        kv = spike_mul(k, v) if low else k * v
        if self.dvs_pool:
            kv = _pool_heads(kv, self.heads, low)
        mask = self.attn_lif(kv.sum(dim=2, keepdim=True))
        out = spike_mul(q, mask) if low else q * mask
        if self.dvs_pool:
            out = _pool_heads(out, self.heads, low)
        return self.proj(out)

    def _check_grid(self, tokens: int) -> None:
        """Refuse tokens that are not the config's square grid (an input of another size)."""
        side = self.grid_side
        if tokens != side * side:
            raise AutostError(
                f"sdsa_dvs_pool pools over the config's {side}x{side} token grid, but the input "
                f"gives {tokens} tokens: feed {self.image_size}x{self.image_size} images"
            )


def _pool(x: Tensor, low_memory: bool) -> Tensor:
    return max_pool2d(x, 3, 1, 1) if low_memory else F.max_pool2d(x, 3, 1, 1)


def _pool_grid(x: Tensor, side: int, low_memory: bool) -> Tensor:
    """3x3/1/1 max-pool of ``[T, B, N, C]`` tokens over their ``side`` x ``side`` grid, per
    channel."""
    t, b, n, c = x.shape
    grid = x.reshape(t * b, side, side, c).permute(0, 3, 1, 2)
    return _pool(grid, low_memory).permute(0, 2, 3, 1).reshape(t, b, n, c)


def _pool_heads(x: Tensor, heads: int, low_memory: bool) -> Tensor:
    """3x3/1/1 max-pool of ``[T, B, N, C]`` over each head's (token index, channel) plane."""
    t, b, n, c = x.shape
    planes = x.reshape(t * b, n, heads, c // heads).transpose(1, 2)
    return _pool(planes, low_memory).transpose(1, 2).reshape(t, b, n, c)


@ATTENTIONS.register("qk-token")
class QKTokenAttention(Attention):
    """QKFormer's Q-K token attention: a per-head binary token mask applied to K."""

    projections = ("q", "k")

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        t, b, n, c = spikes.shape
        h = self.heads
        q = self.spikes("q", spikes).reshape(t, b, n, h, c // h)
        k = self.spikes("k", spikes).reshape(t, b, n, h, c // h)
        mask = self.attn_lif(q.sum(dim=-1, keepdim=True))
        masked = spike_mul(mask, k) if self.low_memory else mask * k
        return self.proj(masked.reshape(t, b, n, c))


@ATTENTIONS.register("qk-channel")
class QKChannelAttention(Attention):
    """QKFormer's Q-K channel attention: a binary channel mask applied to K."""

    projections = ("q", "k")

    def branch(self, spikes: Tensor, x: Tensor) -> Tensor:
        q, k = self.spikes("q", spikes), self.spikes("k", spikes)
        mask = self.attn_lif(q.sum(dim=2, keepdim=True))
        return self.proj(spike_mul(mask, k) if self.low_memory else mask * k)
