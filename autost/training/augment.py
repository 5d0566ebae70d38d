"""Batch-level data augmentation on the training device, driven by an explicit generator.

Random translation (zero-padded crop, the CIFAR recipe) and horizontal flips, applied to a
whole batch at once: static images ``[B, C, H, W]`` and event frames ``[T, B, C, H, W]`` alike
(every frame of a sample moves the same way). Randomness comes only from the generator passed
in, seeded per epoch, so an epoch's augmentation is the same whether the run was resumed or not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: ``augment="auto"`` per dataset: flips only where mirror images keep their class (digits,
#: MNIST and N-MNIST do not; DVS Gesture has left- and right-hand classes); none for SHD,
#: whose "image" is a channel layout.
AUTO_AUGMENT = {
    "cifar10": "crop-flip",
    "cifar100": "crop-flip",
    "imagefolder": "crop-flip",
    "cifar10dvs": "crop-flip",
    "shd": "none",
}


def resolve_augment(augment: str, dataset: str) -> str:
    """The concrete policy for ``augment`` (``auto`` picks by dataset; default ``crop``)."""
    return AUTO_AUGMENT.get(dataset, "crop") if augment == "auto" else augment


def augment_batch(x: Tensor, policy: str, generator: torch.Generator) -> Tensor:
    """``x`` translated by up to 1/8 of its side (``crop``) and mirrored (``crop-flip``)."""
    if policy == "none":
        return x
    sequence = x.dim() == 5
    if sequence:
        steps, batch = x.shape[:2]
        x = x.transpose(0, 1).reshape(batch, -1, *x.shape[-2:])
    batch, _, height, width = x.shape
    pad = max(1, min(height, width) // 8)
    draw = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator)
    flips = torch.rand(batch, generator=generator) < 0.5
    dy, dx = draw.to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (torch.arange(height, device=x.device)[None, :] + dy[:, None])[:, :, None]
    cols = (torch.arange(width, device=x.device)[None, :] + dx[:, None])[:, None, :]
    index = torch.arange(batch, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2)
    if policy == "crop-flip":
        out = torch.where(flips.to(x.device)[:, None, None, None], out.flip(-1), out)
    out = out.contiguous()
    if sequence:
        out = out.reshape(batch, steps, -1, height, width).transpose(0, 1)
    return out
