"""Gradient proxies through the LIF surrogate gradients: grad_norm and synflow.

Both follow SamsungLabs/zero-cost-nas (Abdelfattah et al., ICLR 2021, "Zero-Cost Proxies for
Lightweight NAS"), whose per-layer scores are summed over the synaptic layers (convolutions and
linears, their weights only). Spikes are Heaviside steps, so every gradient here is the
surrogate gradient the network would train with.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autost.neurons import neuron_layers
from autost.proxies.base import Proxy, register_proxy

if TYPE_CHECKING:
    from autost.proxies.context import ProxyContext

SYNAPTIC = (nn.Linear, nn.modules.conv._ConvNd)


def synaptic_weights(model: nn.Module) -> list[Tensor]:
    """The weights of the convolutions and linears of ``model``: what the scores sum over."""
    return [m.weight for m in model.modules() if isinstance(m, SYNAPTIC)]


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
        x, y = ctx.inputs()
        model.zero_grad(set_to_none=True)
        try:
            with torch.enable_grad():
                F.cross_entropy(model(x), y.to(x.device).long()).backward()
            norms = [w.grad.double().norm() for w in synaptic_weights(model) if w.grad is not None]
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
    Data-free, but builds a model (higher is better).
    """

    name = "synflow"
    sign = 1
    cost = "own float64 forward + backward pass on one all-ones sample"

    def compute(self, ctx: ProxyContext) -> float:
        model = copy.deepcopy(ctx.model)
        for name, module in list(model.named_modules()):
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                model.set_submodule(name, nn.Identity())
        model.double()
        dynamics = {id(p) for _, neuron in neuron_layers(model) for p in neuron.parameters()}
        with torch.no_grad():
            for param in model.parameters():
                if id(param) not in dynamics:
                    param.abs_()
        cfg = ctx.config
        shape = (1, cfg.in_channels, cfg.image_size, cfg.image_size)
        ones = torch.ones(shape, dtype=torch.float64, device=ctx.device)
        with torch.enable_grad():
            model(ones).sum().backward()
        flows = [
            (w.detach() * w.grad).abs().sum() for w in synaptic_weights(model) if w.grad is not None
        ]
        return float(sum(flows))
