"""Published zero-cost proxies adapted to spiking networks: ZiCo, MeCo, jacob_cov, SNIP, Fisher,
and AutoST's released search fitness.

Spikes are Heaviside steps, so every gradient here is the surrogate gradient the network trains
with; the batch is ``x [T, B, ...]`` or ``[B, ...]``, the logits are ``ctx.forward`` (``[B,
classes]``) and losses their mean cross-entropy. Every proxy reads only ``ctx.model``,
``ctx.inputs()`` and ``ctx.forward`` (``autost_fitness`` the config instead), finds neurons by
type (:func:`~autost.proxies.neuron_types.find_neurons`) and so runs on foreign spiking networks
(:func:`autost.proxies.score`); the model runs as the context prepared it (BatchNorm on batch
statistics, as zero-cost-nas's ``bn=True`` and ZiCo's ``network.train()``). "Synaptic" weights
are those of every convolution and linear, as the official code sums over ``nn.Conv2d`` /
``nn.Linear``.

Where a neuron layer is read, it is read at its *input* (the membrane drive: the normalised
output of the convolution or linear that feeds it), not at its spikes: the official ``fisher``
hooks the output of each convolution / linear (before the non-linearity), and a binary, sparse
spike map has many silent channels whose correlation is undefined, which would pin MeCo's
minimum eigenvalue at 0. The gradient with respect to that input passes through the neuron's
surrogate. Channels: ``[C, H, W]`` maps by their first axis, token maps ``[N, D]`` by their
last (:func:`~autost.proxies.probes.channel_axis`); timesteps count as more positions.

NASWOT's log-determinant (Mellor et al., ICML 2021) is not repeated here: ``naswot_hd``
(:mod:`autost.proxies.kernels`) is it, ``x x^T + (1 - x)(1 - x)^T`` summed over the binary codes
of every layer, ``slogdet``'s log|det| (BayesWatch/nas-without-training ``score_networks.py``
``counting_forward_hook``, ``scores.py`` ``hooklogdet``), with the spikes of every neuron layer
and timestep as the codes (the official code binarises ReLU inputs, ``x > 0``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from autost.model.cost import estimate_cost
from autost.proxies.base import Proxy, register_proxy
from autost.proxies.gradients import trainable_weights
from autost.proxies.kernels import log_abs_det
from autost.proxies.probes import (
    channels_first,
    input_batch_axis,
    neuron_inputs,
    split_batch,
    time_major,
)

if TYPE_CHECKING:
    from autost.proxies.context import ProxyContext

#: Mellor et al.'s ``k`` in ``log(v + k) + 1 / (v + k)``.
JACOB_COV_K = 1e-5


def correlation(cov: Tensor) -> Tensor:
    """Pearson correlation from a covariance matrix; rows of zero variance become 0 (as
    ``corr[isnan(corr)] = 0`` in MeCo's code), their diagonal entry included."""
    std = cov.diagonal().clamp(min=0).sqrt()
    corr = cov / (std[:, None] * std[None, :])
    return torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)


def cross_entropy(ctx: ProxyContext, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of the context's model on ``(x, y)`` (any part of its batch)."""
    return F.cross_entropy(ctx.forward(x, batch_size=len(y)), y.to(x.device).long())


def _grads(loss: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    """``dloss/dt`` for every tensor (zeros where it does not reach the loss)."""
    found = torch.autograd.grad(loss, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, found, strict=True)]


@register_proxy
class ZiCo(Proxy):
    """ZiCo (Li et al., ICLR 2023): inverse coefficient of variation of the gradients.

    ``sum_l log( sum_{w in W_l, std_w > 0} mean_b |g_{w,b}| / std_b g_{w,b} )`` over the conv /
    linear weights ``W_l``, where ``g_{w,b}`` is ``dL/dw`` of mini-batch ``b`` (the batch split
    into ``splits = 2`` along its batch axis, each with its own BN statistics) and ``std`` the
    population standard deviation. A layer whose sum is 0 (every gradient equal across the
    mini-batches) is skipped; a network whose layers all are gets 0. As SLDGroup/ZiCo
    ``ZeroShotProxy/compute_zico.py`` (``caculate_zico``, lines 27-45: ``np.mean(np.abs(g))``
    over ``np.std(g)`` on the nonzero-std entries, i.e. the mean of ``|g|``, not ``|mean g|``)
    with two batches (``--maxbatch 2``, ``evolution_search.py`` line 54). Higher is better.
    """

    name = "zico"
    sign = 1
    needs_data = True
    cost = "own forward + backward pass per mini-batch (2 halves of the batch)"
    splits: ClassVar[int] = 2

    def compute(self, ctx: ProxyContext) -> float:
        model = ctx.model
        x, y = ctx.inputs()
        weights = trainable_weights(model, self.name)
        per_split: list[list[Tensor]] = []
        with torch.enable_grad():
            for xs, ys in split_batch(x, y, self.splits):
                grads = _grads(cross_entropy(ctx, xs, ys), weights)
                per_split.append([g.detach().reshape(-1).double() for g in grads])
        score = 0.0
        for layer in zip(*per_split, strict=True):
            g = torch.stack(layer)  # [splits, weights of the layer]
            std = g.std(dim=0, correction=0)
            keep = std > 0
            total = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
            if total > 0:
                score += math.log(total)
        return score


@register_proxy
class MeCo(Proxy):
    """MeCo (Jiang et al., NeurIPS 2023): minimum eigenvalue of each layer's channel correlation.

    ``sum_l lambda_min(P_l)`` with ``P_l`` the ``C_l x C_l`` Pearson correlation of the channels
    of layer ``l``'s feature map, every (sample, timestep, position) an observation; zero-variance
    channels get correlation 0 (so ``lambda_min = 0``); layers with fewer than 2 channels are
    skipped. Layers: the input (membrane drive) of every neuron module, one no-grad forward pass.
    HamsterMimi/MeCo ``correlation/NAS_Bench_201.py`` lines 14-43 (``measure='meco'``, the
    paper's main variant, not ``meco_opt``, which samples 8 channels and scales by ``C / 8``)
    hooks every module and correlates the channels of ONE sample over its ``H x W`` positions.
    Difference: here every sample of the batch adds observations, because a spiking
    transformer's token maps have fewer positions than channels (4 tokens x T on digits,
    64 x T on CIFAR) and one sample's ``P_l`` is then singular for every token layer. Set
    ``samples = 1`` in a subclass for the paper's one-sample form. Higher is better.
    """

    name = "meco"
    sign = 1
    needs_data = True
    cost = "own no-grad forward pass + one C x C eigendecomposition per neuron layer"
    samples: ClassVar[int | None] = None

    def compute(self, ctx: ProxyContext) -> float:
        model = ctx.model
        x, y = ctx.inputs()
        batch = len(y)
        # (layer, channels) -> (sum of x, sum of x x^T, observations), over the layer's calls
        moments: dict[tuple[str, int], tuple[Tensor, Tensor, int]] = {}

        def probe(name: str, drive: Tensor) -> None:
            t = time_major(drive, batch)
            if t is None or t.dim() < 3:
                return
            rows = channels_first(t.detach())[:, : self.samples]
            obs = rows.reshape(rows.shape[0], -1).double()
            key = (name, obs.shape[0])
            add = (obs.sum(dim=1), obs @ obs.T, obs.shape[1])
            old = moments.get(key)
            moments[key] = (
                add if old is None else (old[0] + add[0], old[1] + add[1], old[2] + add[2])
            )

        with torch.no_grad(), neuron_inputs(model, probe):
            model(x)
        score = 0.0
        for (_, channels), (total, gram, count) in moments.items():
            if channels >= 2 and count >= 2:
                mean = total / count
                cov = gram / count - mean[:, None] * mean[None, :]
                score += float(torch.linalg.eigvalsh(correlation(cov))[0])
        return score


@register_proxy
class JacobCov(Proxy):
    """Jacobian covariance (Mellor et al., arXiv:2006.04647v1, NASWOT v1).

    ``J_i = d(sum of the logits of sample i)/d x_i`` (one backward of the summed logits; ``x_i``
    as the model receives it, all T frames), ``C = corrcoef(J)`` over the B samples, eigenvalues
    ``v``, score ``-sum_i (log(v_i + k) + 1 / (v_i + k))`` with ``k = 1e-5``.
    BayesWatch/nas-without-training, commit c895924 ``search.py`` lines 45-62
    (``get_batch_jacobian``, ``eval_score``); zero-cost-nas ``measures/jacob_cov.py``.
    Differences: ``eigvalsh`` with negative rounding noise clamped to 0 (``np.linalg.eig`` of
    the symmetric ``C``); a sample with a constant Jacobian gets correlation 0 (eigenvalue 0,
    the largest penalty) instead of NaN. Higher (less correlated Jacobians) is better.
    """

    name = "jacob_cov"
    sign = 1
    needs_data = True
    cost = "own forward + backward pass to the input"

    def compute(self, ctx: ProxyContext) -> float:
        x, y = ctx.inputs()
        batch = len(y)
        inputs = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (jac,) = torch.autograd.grad(ctx.forward(inputs).sum(), [inputs])
        rows = jac.movedim(input_batch_axis(x, batch), 0).reshape(batch, -1).double()
        rows = rows - rows.mean(dim=1, keepdim=True)
        v = torch.linalg.eigvalsh(correlation(rows @ rows.T)).clamp(min=0) + JACOB_COV_K
        return float(-(v.log() + v.reciprocal()).sum())


@register_proxy
class Snip(Proxy):
    """SNIP connection sensitivity (Lee et al., ICLR 2019), as a zero-cost proxy.

    ``sum over conv/linear weights of |w * dL/dw|`` for the mean cross-entropy of the batch:
    zero-cost-nas ``foresight/pruners/measures/snip.py`` lines 35-67 (``|d L / d mask|`` of a
    mask multiplying each weight, summed by ``predictive.py`` ``sum_arr``; Abdelfattah et al.,
    ICLR 2021). Invariant when a layer followed by BatchNorm has its weights rescaled.
    Higher is better.
    """

    name = "snip"
    sign = 1
    needs_data = True
    cost = "own forward + backward pass on the batch"

    def compute(self, ctx: ProxyContext) -> float:
        model = ctx.model
        x, y = ctx.inputs()
        weights = trainable_weights(model, self.name)
        with torch.enable_grad():
            grads = _grads(cross_entropy(ctx, x, y), weights)
        flows = [
            (w.detach() * g).abs().sum(dtype=torch.float64)
            for w, g in zip(weights, grads, strict=True)
        ]
        return float(sum(flows))


@register_proxy
class Fisher(Proxy):
    """Fisher information of the neuron-layer channels (Theis et al. 2018; Turner et al., ICLR
    2020), as zero-cost-nas's ``fisher`` (Abdelfattah et al., ICLR 2021).

    ``sum_l sum_c 0.5 * mean_n (sum_{t,p} a_{n,c,t,p} * dL/da_{n,c,t,p})^2`` where ``a`` is the
    input of neuron layer ``l`` (sample ``n``, channel ``c``, timestep ``t``, position ``p``) and
    ``dL/da`` counts only the path through the neuron (surrogate gradient). zero-cost-nas
    ``foresight/pruners/measures/fisher.py`` lines 38-107 hooks an identity after every conv /
    linear, sums ``act * grad`` over the spatial axes, takes ``0.5 * mean over the batch of its
    square`` per channel. Differences: the layers are the neuron inputs (the BN-normalised
    conv / linear outputs that drive the membrane), timesteps are summed like positions, and the
    sum is plain: zero-cost-nas broadcasts each channel's value over that conv's ``fan-in``
    weights before summing, a pruning artefact for which a neuron has no weights. Higher is
    better.
    """

    name = "fisher"
    sign = 1
    needs_data = True
    cost = "own forward + backward pass on the batch"

    def compute(self, ctx: ProxyContext) -> float:
        model = ctx.model
        x, y = ctx.inputs()
        batch = len(y)
        drives: list[tuple[str, Tensor]] = []

        def probe(name: str, drive: Tensor) -> None:
            if drive.requires_grad:
                drives.append((name, drive))

        with torch.enable_grad():
            with neuron_inputs(model, probe, isolate=True):
                loss = cross_entropy(ctx, x, y)
            grads = _grads(loss, [d for _, d in drives]) if drives else []
        per_channel: dict[tuple[str, int], Tensor] = {}  # g_{c,n} summed over a layer's calls
        for (name, drive), grad in zip(drives, grads, strict=True):
            t = time_major(drive.detach() * grad, batch)
            if t is None or t.dim() < 3:
                continue
            g = channels_first(t).sum(dim=2, dtype=torch.float64)  # [C, B]
            key = (name, g.shape[0])
            per_channel[key] = per_channel[key] + g if key in per_channel else g
        return float(sum(0.5 * g.pow(2).mean(dim=1).sum() for g in per_channel.values()))


@register_proxy
class AutostFitness(Proxy):
    """AutoST's released search fitness: ``GFLOPs + ld / NASWOT`` (higher is better).

    AlexandreWANG915/AutoST ``evolution.py`` (commit 7e7ca45) line 176:
    ``indicators = {name: flops + self.ld / power['NASWOT']}`` with ``flops = ops[0] / 10**9``
    (line 173, syops on all-ones inputs) and ``power`` the dict of training-free indicators
    (``lib.training_free``, not released); ``--ld`` defaults to 0.0 (line 430), so the released
    search ranks by FLOPs alone, as the paper states. Candidates are kept highest-first
    (``update_top_k(..., reverse=True)``, lines 202-208 and 350; line 374). Here: GFLOPs are
    ``estimate_cost(config).flops / 1e9`` (2 x MACs with attention products; syops' ``ops[0]``
    counts each MAC once, so ``ld`` values do not carry over 1:1) and NASWOT is ``naswot_hd``,
    the log|det| of Mellor et al.'s Hamming kernel over the spike codes. ``ld / 0`` is
    ``+-inf`` and ``ld / -inf`` is ``-0.0``, as numpy divides. The registered proxy uses the
    released ``ld = 0.0`` (FLOPs only: no model, no data); a subclass setting ``name`` and
    ``ld`` adds the NASWOT term and reads the shared forward pass.
    """

    name = "autost_fitness"
    sign = 1
    ld: ClassVar[float] = 0.0
    builds_model = False
    cost = "analytic (microseconds, no model); with ld != 0 also the shared forward pass"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        uses_naswot = cls.ld != 0.0
        cls.needs_data = cls.builds_model = uses_naswot
        cls.shares = frozenset({"activity", "kernels"}) if uses_naswot else frozenset()

    def compute(self, ctx: ProxyContext) -> float:
        gflops = estimate_cost(ctx.config).flops / 1e9
        if self.ld == 0.0:
            return float(gflops)
        naswot = np.float64(log_abs_det(ctx.kernels().hamming_kernel()))
        with np.errstate(divide="ignore"):
            return float(gflops + np.float64(self.ld) / naswot)
