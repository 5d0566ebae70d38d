"""Stems (patch embeddings) that turn ``[T, B, C, H, W]`` inputs into ``[T, B, N, D]`` tokens.

- ``sps``: Spikformer's Spiking Patch Splitting: 3x3 convs to D/8, D/4, D/2, D (conv-BN-LIF,
  then an optional 3x3/2 max-pool after each, per ``stem_pooling``), then a relative position
  embedding conv whose spikes are added to its input (spike shortcut).
- ``sps-membrane``: the Spike-driven Transformer's SPS: the last conv is max-pooled *before* its
  LIF and the position-embedding conv's BN output is added to that membrane potential.
- ``qk-cifar`` / ``qk-imagenet`` / ``qk-dvs``: QKFormer's hierarchical patch embeddings with a
  deformed shortcut (a strided 1x1 conv-BN-LIF branch); later stages start with
  :class:`QKDownsample`. Conv widths of the first stage's embedding (w = first stage width):
  cifar w/2, w (no pooling); imagenet w/2, w, w (pool after the first two); dvs w/8, w/4, w/2,
  w (pool after the last three). The shortcut branches from conv 0 (cifar, imagenet) or conv 1
  (dvs) and its stride equals the pooling that follows that point.
"""

from __future__ import annotations

from itertools import pairwise

from torch import Tensor, nn

from autost.model.blocks.common import (
    BatchNorm2d,
    LayerCost,
    bn_cost,
    conv_cost,
    neuron_cost,
    pool2d,
    run_neuron_tb,
    spiking_neuron,
)
from autost.model.blocks.gac import GACGate
from autost.model.blocks.lowmem import LowMemory, SpikeConv2d, SpikeKind, stream_kind
from autost.model.config import ArchConfig
from autost.registry import Registry

STEMS: Registry[type[Stem]] = Registry("stem")

#: QKFormer first-stage embedding forms: conv widths as divisors of the stage width, and the
#: index of the conv whose output feeds the deformed shortcut.
QK_FORMS: dict[str, tuple[tuple[int, ...], int]] = {
    "qk-cifar": ((2, 1), 0),
    "qk-imagenet": ((2, 1, 1), 0),
    "qk-dvs": ((8, 4, 2, 1), 1),
}


def _conv3(cin: int, cout: int, spikes: SpikeKind | None) -> nn.Conv2d:
    return SpikeConv2d(cin, cout, kernel_size=3, padding=1, bias=False, spikes=spikes)


def _conv_stack(module: Stem, widths: list[int], cfg: ArchConfig) -> None:
    """Give ``module`` the 3x3 conv / BN / LIF lists of a stem through ``widths``. The convs
    receive the image, then spikes (GAC-gated, so real-valued, after the first)."""
    binary: SpikeKind = "binary"
    first = None if cfg.coding == "gac" else binary
    module.conv_spikes = [None, first, *[binary] * (len(widths) - 3)]
    pairs = zip(pairwise(widths), module.conv_spikes, strict=True)
    module.convs = nn.ModuleList(_conv3(a, b, spikes) for (a, b), spikes in pairs)
    module.bns = nn.ModuleList(BatchNorm2d(c) for c in widths[1:])
    module.lifs = nn.ModuleList(spiking_neuron(cfg.neuron) for _ in widths[1:])
    if cfg.coding == "gac":
        module.gac = GACGate(cfg, widths[1])


def _conv_stack_costs(cfg: ArchConfig, widths: list[int]) -> tuple[list[LayerCost], int]:
    """Rows of a stem's 3x3 conv / BN / LIF stack and the side after its pools (each conv runs
    at the resolution before its pool, whether the pool follows the BN or the LIF)."""
    rows: list[LayerCost] = []
    side, t = cfg.image_size, cfg.timesteps
    for i, flag in enumerate(cfg.stem_pooling):
        rows += [
            conv_cost(f"stem.convs.{i}", widths[i], widths[i + 1], 3, side, t, spiking_input=i > 0),
            bn_cost(f"stem.bns.{i}", widths[i + 1]),
            neuron_cost(f"stem.lifs.{i}", cfg),
        ]
        side //= 2 if flag == "1" else 1
    return rows, side


class Stem(LowMemory, nn.Module):
    """Base class: ``forward(x [T,B,C,H,W]) -> tokens [T,B,N,D]``; ``costs(cfg)`` lists layers."""

    convs: nn.ModuleList
    bns: nn.ModuleList
    lifs: nn.ModuleList
    conv_spikes: list[SpikeKind | None]

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        self.timesteps = cfg.timesteps
        self.gac: GACGate | None = None

    def _first_spikes(self, pre: Tensor, lif: nn.Module) -> Tensor:
        """Spikes of the first stem layer, gated by GAC when the coding is ``gac``."""
        spikes = run_neuron_tb(lif, pre, self.timesteps)
        return spikes if self.gac is None else self.gac(pre, spikes)

    @classmethod
    def costs(cls, cfg: ArchConfig) -> list[LayerCost]:
        raise NotImplementedError

    @staticmethod
    def _with_gate(cfg: ArchConfig, rows: list[LayerCost], channels: int, side: int) -> None:
        """Insert GAC's rows after the first stem neuron when the coding is ``gac``."""
        if cfg.coding == "gac":
            at = next(i for i, r in enumerate(rows) if r.name == "stem.lifs.0") + 1
            rows[at:at] = GACGate.costs(cfg, channels, side, "stem.gac")

    @staticmethod
    def _to_tokens(x: Tensor, timesteps: int) -> Tensor:
        tb, c, h, w = x.shape
        return x.reshape(timesteps, tb // timesteps, c, h * w).transpose(2, 3)


@STEMS.register("sps")
class SPS(Stem):
    """Spikformer's spiking patch splitting with a spike-shortcut position embedding."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__(cfg)
        dim = cfg.stage_dims[0]
        widths = [cfg.in_channels, dim // 8, dim // 4, dim // 2, dim]
        self.pools = [flag == "1" for flag in cfg.stem_pooling]
        _conv_stack(self, widths, cfg)
        self.rpe_conv = _conv3(dim, dim, "binary")
        self.rpe_bn = BatchNorm2d(dim)
        self.rpe_lif = spiking_neuron(cfg.neuron)

    def forward(self, x: Tensor) -> Tensor:
        t = self.timesteps
        x = x.flatten(0, 1)
        for i, (conv, bn, lif, pool) in enumerate(
            zip(self.convs, self.bns, self.lifs, self.pools, strict=True)
        ):
            pre = bn(conv(x))
            x = self._first_spikes(pre, lif) if i == 0 else run_neuron_tb(lif, pre, t)
            if pool:
                x = pool2d(x, self.low_memory)
        x = x + run_neuron_tb(self.rpe_lif, self.rpe_bn(self.rpe_conv(x)), t)
        return self._to_tokens(x, t)

    @classmethod
    def costs(cls, cfg: ArchConfig) -> list[LayerCost]:
        dim, t = cfg.stage_dims[0], cfg.timesteps
        widths = [cfg.in_channels, dim // 8, dim // 4, dim // 2, dim]
        side = cfg.image_size
        rows, side = _conv_stack_costs(cfg, widths)
        rows += [
            conv_cost("stem.rpe_conv", dim, dim, 3, side, t),
            bn_cost("stem.rpe_bn", dim),
            neuron_cost("stem.rpe_lif", cfg),
        ]
        cls._with_gate(cfg, rows, widths[1], cfg.image_size)
        return rows


@STEMS.register("sps-membrane")
class SPSMembrane(Stem):
    """The Spike-driven Transformer's SPS: tokens are membrane potentials (no final LIF).

    The official code also builds an ``rpe_lif`` that its forward never calls; it is left out.
    """

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__(cfg)
        dim = cfg.stage_dims[0]
        widths = [cfg.in_channels, dim // 8, dim // 4, dim // 2, dim]
        self.pools = [flag == "1" for flag in cfg.stem_pooling]
        _conv_stack(self, widths, cfg)
        self.rpe_conv = _conv3(dim, dim, "binary")
        self.rpe_bn = BatchNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        t = self.timesteps
        x = x.flatten(0, 1)
        last = len(self.convs) - 1
        for i, (conv, bn, lif, pool) in enumerate(
            zip(self.convs, self.bns, self.lifs, self.pools, strict=True)
        ):
            x = bn(conv(x))
            if i == last:
                if pool:
                    x = pool2d(x, self.low_memory)
                membrane = x
                x = run_neuron_tb(lif, x, t)
            else:
                x = self._first_spikes(x, lif) if i == 0 else run_neuron_tb(lif, x, t)
                if pool:
                    x = pool2d(x, self.low_memory)
        x = self.rpe_bn(self.rpe_conv(x)) + membrane
        return self._to_tokens(x, t)

    @classmethod
    def costs(cls, cfg: ArchConfig) -> list[LayerCost]:
        return [row for row in SPS.costs(cfg) if row.name != "stem.rpe_lif"]


class _QKStem(Stem):
    """QKFormer's first-stage patch embedding with the deformed (strided 1x1) shortcut."""

    form: str = ""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__(cfg)
        width = cfg.stage_dims[0]
        divisors, self.source = QK_FORMS[self.form]
        widths = [cfg.in_channels, *(width // d for d in divisors)]
        self.pools = [flag == "1" for flag in cfg.stem_pooling]
        _conv_stack(self, widths, cfg)
        stride = 2 ** sum(self.pools[self.source + 1 :])
        self.res_conv = SpikeConv2d(
            widths[self.source + 1],
            width,
            1,
            stride=stride,
            bias=False,
            spikes=self.conv_spikes[self.source + 1],  # what the conv after the source receives
        )
        self.res_bn = BatchNorm2d(width)
        self.res_lif = spiking_neuron(cfg.neuron)

    def forward(self, x: Tensor) -> Tensor:
        t = self.timesteps
        x = x.flatten(0, 1)
        feat = x
        for i, (conv, bn, lif, pool) in enumerate(
            zip(self.convs, self.bns, self.lifs, self.pools, strict=True)
        ):
            x = bn(conv(x))
            if pool:
                x = pool2d(x, self.low_memory)
            x = self._first_spikes(x, lif) if i == 0 else run_neuron_tb(lif, x, t)
            if i == self.source:
                feat = x
        x = x + run_neuron_tb(self.res_lif, self.res_bn(self.res_conv(feat)), t)
        return self._to_tokens(x, t)

    @classmethod
    def costs(cls, cfg: ArchConfig) -> list[LayerCost]:
        width, t = cfg.stage_dims[0], cfg.timesteps
        divisors, source = QK_FORMS[cls.form]
        widths = [cfg.in_channels, *(width // d for d in divisors)]
        side = cfg.image_size
        rows, side = _conv_stack_costs(cfg, widths)
        rows += [
            conv_cost("stem.res_conv", widths[source + 1], width, 1, side, t),
            bn_cost("stem.res_bn", width),
            neuron_cost("stem.res_lif", cfg),
        ]
        first_side = cfg.image_size // (2 if cfg.stem_pooling[0] == "1" else 1)
        cls._with_gate(cfg, rows, widths[1], first_side)
        return rows


@STEMS.register("qk-cifar")
class QKStemCifar(_QKStem):
    """QKFormer CIFAR patch embedding (full resolution into stage 1)."""

    form = "qk-cifar"


@STEMS.register("qk-imagenet")
class QKStemImageNet(_QKStem):
    """QKFormer ImageNet patch embedding (4x downsampling into stage 1)."""

    form = "qk-imagenet"


@STEMS.register("qk-dvs")
class QKStemDVS(_QKStem):
    """QKFormer DVS patch embedding (8x downsampling into stage 1)."""

    form = "qk-dvs"


class QKDownsample(LowMemory, nn.Module):
    """QKFormer's patch embedding between stages: width w/2 -> w, resolution halved.

    Main branch: 3x3 conv-BN-LIF (w/2 -> w), 3x3 conv-BN-LIF (w -> w) with a 3x3/2 max-pool after
    the first BN (ImageNet code) or the second BN (CIFAR and DVS code); shortcut: 1x1/2 conv-BN-LIF.
    """

    def __init__(self, cfg: ArchConfig, width: int) -> None:
        super().__init__()
        self.timesteps = cfg.timesteps
        self.pool_first = cfg.stem == "qk-imagenet"
        half = width // 2
        stream = stream_kind(cfg)
        self.conv1, self.bn1 = _conv3(half, width, stream), BatchNorm2d(width)
        self.lif1 = spiking_neuron(cfg.neuron)
        self.conv2, self.bn2 = _conv3(width, width, "binary"), BatchNorm2d(width)
        self.lif2 = spiking_neuron(cfg.neuron)
        self.res_conv = SpikeConv2d(half, width, 1, stride=2, bias=False, spikes=stream)
        self.res_bn = BatchNorm2d(width)
        self.res_lif = spiking_neuron(cfg.neuron)

    def forward(self, tokens: Tensor, side: int) -> Tensor:
        t, b, _, c = tokens.shape
        x = tokens.transpose(2, 3).reshape(t * b, c, side, side)
        feat = x
        x = self.bn1(self.conv1(x))
        if self.pool_first:
            x = pool2d(x, self.low_memory)
        x = run_neuron_tb(self.lif1, x, t)
        x = self.bn2(self.conv2(x))
        if not self.pool_first:
            x = pool2d(x, self.low_memory)
        x = run_neuron_tb(self.lif2, x, t)
        x = x + run_neuron_tb(self.res_lif, self.res_bn(self.res_conv(feat)), t)
        return Stem._to_tokens(x, t)

    @staticmethod
    def costs(cfg: ArchConfig, name: str, width: int, side: int) -> list[LayerCost]:
        """Rows for a downsampling from ``side`` x ``side`` at width/2 to side/2 at width."""
        t, half, out = cfg.timesteps, width // 2, side // 2
        pool_first = cfg.stem == "qk-imagenet"
        return [
            conv_cost(f"{name}.conv1", half, width, 3, side, t),
            bn_cost(f"{name}.bn1", width),
            neuron_cost(f"{name}.lif1", cfg),
            conv_cost(f"{name}.conv2", width, width, 3, out if pool_first else side, t),
            bn_cost(f"{name}.bn2", width),
            neuron_cost(f"{name}.lif2", cfg),
            conv_cost(f"{name}.res_conv", half, width, 1, out, t),
            bn_cost(f"{name}.res_bn", width),
            neuron_cost(f"{name}.res_lif", cfg),
        ]
