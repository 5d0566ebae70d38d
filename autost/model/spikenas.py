"""SpikeNAS-Bench's cell search space (Sun et al., IEEE TAI 2025), rebuilt on autost's LIF.

SpikeNAS-Bench (github.com/tju-sun-lab/SpikeNAS-Bench) trained all 5^6 = 15,625 cells of an
SNASNet-style (Kim et al., ECCV 2022) forward cell on CIFAR-10 (100 epochs; 690 cells 200). This
module rebuilds that space so that autost's proxies can be checked against its accuracies:

- Cell: a DAG of 4 nodes; node 0 is the cell input, node ``j`` sums ``op_ij(node_i)`` over
  ``i < j``; node 3 is the output. Six edges, in :data:`EDGES` order (0,1), (0,2), (0,3),
  (1,2), (1,3), (2,3) (``search_cell_snn.py``, ``Neuronal_Cell``).
- Operations (:data:`OPS`): ``zero`` (``x * 0``), ``skip`` (identity) and ``conv_t05`` /
  ``conv_t10`` / ``conv_t15``: LIF with threshold 0.5 / 1.0 / 1.5, then conv 3x3 (stride 1,
  no bias) and BatchNorm, channels unchanged.
- Id: ``id = sum_k op_k * 5**k`` with ``op_k`` the operation index of edge ``k`` in
  :data:`EDGES` order: the base-5 digits of the id, least significant first, are the edges
  (0,1), (0,2), (0,3), (1,2), (1,3), (2,3) (``utils.get_cntmat_3``).
- Macro (``Train_all_networks/model_snn.py``, ``SNASNet``, CIFAR-10): stem conv 3x3 (3 -> 128,
  no bias) + BN, computed once and repeated over T = 5 steps; cell (128 ch, 32x32);
  ``downconv1`` BN -> LIF -> conv 3x3 (128 -> 256) -> BN -> avg-pool 2; cell (256 ch, 16x16);
  ``last_act`` BN -> LIF; avg-pool 2; flatten (256 x 8 x 8); dropout 0.5 -> linear (16,384 ->
  1,024, no bias) -> LIF -> linear (1,024 -> 100) -> mean of each group of 10 outputs (one
  class's "votes") -> mean over T: logits ``[B, 10]``.
- Neurons: SpikingJelly ``MultiStepLIFNode``, tau 4/3 (``decay_input``), hard reset to 0,
  detached reset, ATan surrogate (alpha 2); threshold 1.0 outside the cells.
- Initialisation: conv ``kaiming_uniform_(a=2)``, BN weight 1 / bias 0, linear N(0, 0.01) with
  zero bias.

Fidelity: the parameter count of every id equals the one the benchmark recorded (checked for
all 15,625 by ``benchmarks/spikenas_extract.py``); with the same weights, logits and gradients
equal those of the repository's SpikingJelly model to float32 rounding (checked by hand, the
reference is not a dependency). SpikingJelly's ``layer.Dropout`` inside ``SeqToANNContainer``
draws one mask per ``[T*B, features]`` input, which is plain ``nn.Dropout`` here.

``model(x)`` takes a static batch ``[B, C, H, W]`` (or time-major frames ``[T, B, C, H, W]``;
the stem then runs on every step) and returns the logits ``[B, num_classes]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from autost.errors import ConfigError
from autost.model.blocks.common import BatchNorm2d
from autost.neurons import LIF

#: Edge operations, by the index the benchmark's id encodes.
OPS: tuple[str, ...] = ("zero", "skip", "conv_t05", "conv_t10", "conv_t15")
#: The cell's edges (from node, to node), in the order of the id's base-5 digits (least first).
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
NUM_NODES = 4
NUM_ARCHITECTURES = len(OPS) ** len(EDGES)  # 15,625
#: Firing threshold of the LIF opening each conv operation (``threshold_low/middle/high``).
CONV_THRESHOLDS = {"conv_t05": 0.5, "conv_t10": 1.0, "conv_t15": 1.5}
TAU = 4.0 / 3.0
THRESHOLD = 1.0  # neurons outside the cells (``threshold_middle``)
SURROGATE, ALPHA = "atan", 2.0
TIMESTEPS = 5
WIDTH = 128  # first cell's channels; the second cell has twice as many
HIDDEN = 1024  # classifier's hidden spiking layer (CIFAR)
VOTES = 10  # output neurons per class, averaged (``num_final_neuron / num_class``)

Arch = int | Sequence[str] | Sequence[int]


def decode(arch_id: int) -> tuple[str, ...]:
    """The six edge operations of benchmark id ``arch_id`` (in :data:`EDGES` order)."""
    if isinstance(arch_id, bool) or not isinstance(arch_id, (int, np.integer)):
        raise ConfigError("arch_id", f"must be an integer, got {arch_id!r}")
    if not 0 <= arch_id < NUM_ARCHITECTURES:
        raise ConfigError("arch_id", f"must be in 0..{NUM_ARCHITECTURES - 1}, got {arch_id}")
    n = int(arch_id)
    ops = []
    for _ in EDGES:
        n, digit = divmod(n, len(OPS))
        ops.append(OPS[digit])
    return tuple(ops)


def encode(ops: Sequence[str] | Sequence[int]) -> int:
    """The benchmark id of six edge operations (names or indices, :data:`EDGES` order)."""
    if isinstance(ops, str) or len(ops) != len(EDGES):
        raise ConfigError("ops", f"must be {len(EDGES)} edge operations, got {ops!r}")
    arch_id = 0
    for k, op in enumerate(ops):
        if isinstance(op, str):
            if op not in OPS:
                raise ConfigError("ops", f"unknown operation {op!r}; choose from {', '.join(OPS)}")
            index = OPS.index(op)
        elif isinstance(op, (int, np.integer)) and not isinstance(op, bool) and 0 <= op < 5:
            index = int(op)
        else:
            raise ConfigError("ops", f"operation index must be in 0..{len(OPS) - 1}, got {op!r}")
        arch_id += index * len(OPS) ** k
    return arch_id


def resolve(arch: Arch) -> tuple[int, tuple[str, ...]]:
    """``(id, ops)`` of an id or an edge-operation sequence."""
    arch_id = arch if isinstance(arch, (int, np.integer)) else encode(arch)
    return int(arch_id), decode(int(arch_id))


def spikenas_param_count(
    arch: Arch,
    num_classes: int = 10,
    width: int = WIDTH,
    *,
    in_channels: int = 3,
    image_size: int = 32,
    hidden: int = HIDDEN,
    votes: int = VOTES,
) -> int:
    """Parameters of :func:`build_spikenas_model` with these settings, without building it."""
    _, ops = resolve(arch)
    convs = sum(op.startswith("conv") for op in ops)
    wide = 2 * width
    side = image_size // 4
    stem = in_channels * width * 9 + 2 * width
    cells = convs * (9 * width * width + 2 * width) + convs * (9 * wide * wide + 2 * wide)
    downconv = 2 * width + 9 * width * wide + 2 * wide
    head = 2 * wide + wide * side * side * hidden + hidden * num_classes * votes
    return stem + cells + downconv + head + num_classes * votes


# --------------------------------------------------------------------------- modules


class Zero(nn.Module):
    """The ``zero`` operation: ``x * 0`` (the edge carries nothing)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * 0.0


class SpikingConv(nn.Module):
    """LIF -> conv 3x3 -> BN on time-major ``[T, B, C, H, W]``: the ``conv_t*`` operations and
    the down-sampling layer (``pool``: an average pool 2 after the BN)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        threshold: float,
        *,
        pre_bn: bool = False,
        pool: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.pre_bn = BatchNorm2d(cin) if pre_bn else None
        self.lif = LIF(TAU, threshold, 0.0, SURROGATE, ALPHA, True, backend)
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = BatchNorm2d(cout)
        self.pool = nn.AvgPool2d(2, 2) if pool else None

    def forward(self, x: Tensor) -> Tensor:
        steps, batch = x.shape[:2]
        if self.pre_bn is not None:
            x = self.pre_bn(x.flatten(0, 1)).reshape(x.shape)
        y = self.bn(self.conv(self.lif(x).flatten(0, 1)))
        if self.pool is not None:
            y = self.pool(y)
        return y.reshape(steps, batch, *y.shape[1:])


def make_op(op: str, channels: int, backend: str = "auto") -> nn.Module:
    """The module of edge operation ``op`` on ``channels`` channels."""
    if op == "zero":
        return Zero()
    if op == "skip":
        return nn.Identity()
    return SpikingConv(channels, channels, CONV_THRESHOLDS[op], backend=backend)


class SpikeNASCell(nn.Module):
    """The 4-node forward cell: ``node_j = sum_{i<j} op_ij(node_i)``; returns node 3."""

    def __init__(self, ops: Sequence[str], channels: int, backend: str = "auto") -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(make_op(op, channels, backend) for op in self.ops)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for j in range(1, NUM_NODES):
            terms = [
                edge(nodes[i]) for (i, to), edge in zip(EDGES, self.edges, strict=True) if to == j
            ]
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            nodes.append(total)
        return nodes[-1]


class SpikeNASNet(nn.Module):
    """SpikeNAS-Bench's SNASNet: stem, cell, spiking down-sampling, cell, spiking classifier.

    ``forward(x)``: ``x [B, C, H, W]`` (the stem runs once, its output is repeated over
    ``timesteps``) or ``[T, B, C, H, W]``; returns logits ``[B, num_classes]`` averaged over T.
    """

    def __init__(
        self,
        arch: Arch,
        num_classes: int = 10,
        timesteps: int = TIMESTEPS,
        width: int = WIDTH,
        *,
        in_channels: int = 3,
        image_size: int = 32,
        hidden: int = HIDDEN,
        votes: int = VOTES,
        dropout: float = 0.5,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("timesteps", timesteps),
                            ("width", width), ("hidden", hidden), ("votes", votes)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f"must be a positive integer, got {value!r}")
        if image_size < 4 or image_size % 4:
            raise ConfigError("image_size", f"must be a positive multiple of 4, got {image_size}")
        self.arch_id, self.ops = resolve(arch)
        self.num_classes, self.timesteps, self.votes = num_classes, timesteps, votes
        wide = 2 * width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), BatchNorm2d(width)
        )
        self.cell1 = SpikeNASCell(self.ops, width, backend)
        self.downconv = SpikingConv(width, wide, THRESHOLD, pre_bn=True, pool=True, backend=backend)
        self.cell2 = SpikeNASCell(self.ops, wide, backend)
        self.last_bn = BatchNorm2d(wide)
        self.last_lif = LIF(TAU, THRESHOLD, 0.0, SURROGATE, ALPHA, True, backend)
        self.pool = nn.AvgPool2d(2, 2)
        self.dropout = nn.Dropout(dropout)
        side = image_size // 4
        self.fc1 = nn.Linear(wide * side * side, hidden, bias=False)
        self.fc_lif = LIF(TAU, THRESHOLD, 0.0, SURROGATE, ALPHA, True, backend)
        self.fc2 = nn.Linear(hidden, num_classes * votes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The benchmark's initialisation (see the module docstring)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            stem = self.stem(x)
            x = stem.unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)
        elif x.dim() == 5:
            x = self.stem(x.flatten(0, 1)).reshape(*x.shape[:2], -1, *x.shape[-2:])
        else:
            raise ValueError(f"expected [B, C, H, W] or [T, B, C, H, W], got {tuple(x.shape)}")
        steps, batch = x.shape[:2]
        x = self.cell2(self.downconv(self.cell1(x)))
        x = self.last_lif(self.last_bn(x.flatten(0, 1)).reshape(x.shape))
        x = self.pool(x.flatten(0, 1)).flatten(1)
        x = self.fc2(self.fc_lif(self.fc1(self.dropout(x)).reshape(steps, batch, -1)))
        return x.reshape(steps, batch, self.num_classes, self.votes).mean(dim=(0, 3))

    def extra_repr(self) -> str:
        return f"arch_id={self.arch_id}, ops={'|'.join(self.ops)}, timesteps={self.timesteps}"


def build_spikenas_model(arch: Arch, num_classes: int = 10, **kwargs: Any) -> SpikeNASNet:
    """SpikeNAS-Bench's network for ``arch`` (a benchmark id or six edge operations); keyword
    arguments as :class:`SpikeNASNet` (``timesteps`` 5, ``width`` 128 by default)."""
    return SpikeNASNet(arch, num_classes, **kwargs)


class SpikeNASSpace:
    """The 15,625 cells of SpikeNAS-Bench: ids, encodings, sampling and models."""

    ops = OPS
    edges = EDGES
    size = NUM_ARCHITECTURES

    def __len__(self) -> int:
        return NUM_ARCHITECTURES

    @staticmethod
    def decode(arch_id: int) -> tuple[str, ...]:
        """Edge operations of ``arch_id``."""
        return decode(arch_id)

    @staticmethod
    def encode(ops: Sequence[str] | Sequence[int]) -> int:
        """Benchmark id of six edge operations."""
        return encode(ops)

    @staticmethod
    def sample(rng: np.random.Generator, n: int, replace: bool = False) -> list[int]:
        """``n`` ids drawn uniformly (without replacement unless ``replace``)."""
        return [int(i) for i in rng.choice(NUM_ARCHITECTURES, size=n, replace=replace)]

    @staticmethod
    def build(arch: Arch, num_classes: int = 10, **kwargs: Any) -> SpikeNASNet:
        """:func:`build_spikenas_model`."""
        return build_spikenas_model(arch, num_classes, **kwargs)

    @staticmethod
    def param_count(arch: Arch, num_classes: int = 10, **kwargs: Any) -> int:
        """:func:`spikenas_param_count`."""
        return spikenas_param_count(arch, num_classes, **kwargs)


__all__ = [
    "EDGES",
    "NUM_ARCHITECTURES",
    "OPS",
    "SpikeNASCell",
    "SpikeNASNet",
    "SpikeNASSpace",
    "build_spikenas_model",
    "decode",
    "encode",
    "spikenas_param_count",
]
