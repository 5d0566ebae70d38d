"""Data-free proxies computed from the config alone (no model built): FLOPs and parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autost.cost import count_params, estimate_cost
from autost.proxies.base import Proxy, register_proxy

if TYPE_CHECKING:
    from autost.proxies.context import ProxyContext


@register_proxy
class Flops(Proxy):
    """AutoST's proxy: conv + linear + attention-product FLOPs per sample (higher is better).

    ``2 * (macs + matmul_macs)`` of :func:`autost.estimate_cost`, all timesteps included
    (Wang et al., ICASSP 2024, "AutoST: Training-free Neural Architecture Search for Spiking
    Transformers", rank candidates by FLOPs).
    """

    name = "flops"
    sign = 1
    builds_model = False
    cost = "analytic (microseconds, no model)"

    def compute(self, ctx: ProxyContext) -> float:
        return float(estimate_cost(ctx.config).flops)


@register_proxy
class Params(Proxy):
    """Trainable parameters, counted analytically (higher is better)."""

    name = "params"
    sign = 1
    builds_model = False
    cost = "analytic (microseconds, no model)"

    def compute(self, ctx: ProxyContext) -> float:
        return float(count_params(ctx.config))
