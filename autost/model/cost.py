"""Analytic cost model straight from an :class:`ArchConfig`: no model built, no forward pass."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property, partial
from operator import attrgetter
from typing import Any

from autost.model.blocks.attention import ATTENTIONS
from autost.model.blocks.coding import CODINGS
from autost.model.blocks.common import LayerCost, neuron_cost
from autost.model.blocks.mlp import MLPS
from autost.model.blocks.stems import STEMS, QKDownsample
from autost.model.config import ArchConfig

#: Energy per operation (45 nm CMOS, Horowitz 2014) as used by the Spikformer/SDT papers.
E_MAC_PJ = 4.6
E_AC_PJ = 0.9


# ---------------------------------------------------------------- cached parts
# A network is a sequence of parts (coding + stem, downsampling layers, encoder blocks, head).
# Each part's rows and totals are memoised under every input its costs read, so that scoring
# thousands of candidates of one space re-uses the few distinct blocks it contains.

_PER_LAYER = frozenset({"depth", "num_heads", "mlp_ratios", "attention", "stages"})
_GLOBAL_FIELDS = tuple(f.name for f in fields(ArchConfig) if f.name not in _PER_LAYER)
#: The settings an encoder block's costs read besides its width, tokens and per-layer values
#: (input, stem and head settings are not among them, so blocks are shared across those).
_BLOCK_FIELDS = (
    "timesteps",
    "mlp",
    "shortcut",
    "qkv_bias",
    "attn_scale",
    "neuron",
    "tim",
    "tim_kernel",
    "tim_alpha",
    "num_experts",
)
_CACHE_LIMIT = 65_536


@dataclass(frozen=True)
class _Part:
    """Rows of one part (names relative to ``prefix``) and their totals at input rate 1."""

    rows: tuple[LayerCost, ...]
    params: int
    macs: int
    matmul_macs: int
    sops: int
    energy_pj: float

    @classmethod
    def of(cls, rows: list[LayerCost]) -> _Part:
        sops = sum(r.macs + r.matmul_macs for r in rows if r.spiking_input)
        dense = sum(r.macs + r.matmul_macs for r in rows if not r.spiking_input)
        return cls(
            tuple(rows),
            sum(r.params for r in rows),
            sum(r.macs for r in rows),
            sum(r.matmul_macs for r in rows),
            sops,
            sops * E_AC_PJ + dense * E_MAC_PJ,
        )


_parts_cache: dict[tuple[Any, ...], _Part] = {}
_global_ids: dict[tuple[Any, ...], int] = {}
_block_ids: dict[tuple[Any, ...], int] = {}
_global_values = attrgetter(*_GLOBAL_FIELDS)
_block_values = attrgetter(*_BLOCK_FIELDS)
_next_id = itertools.count()  # ids are never reused, even after the caches are cleared


def _part(key: tuple[Any, ...], build: Callable[[], list[LayerCost]]) -> _Part:
    part = _parts_cache.get(key)
    if part is None:
        if len(_parts_cache) >= _CACHE_LIMIT:
            _parts_cache.clear()
            _global_ids.clear()
            _block_ids.clear()
        part = _parts_cache[key] = _Part.of(build())
    return part


def _settings_id(ids: dict[tuple[Any, ...], int], values: tuple[Any, ...]) -> int:
    """``values`` as one small id, so that part keys hash them once per config."""
    found = ids.get(values)
    if found is None:
        found = ids[values] = next(_next_id)
    return found


def _parts(cfg: ArchConfig) -> list[tuple[str, _Part]]:
    """``(name prefix, part)`` for every part of the network, in forward order."""
    glob = _settings_id(_global_ids, _global_values(cfg))
    block = _settings_id(_block_ids, _block_values(cfg))
    stages = cfg.stages or (cfg.depth,)
    widths = cfg.stage_dims

    def stem() -> list[LayerCost]:
        return list(CODINGS.get(cfg.coding).costs(cfg)) + STEMS.get(cfg.stem).costs(cfg)

    out = [("", _part(("stem", glob, widths), stem))]
    side = cfg.image_size // cfg.stem_stride
    layer = 0
    heads, ratios, kinds = cfg.num_heads, cfg.mlp_ratios, cfg.attention
    for stage, count in enumerate(stages):
        width = widths[stage]
        if stage > 0:
            name = f"downsample.{stage - 1}"
            build = partial(QKDownsample.costs, cfg, name, width, side)
            out.append(("", _part(("down", glob, name, width, side), build)))
            side //= 2
        tokens = side * side
        for _ in range(count):
            key = ("block", block, width, heads[layer], ratios[layer], kinds[layer], tokens)
            part = _parts_cache.get(key)
            if part is None:
                part = _part(key, partial(_block_rows, cfg, layer, tokens))
            out.append((f"blocks.{layer}.", part))
            layer += 1
    out.append(("", _part(("head", glob), partial(_head_rows, cfg))))
    return out


def _block_rows(cfg: ArchConfig, layer: int, tokens: int) -> list[LayerCost]:
    """Rows of encoder block ``layer``, named relative to ``blocks.<layer>.``."""
    rows = ATTENTIONS.get(cfg.attention[layer]).costs(cfg, layer, tokens, "attn")
    return rows + MLPS.get(cfg.mlp).costs(cfg, layer, tokens, "mlp")


def _head_rows(cfg: ArchConfig) -> list[LayerCost]:
    rows: list[LayerCost] = []
    membrane = cfg.shortcut == "membrane"
    if membrane:
        rows.append(neuron_cost("head_lif", cfg))
    d, c = cfg.embed_dim, cfg.num_classes
    rows.append(
        LayerCost(
            "head",
            "linear",
            params=d * c + c,
            # spike-shortcut models average features over time before the (linear) head
            macs=d * c * (cfg.timesteps if membrane else 1),
            spiking_input=membrane,
        )
    )
    return rows


def _table(parts: list[tuple[str, _Part]]) -> list[LayerCost]:
    return [
        LayerCost(
            prefix + row.name, row.kind, row.params, row.macs, row.matmul_macs, row.spiking_input
        )
        if prefix
        else row
        for prefix, part in parts
        for row in part.rows
    ]


def layer_table(cfg: ArchConfig) -> list[LayerCost]:
    """Every layer of the network built from ``cfg``, in forward order, with params and MACs."""
    return _table(_parts(cfg))


def count_params(spec: Any) -> int:
    """Trainable parameters of the model ``spec`` describes, computed analytically.

    ``spec`` is anything :func:`autost.create_model` accepts. Equals
    ``sum(p.numel() for p in create_model(spec).parameters())``.
    """
    from autost.model.network import resolve_config

    return sum(part.params for _, part in _parts(resolve_config(spec)))


@dataclass(frozen=True)
class LayerReport:
    """One row of :class:`CostReport`: the layer's counts, input rate, SOPs and energy."""

    name: str
    kind: str
    params: int
    macs: int
    matmul_macs: int
    spiking_input: bool
    rate: float
    sops: float
    energy_mj: float


@dataclass(frozen=True)
class CostReport:
    """Analytic costs per sample, all timesteps summed.

    ``macs``: dense conv/linear multiply-accumulates; ``matmul_macs``: attention products;
    ``sops``: synaptic operations (accumulates) of the layers whose input is spikes,
    = MACs x input rate; ``energy_mj``: 4.6 pJ per MAC of real-valued-input layers (the first
    conv, GAC, a time-averaged head) plus 0.9 pJ per SOP.
    """

    params: int
    macs: int
    matmul_macs: int
    sops: float
    energy_mj: float
    _layers: Callable[[], tuple[LayerReport, ...]] = field(repr=False, compare=False)

    @cached_property
    def layers(self) -> tuple[LayerReport, ...]:
        """The per-layer table (built on first access)."""
        return self._layers()

    @property
    def flops(self) -> int:
        """Conv, linear and matmul FLOPs (2 per multiply-accumulate)."""
        return 2 * (self.macs + self.matmul_macs)

    def to_dict(self, layers: bool = False) -> dict[str, Any]:
        """JSON-ready summary; ``layers=True`` adds the per-layer table."""
        data: dict[str, Any] = {
            "params": self.params,
            "macs": self.macs,
            "matmul_macs": self.matmul_macs,
            "flops": self.flops,
            "sops": self.sops,
            "energy_mj": self.energy_mj,
        }
        if layers:
            data["layers"] = [asdict(row) for row in self.layers]
        return data


def estimate_cost(spec: Any, firing_rates: float | Mapping[str, float] | None = None) -> CostReport:
    """Params, MACs, SOPs and energy of ``spec`` straight from its config (no model built).

    ``firing_rates`` gives the input activity of spiking layers (mean spikes per input element,
    as measured by the data proxies): a mapping from layer name (module path, or
    ``<block>.attn.qkv`` for attention products) to rate, or one rate for every layer. Layers
    without a rate, and every layer when it is ``None``, count at rate 1 (an upper bound).
    """
    from autost.model.network import resolve_config

    parts = _parts(resolve_config(spec))
    if firing_rates is None:
        return CostReport(
            params=sum(part.params for _, part in parts),
            macs=sum(part.macs for _, part in parts),
            matmul_macs=sum(part.matmul_macs for _, part in parts),
            sops=float(sum(part.sops for _, part in parts)),
            energy_mj=sum(part.energy_pj for _, part in parts) * 1e-9,
            _layers=partial(_reports, parts, None),
        )
    layers = _reports(parts, firing_rates)
    return CostReport(
        params=sum(r.params for r in layers),
        macs=sum(r.macs for r in layers),
        matmul_macs=sum(r.matmul_macs for r in layers),
        sops=sum(r.sops for r in layers),
        energy_mj=sum(r.energy_mj for r in layers),
        _layers=lambda: layers,
    )


def _reports(
    parts: list[tuple[str, _Part]], firing_rates: float | Mapping[str, float] | None
) -> tuple[LayerReport, ...]:
    out: list[LayerReport] = []
    for row in _table(parts):
        if isinstance(firing_rates, Mapping):
            rate = float(firing_rates.get(row.name, 1.0))
        else:
            rate = 1.0 if firing_rates is None else float(firing_rates)
        ops = row.macs + row.matmul_macs
        if row.spiking_input:
            sops, energy = ops * rate, ops * rate * E_AC_PJ
        else:
            sops, energy = 0.0, ops * E_MAC_PJ
        out.append(
            LayerReport(
                row.name,
                row.kind,
                row.params,
                row.macs,
                row.matmul_macs,
                row.spiking_input,
                rate if row.spiking_input else 1.0,
                sops,
                energy * 1e-9,
            )
        )
    return tuple(out)
