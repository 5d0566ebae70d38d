"""Input coding: how a static image becomes a ``[T, B, C, H, W]`` input sequence."""

from __future__ import annotations

from torch import Tensor, nn

from autost.errors import AutostError
from autost.model.blocks.common import LayerCost
from autost.model.config import ArchConfig
from autost.registry import Registry

CODINGS: Registry[type[Coding]] = Registry("coding")


class Coding(nn.Module):
    """Base: static ``[B, C, H, W]`` batches are coded over T; ``[T, B, C, H, W]`` pass through."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        self.timesteps = cfg.timesteps
        self.in_channels = cfg.in_channels

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            if x.shape[1] != self.in_channels:
                raise AutostError(
                    f"input has {x.shape[1]} channels, the model expects {self.in_channels}"
                )
            return self.code(x)
        if x.dim() == 5:
            if x.shape[0] != self.timesteps or x.shape[2] != self.in_channels:
                raise AutostError(
                    f"sequence input must be [T={self.timesteps}, B, C={self.in_channels}, H, W], "
                    f"got {list(x.shape)}"
                )
            return self.code_sequence(x)
        raise AutostError(f"input must be [B, C, H, W] or [T, B, C, H, W], got {list(x.shape)}")

    def code(self, x: Tensor) -> Tensor:
        """Code a static batch into ``[T, B, C, H, W]``."""
        raise NotImplementedError

    def code_sequence(self, x: Tensor) -> Tensor:
        """Code an input that is already a sequence (event frames)."""
        return x

    @classmethod
    def costs(cls, cfg: ArchConfig) -> list[LayerCost]:
        """Analytic rows of this coding layer."""
        return []


@CODINGS.register("direct")
class DirectCoding(Coding):
    """Direct coding: the same analogue image at every timestep (the first conv sees reals)."""

    def code(self, x: Tensor) -> Tensor:
        return x.unsqueeze(0).expand(self.timesteps, *x.shape)
