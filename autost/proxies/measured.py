"""Proxies measured on this machine rather than computed: ``latency``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autost.model.latency import measure_latency
from autost.proxies.base import Proxy, register_proxy

if TYPE_CHECKING:
    from autost.proxies.context import ProxyContext


@register_proxy
class Latency(Proxy):
    """Measured latency of one forward at batch 1 on this CPU, ms (lower is better).

    :func:`autost.model.latency.measure_latency` with torch's current threads: the median of 10
    timed forwards after 3 warm-up ones, cached under ``$AUTOST_CACHE/latency``. Needs an
    autost config (it builds and times the model itself); the value depends on the machine.
    """

    name = "latency"
    sign = -1
    builds_model = False  # measure_latency builds its own copy; the context builds none
    cost = "measured: the model built and timed, 13 forwards at batch 1 (cached)"

    def compute(self, ctx: ProxyContext) -> float:
        return measure_latency(ctx.config, device="cpu", batch=1).median_ms
