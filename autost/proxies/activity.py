"""Proxies read from the shared forward pass: firing rate, and SOPs / energy at measured rates.

Spikes are read from every neuron :func:`autost.proxies.find_neurons` finds (autost, SpikingJelly,
snnTorch, Norse, registered classes), through its kind's spike reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autost.proxies.base import Proxy, register_proxy

if TYPE_CHECKING:
    from autost.proxies.context import ProxyContext


@register_proxy
class FiringRate(Proxy):
    """Mean firing rate over the neuron layers at initialisation (higher is better).

    ``mean_l (spikes of layer l) / (neurons of l x T x B)``, every neuron layer weighted equally
    (a single-step neuron's calls over the T steps summed).
    Sign +1: as an accuracy proxy, activity that dies out with depth carries no information and
    no surrogate gradient to the layers below (a silent layer's codes are all equal); the energy
    side of sparsity is what ``sops`` and ``energy`` (sign -1) measure.
    """

    name = "firing_rate"
    sign = 1
    needs_data = True
    cost = "shared forward pass (one reduction per neuron layer)"
    shares = frozenset({"activity"})

    def compute(self, ctx: ProxyContext) -> float:
        rates = ctx.activity().layer_rates
        return sum(rates.values()) / len(rates) if rates else 0.0


@register_proxy
class Sops(Proxy):
    """Synaptic operations per sample at the measured input rates (lower is better).

    :func:`autost.estimate_cost` with ``firing_rates`` measured on the batch: every conv/linear
    row at the mean of its module's input, every ``<block>.attn.qkv`` product at the rate of
    ``<block>.attn.q_lif``. A model without config: every conv/linear whose input is spikes or
    sums of spikes (all integers), MACs from its shapes (attention products are left out).
    """

    name = "sops"
    sign = -1
    needs_data = True
    cost = "shared forward pass (one reduction per conv/linear input)"
    shares = frozenset({"activity"})

    def compute(self, ctx: ProxyContext) -> float:
        return ctx.measured_cost().sops


@register_proxy
class Energy(Proxy):
    """Inference energy per sample in mJ at the measured input rates (lower is better).

    4.6 pJ per MAC of real-valued-input layers plus 0.9 pJ per SOP, as ``sops`` measures them
    (without a config: a conv/linear is real-valued-input when its input was not all integers).
    """

    name = "energy"
    sign = -1
    needs_data = True
    cost = "shared forward pass (one reduction per conv/linear input)"
    shares = frozenset({"activity"})

    def compute(self, ctx: ProxyContext) -> float:
        return ctx.measured_cost().energy_mj
