"""Analytic cost model straight from an :class:`ArchConfig`: no model built, no forward pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from autost.blocks.attention import ATTENTIONS
from autost.blocks.coding import CODINGS
from autost.blocks.common import LayerCost, neuron_cost
from autost.blocks.mlp import MLPS
from autost.blocks.stems import STEMS, QKDownsample
from autost.config import ArchConfig


def layer_table(cfg: ArchConfig) -> list[LayerCost]:
    """Every layer of the network built from ``cfg``, in forward order, with params and MACs."""
    rows: list[LayerCost] = list(CODINGS.get(cfg.coding).costs(cfg))
    rows += STEMS.get(cfg.stem).costs(cfg)
    side = cfg.image_size // cfg.stem_stride
    layer = 0
    for stage, count in enumerate(cfg.stages or (cfg.depth,)):
        if stage > 0:
            width = cfg.stage_dims[stage]
            rows += QKDownsample.costs(cfg, f"downsample.{stage - 1}", width, side)
            side //= 2
        tokens = side * side
        for _ in range(count):
            attn = ATTENTIONS.get(cfg.attention[layer])
            rows += attn.costs(cfg, layer, tokens, f"blocks.{layer}.attn")
            rows += MLPS.get(cfg.mlp).costs(cfg, layer, tokens, f"blocks.{layer}.mlp")
            layer += 1
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


def count_params(spec: Any) -> int:
    """Trainable parameters of the model ``spec`` describes, computed analytically.

    ``spec`` is anything :func:`autost.create_model` accepts. Equals
    ``sum(p.numel() for p in create_model(spec).parameters())``.
    """
    from autost.models import resolve_config

    return sum(row.params for row in layer_table(resolve_config(spec)))


#: Energy per operation (45 nm CMOS, Horowitz 2014) as used by the Spikformer/SDT papers.
E_MAC_PJ = 4.6
E_AC_PJ = 0.9


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
    layers: tuple[LayerReport, ...]

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
    from autost.models import resolve_config

    rows = layer_table(resolve_config(spec))
    out: list[LayerReport] = []
    for row in rows:
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
    return CostReport(
        params=sum(r.params for r in out),
        macs=sum(r.macs for r in out),
        matmul_macs=sum(r.matmul_macs for r in out),
        sops=sum(r.sops for r in out),
        energy_mj=sum(r.energy_mj for r in out),
        layers=tuple(out),
    )
