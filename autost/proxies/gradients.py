"""Gradient proxies through the LIF surrogate gradients: grad_norm and synflow.

Both follow SamsungLabs/zero-cost-nas (Abdelfattah et al., ICLR 2021, "Zero-Cost Proxies for
Lightweight NAS"), whose per-layer scores are summed over the synaptic layers (convolutions and
linears, their weights only). Spikes are Heaviside steps, so every gradient here is the
surrogate gradient the network would train with. Both run on any spiking network
(:func:`autost.proxies.score`); one without trainable conv/linear weights is an
:class:`~autost.errors.AutostError`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autost.errors import AutostError
from autost.proxies.base import Proxy, register_proxy
from autost.proxies.neuron_types import find_neurons
from autost.proxies.recording import SYNAPTIC

if TYPE_CHECKING:
    from autost.proxies.context import ProxyContext


def synaptic_weights(model: nn.Module) -> list[Tensor]:
    """The weights of the convolutions and linears of ``model``: what the scores sum over."""
    return [m.weight for m in model.modules() if isinstance(m, SYNAPTIC)]


def trainable_weights(model: nn.Module, proxy: str) -> list[Tensor]:
    """The conv/linear weights of ``model`` that require grad; an :class:`AutostError` naming
    ``proxy`` if there are none (a gradient proxy has nothing to measure)."""
    weights = [w for w in synaptic_weights(model) if w.requires_grad]
    if not weights:
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        raise AutostError(
            f"{proxy} needs gradients of conv/linear weights, but {type(model).__name__} has no "
            f"conv or linear layer with trainable weights ({params} trainable parameters)"
        )
    return weights


@register_proxy
class GradNorm(Proxy):
    """Sum of the per-layer gradient norms of the cross-entropy of one batch (higher is better).

    ``sum over conv/linear layers of ||dL/dW||_2`` with ``L = CE(model(x), y)`` (logits
    averaged over time), backpropagated through the surrogate gradients with BN on batch
    statistics, as zero-cost-nas's ``grad_norm`` (which keeps BN).
    """

    name = "grad_norm"
    sign = 1
    needs_data = True
    cost = "own forward + backward pass on the batch"

    def compute(self, ctx: ProxyContext) -> float:
        model = ctx.model
        weights = trainable_weights(model, self.name)
        x, y = ctx.inputs()
        model.zero_grad(set_to_none=True)
        try:
            with torch.enable_grad():
                F.cross_entropy(ctx.forward(x), y.to(x.device).long()).backward()
            norms = [w.grad.double().norm() for w in weights if w.grad is not None]
            return float(sum(norms))
        finally:
            model.zero_grad(set_to_none=True)


@register_proxy
class Synflow(Proxy):
    """Synaptic flow (Tanaka et al., NeurIPS 2020): sum |W * dR/dW| over conv/linear weights.

    As zero-cost-nas's ``synflow``: a float64 copy of the model with BatchNorm bypassed and every
    parameter replaced by its absolute value, ``R = sum(model(1))`` for one all-ones input
    ``[1, C, H, W]`` (coded over T by the model's own coding). For the SNN, neuron parameters
    (a PLIF's time constant) keep their values: they are dynamics, not synaptic weights, and
    the gradients are surrogate gradients. float64 keeps the product of many positive layers
    from overflowing; a result that still overflows is ``inf`` (ranked as the largest).
    Data-free, but builds a model (higher is better). A model without config gets one all-ones
    sample shaped like the batch's (the whole batch, ``R`` divided by ``B``, where the batch
    dimension is ambiguous: without BN the samples do not interact).
    """

    name = "synflow"
    sign = 1
    cost = "own float64 forward + backward pass on one all-ones sample"

    def compute(self, ctx: ProxyContext) -> float:
        trainable_weights(ctx.model, self.name)
        model = copy.deepcopy(ctx.model)
        for name, module in list(model.named_modules()):
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                model.set_submodule(name, nn.Identity())
        model.double()
        for module in model.modules():  # neurons that emit float32 spikes (snnTorch's)
            if isinstance(module, SYNAPTIC):
                module.register_forward_pre_hook(_to_float64)
        dynamics = {id(p) for _, neuron in find_neurons(model) for p in neuron.parameters()}
        with torch.no_grad():
            for param in model.parameters():
                if id(param) not in dynamics:
                    param.abs_()
        if ctx.has_config:
            cfg = ctx.config
            ones, samples = torch.ones(1, cfg.in_channels, cfg.image_size, cfg.image_size), 1
        else:
            sample, samples = one_sample(*ctx.inputs())
            ones = torch.ones_like(sample)
        ones = ones.to(device=ctx.device, dtype=torch.float64)
        with torch.enable_grad():
            (ctx.forward(ones, model, samples).sum() / samples).backward()
        weights = trainable_weights(model, self.name)
        flows = [(w.detach() * w.grad).abs().sum() for w in weights if w.grad is not None]
        return float(sum(flows))


def one_sample(x: Tensor, y: Tensor) -> tuple[Tensor, int]:
    """One sample of ``x`` (``[1, ...]`` or ``[T, 1, ...]``) and 1, or all of ``x`` and ``B``
    where the batch dimension is ambiguous (``x.shape[0] == x.shape[1] == B = len(y)``)."""
    first, second = x.shape[0] == len(y), x.shape[1] == len(y)
    if first and not second:
        return x[:1], 1
    if second and not first:
        return x[:, :1], 1
    return x, len(y)


def _to_float64(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].double(), *args[1:])
