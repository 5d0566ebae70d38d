"""GAC, Gated Attention Coding (Qiu et al., AAAI 2024), following the official bollossom/GAC code.

The image is repeated over T; the stem's first conv + BN gives a real-valued map X and its LIF
gives spikes S. GAC passes on ``sigmoid(TA(X) * SCA(X)) * S``:

- TA (temporal attention): average and max pooling of X over (C, H, W) per timestep, each through
  a shared bias-free MLP T -> T//2 -> T with ReLU, summed: one logit per sample and timestep.
- SCA (spatial-channel attention): two bias-free C -> C convs of kernel 4 with 'same' padding
  (one before, two after, as PyTorch pads even kernels) and a ReLU between.

A single sigmoid acts on the product of the two branches. TA's weights are tied to T (T >= 2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from autost.model.blocks.coding import CODINGS, DirectCoding
from autost.model.blocks.common import LayerCost
from autost.model.config import ArchConfig

GAC_KERNEL = 4


@CODINGS.register("gac")
class GACCoding(DirectCoding):
    """Direct coding of the image; the gate itself sits on the stem's first spikes (``GACGate``)."""


class GACGate(nn.Module):
    """The gate on the first stem layer's spikes; ``forward(x, spikes)`` on ``[T*B, C, H, W]``."""

    def __init__(self, cfg: ArchConfig, channels: int) -> None:
        super().__init__()
        t = cfg.timesteps
        self.timesteps = t
        self.ta_fc1 = nn.Linear(t, t // 2, bias=False)
        self.ta_fc2 = nn.Linear(t // 2, t, bias=False)
        self.sca_conv1 = nn.Conv2d(channels, channels, GAC_KERNEL, bias=False)
        self.sca_conv2 = nn.Conv2d(channels, channels, GAC_KERNEL, bias=False)

    @staticmethod
    def _same(x: Tensor) -> Tensor:
        # PyTorch's 'same' padding for an even kernel: (k-1)//2 before, the rest after
        before = (GAC_KERNEL - 1) // 2
        after = GAC_KERNEL - 1 - before
        return torch.nn.functional.pad(x, (before, after, before, after))

    def forward(self, x: Tensor, spikes: Tensor) -> Tensor:
        t = self.timesteps
        per_sample = x.reshape(t, -1, *x.shape[1:]).transpose(0, 1)  # [B, T, C, H, W]
        pooled = (per_sample.mean(dim=(2, 3, 4)), per_sample.amax(dim=(2, 3, 4)))  # [B, T]
        ta = sum(self.ta_fc2(torch.relu(self.ta_fc1(p))) for p in pooled)
        ta = torch.as_tensor(ta).transpose(0, 1).reshape(-1, 1, 1, 1)  # [T*B, 1, 1, 1]
        sca = self.sca_conv2(self._same(torch.relu(self.sca_conv1(self._same(x)))))
        return torch.sigmoid(ta * sca) * spikes

    @staticmethod
    def costs(cfg: ArchConfig, channels: int, side: int, name: str) -> list[LayerCost]:
        """TA's MLP runs twice per sample; SCA's convs at every timestep (real-valued input)."""
        t, half = cfg.timesteps, cfg.timesteps // 2
        conv_weights = channels * channels * GAC_KERNEL * GAC_KERNEL
        return [
            LayerCost(f"{name}.ta_fc1", "linear", t * half, 2 * t * half, spiking_input=False),
            LayerCost(f"{name}.ta_fc2", "linear", t * half, 2 * t * half, spiking_input=False),
            LayerCost(
                f"{name}.sca_conv1",
                "conv",
                conv_weights,
                conv_weights * side * side * t,
                spiking_input=False,
            ),
            LayerCost(
                f"{name}.sca_conv2",
                "conv",
                conv_weights,
                conv_weights * side * side * t,
                spiking_input=False,
            ),
        ]
