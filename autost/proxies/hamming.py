"""The Hamming-kernel proxies: SNASNet's ``sahd`` and NASWOT's ``naswot_hd``, the log-determinant
of the kernels :class:`~autost.proxies.kernels.KernelAccumulator` builds in the shared forward
pass (formulas and sources in :mod:`autost.proxies.kernels`)."""

from __future__ import annotations

from autost.proxies.base import Proxy, register_proxy
from autost.proxies.context import ProxyContext
from autost.proxies.kernels import log_abs_det


@register_proxy
class SAHD(Proxy):
    """SNASNet's sparsity-aware Hamming distance kernel, log|det| (higher is better)."""

    name = "sahd"
    sign = 1
    needs_data = True
    cost = "shared forward pass + one B x B matmul per neuron layer and timestep"
    shares = frozenset({"activity", "kernels"})

    def compute(self, ctx: ProxyContext) -> float:
        return log_abs_det(ctx.kernels().sahd_kernel())


@register_proxy
class NaswotHD(Proxy):
    """Mellor et al.'s Hamming kernel N_A - d_H of the spike codes, log|det| (higher is better)."""

    name = "naswot_hd"
    sign = 1
    needs_data = True
    cost = "shared forward pass + one B x B matmul per neuron layer and timestep"
    shares = frozenset({"activity", "kernels"})

    def compute(self, ctx: ProxyContext) -> float:
        return log_abs_det(ctx.kernels().hamming_kernel())
