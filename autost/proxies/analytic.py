"""Data-free proxies computed from the config alone (no model built): FLOPs and parameters.

For a model scored without an autost config (:func:`autost.proxies.score`) they are counted
from the model instead: ``params`` from its parameters, ``flops`` by
:class:`torch.utils.flop_counter.FlopCounterMode` over one forward pass of the batch, per
sample. On an autost model both equal the analytic counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from autost.model.cost import count_params, estimate_cost
from autost.proxies.base import Proxy, register_proxy

if TYPE_CHECKING:
    from autost.proxies.context import ProxyContext


def count_flops(ctx: ProxyContext) -> float:
    """FLOPs per sample of one no-grad forward pass of ``ctx``'s model on its batch, as
    ``FlopCounterMode`` counts them (2 per multiply-accumulate of convs, linears and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    x, y = ctx.inputs()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ctx.forward(x)
    return counter.get_total_flops() / len(y)


def count_model_params(model: nn.Module) -> int:
    """Every parameter of ``model`` (what :func:`autost.count_params` counts for a config)."""
    return sum(p.numel() for p in model.parameters())


@register_proxy
class Flops(Proxy):
    """AutoST's proxy: conv + linear + attention-product FLOPs per sample (higher is better).

    ``2 * (macs + matmul_macs)`` of :func:`autost.estimate_cost`, all timesteps included
    (Wang et al., ICASSP 2024, "AutoST: Training-free Neural Architecture Search for Spiking
    Transformers", rank candidates by FLOPs). Without a config: :func:`count_flops`.
    """

    name = "flops"
    sign = 1
    builds_model = False
    cost = "analytic (microseconds, no model)"

    def compute(self, ctx: ProxyContext) -> float:
        if not ctx.has_config:
            return count_flops(ctx)
        return float(estimate_cost(ctx.config).flops)


@register_proxy
class Params(Proxy):
    """Trainable parameters, counted analytically (higher is better); a model's, counted."""

    name = "params"
    sign = 1
    builds_model = False
    cost = "analytic (microseconds, no model)"

    def compute(self, ctx: ProxyContext) -> float:
        if not ctx.has_config:
            return float(count_model_params(ctx.model))
        return float(count_params(ctx.config))
