"""TIM, the Temporal Interaction Module (Shen et al., IJCAI 2024), on SSA's query spikes.

For query spikes ``q_t`` (``[B, N, C]`` per timestep, C = heads x head width d):

    s_0 = q_0
    s_t = LIF_out( alpha * LIF_in( Conv(s_{t-1}) ) + (1 - alpha) * q_t ),   t = 1 .. T-1

``LIF_in`` (threshold 0.3) and ``LIF_out`` (threshold 0.5) keep their membranes across the
loop (tau, reset and surrogate from the config). ``Conv`` is a ``Conv1d(d, d, kernel,
padding=kernel // 2, bias=True)`` shared by all heads, sliding along the **tokens** with the
head's features as channels: it works for any token count and head width.

Difference from the official code (BrainCog ``examples/TIM``): there the Conv1d takes the N
tokens as channels and slides along the head features, so it only runs when N == d (16 in the
published DVS model). Here the axes are swapped: the conv is dense over a head's features and
local (``tim_kernel``) over neighbouring tokens; its bias is per feature, not per token; padding
is at the ends of the token sequence. The parameter count (k d^2 + d) equals the official one
whenever N == d. The official code also passes ``v_threshold`` to a neuron class that ignores
it (so both TIM neurons fire at 1.0 and the output neuron can never fire); the intended 0.3 /
0.5 are used here, and membranes are not detached between steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from autost.model.blocks.common import LayerCost
from autost.model.blocks.lowmem import SpikeConv1d
from autost.model.config import ArchConfig
from autost.neurons import get_surrogate

TIM_IN_THRESHOLD = 0.3
TIM_OUT_THRESHOLD = 0.5


class TIM(nn.Module):
    """Temporal interaction on ``[T, B, N, C]`` query spikes of encoder block ``layer``."""

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__()
        self.heads = cfg.num_heads[layer]
        width = cfg.layer_dims[layer] // self.heads
        self.alpha = cfg.tim_alpha
        kernel = cfg.tim_kernel
        self.conv = SpikeConv1d(width, width, kernel, padding=kernel // 2, spikes="binary")
        self.tau = cfg.neuron.tau
        self.surrogate = get_surrogate(cfg.neuron.surrogate)
        self.surrogate_alpha = cfg.neuron.alpha
        self.detach_reset = cfg.neuron.detach_reset

    def _lif_step(self, membrane: Tensor, x: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
        h = membrane + (x - membrane) / self.tau
        spike = self.surrogate.spike(h - threshold, self.surrogate_alpha)
        keep = 1.0 - (spike.detach() if self.detach_reset else spike)
        return spike, h * keep

    def forward(self, q: Tensor) -> Tensor:
        t, b, n, c = q.shape
        h, d = self.heads, c // self.heads
        out = [q[0]]
        v_in = torch.zeros_like(q[0])
        v_out = torch.zeros_like(q[0])
        for step in range(1, t):
            prev = out[-1].reshape(b, n, h, d).permute(0, 2, 3, 1).reshape(b * h, d, n)
            mixed = self.conv(prev).reshape(b, h, d, n).permute(0, 3, 1, 2).reshape(b, n, c)
            a, v_in = self._lif_step(v_in, mixed, TIM_IN_THRESHOLD)
            s, v_out = self._lif_step(
                v_out, self.alpha * a + (1.0 - self.alpha) * q[step], TIM_OUT_THRESHOLD
            )
            out.append(s)
        return torch.stack(out)

    @staticmethod
    def costs(cfg: ArchConfig, layer: int, tokens: int, name: str) -> list[LayerCost]:
        """The conv runs on every timestep but the first (its input is spikes)."""
        dim, heads, k = cfg.layer_dims[layer], cfg.num_heads[layer], cfg.tim_kernel
        width = dim // heads
        return [
            LayerCost(
                f"{name}.conv",
                "conv",
                params=width * width * k + width,
                macs=heads * width * width * k * tokens * (cfg.timesteps - 1),
            )
        ]
