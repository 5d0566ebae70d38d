"""Analytic cost model straight from an :class:`ArchConfig`: no model built, no forward pass."""

from __future__ import annotations

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
