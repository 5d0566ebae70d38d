"""Training-free proxies: a registry, a shared scoring context and rank ensembles.

============== ==== ==== =========================================================================
proxy          sign data cost
============== ==== ==== =========================================================================
flops           +1   no  analytic: 2 x (MACs + attention-product MACs), AutoST's proxy
params          +1   no  analytic parameter count
firing_rate     +1  yes  shared forward pass: mean LIF firing rate
sops            -1  yes  shared forward pass: synaptic operations at the measured rates
energy          -1  yes  shared forward pass: energy (mJ) at the measured rates
sahd            +1  yes  shared forward pass: SNASNet's sparsity-aware Hamming kernel, log|det|
naswot_hd       +1  yes  shared forward pass: NASWOT's Hamming kernel N_A - d_H, log|det|
grad_norm       +1  yes  own forward + backward: sum of per-layer gradient norms of the CE loss
synflow         +1   no  own float64 forward + backward on an all-ones input
zico            +1  yes  own forward + backward per half batch: ZiCo, sum_l log sum mean|g|/std(g)
meco            +1  yes  own no-grad forward: sum of min eigenvalues of channel correlations
jacob_cov       +1  yes  own forward + backward to the input: NASWOT v1 Jacobian correlation score
snip            +1  yes  own forward + backward: sum |w * dL/dw| over conv/linear weights
fisher          +1  yes  own forward + backward: Fisher information of the neuron-input channels
autost_fitness  +1   no  analytic: AutoST's released fitness GFLOPs + ld / NASWOT (ld = 0)
============== ==== ==== =========================================================================

``score_all(config, names, batch, seed)`` scores several proxies with one model and one shared
forward pass; :func:`rank_aggregate` and :class:`ReferencePool` combine them by rank.

``score(model, batch, proxies, seed)`` runs the same proxies on any PyTorch spiking network
(``model(x)`` returns logits ``[B, classes]``) and returns :class:`ProxyScores` (``raw`` and
``oriented`` dicts). Its neurons are found by type (:func:`find_neurons`: autost, SpikingJelly,
snnTorch, Norse); :func:`register_neuron` adds another class, with a reader for its spikes.
Without an autost config, ``params`` and ``flops`` are counted from the model and ``sops`` /
``energy`` cover its conv/linear layers; a proxy that needs the config raises
:class:`ConfigRequiredError`.
"""

from autost.proxies import activity as _activity  # noqa: F401  (registers the proxies)
from autost.proxies import analytic as _analytic  # noqa: F401
from autost.proxies import gradients as _gradients  # noqa: F401
from autost.proxies import hamming as _hamming  # noqa: F401
from autost.proxies import measured as _measured  # noqa: F401
from autost.proxies import zerocost as _zerocost  # noqa: F401
from autost.proxies.activity import Energy, FiringRate, Sops
from autost.proxies.analytic import Flops, Params
from autost.proxies.base import PROXIES, Proxy, get_proxy, list_proxies, register_proxy
from autost.proxies.context import (
    ConfigRequiredError,
    ProxyContext,
    ProxyScores,
    batch_statistics_norm,
    score,
    score_all,
)
from autost.proxies.ensemble import ReferencePool, normalised_ranks, orient, rank_aggregate
from autost.proxies.gradients import GradNorm, Synflow, synaptic_weights, trainable_weights
from autost.proxies.hamming import SAHD, NaswotHD
from autost.proxies.kernels import KernelAccumulator, log_abs_det
from autost.proxies.neuron_types import NeuronKind, find_neurons, register_neuron
from autost.proxies.recording import Activity
from autost.proxies.zerocost import AutostFitness, Fisher, JacobCov, MeCo, Snip, ZiCo

__all__ = [
    "PROXIES",
    "SAHD",
    "Activity",
    "AutostFitness",
    "ConfigRequiredError",
    "Energy",
    "FiringRate",
    "Fisher",
    "Flops",
    "GradNorm",
    "JacobCov",
    "KernelAccumulator",
    "MeCo",
    "NaswotHD",
    "NeuronKind",
    "Params",
    "Proxy",
    "ProxyContext",
    "ProxyScores",
    "ReferencePool",
    "Snip",
    "Sops",
    "Synflow",
    "ZiCo",
    "batch_statistics_norm",
    "find_neurons",
    "get_proxy",
    "list_proxies",
    "log_abs_det",
    "normalised_ranks",
    "orient",
    "rank_aggregate",
    "register_neuron",
    "register_proxy",
    "score",
    "score_all",
    "synaptic_weights",
    "trainable_weights",
]
