"""Training-free proxies: a registry, a shared scoring context and rank ensembles.

========== ==== ==== =========================================================================
proxy      sign data cost
========== ==== ==== =========================================================================
flops       +1   no  analytic: 2 x (MACs + attention-product MACs), AutoST's proxy
params      +1   no  analytic parameter count
firing_rate +1  yes  shared forward pass: mean LIF firing rate
sops        -1  yes  shared forward pass: synaptic operations at the measured rates
energy      -1  yes  shared forward pass: energy (mJ) at the measured rates
sahd        +1  yes  shared forward pass: SNASNet's sparsity-aware Hamming kernel, log|det|
naswot_hd   +1  yes  shared forward pass: NASWOT's Hamming kernel N_A - d_H, log|det|
grad_norm   +1  yes  own forward + backward: sum of per-layer gradient norms of the CE loss
synflow     +1   no  own float64 forward + backward on an all-ones input
========== ==== ==== =========================================================================

``score_all(config, names, batch, seed)`` scores several proxies with one model and one shared
forward pass; :func:`rank_aggregate` and :class:`ReferencePool` combine them by rank.
"""

from autost.proxies import activity as _activity  # noqa: F401  (registers the proxies)
from autost.proxies import analytic as _analytic  # noqa: F401
from autost.proxies import gradients as _gradients  # noqa: F401
from autost.proxies.activity import Energy, FiringRate, Sops
from autost.proxies.analytic import Flops, Params
from autost.proxies.base import PROXIES, Proxy, get_proxy, list_proxies, register_proxy
from autost.proxies.context import Activity, ProxyContext, batch_statistics_norm, score_all
from autost.proxies.ensemble import ReferencePool, normalised_ranks, orient, rank_aggregate
from autost.proxies.gradients import GradNorm, Synflow, synaptic_weights
from autost.proxies.kernels import SAHD, KernelAccumulator, NaswotHD, log_abs_det

__all__ = [
    "PROXIES",
    "SAHD",
    "Activity",
    "Energy",
    "FiringRate",
    "Flops",
    "GradNorm",
    "KernelAccumulator",
    "NaswotHD",
    "Params",
    "Proxy",
    "ProxyContext",
    "ReferencePool",
    "Sops",
    "Synflow",
    "batch_statistics_norm",
    "get_proxy",
    "list_proxies",
    "log_abs_det",
    "normalised_ranks",
    "orient",
    "rank_aggregate",
    "register_proxy",
    "score_all",
    "synaptic_weights",
]
