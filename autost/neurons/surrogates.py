"""Surrogate gradients: ``derivative(x, alpha)`` stands in for dHeaviside/dx; a registry."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from autost.registry import Registry

# --------------------------------------------------------------------------- surrogates

#: ``derivative(x, alpha) -> dS/dx``; ``alpha`` is a float or, in compiled kernels, a 0-d tensor.
Derivative = Callable[[Tensor, Any], Tensor]


@dataclass(frozen=True)
class Surrogate:
    """A surrogate gradient: ``derivative(x, alpha)`` stands in for dHeaviside(x)/dx."""

    name: str
    derivative: Derivative
    default_alpha: float

    def spike(self, x: Tensor, alpha: float | None = None) -> Tensor:
        """Heaviside step ``x >= 0`` whose backward uses this surrogate (autograd-tracked)."""
        return _SurrogateHeaviside.apply(
            x, self.derivative, self.default_alpha if alpha is None else alpha
        )


class _SurrogateHeaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, derivative: Derivative, alpha: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.derivative, ctx.alpha = derivative, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.derivative(x, ctx.alpha), None, None


_SURROGATES: Registry[Surrogate] = Registry("surrogate")


def register_surrogate(name: str) -> Callable[[Derivative], Derivative]:
    """Register ``fn(x, alpha=<default>) -> dS/dx`` as surrogate ``name``.

    The function must be elementwise, must not modify ``x`` in place, and its default for
    ``alpha`` becomes the surrogate's default sharpness. Both kernels call it.
    """

    def decorator(fn: Derivative) -> Derivative:
        param = inspect.signature(fn).parameters.get("alpha")
        if param is None or param.default is inspect.Parameter.empty:
            raise TypeError(f"surrogate {name!r} needs a parameter 'alpha' with a default")
        _SURROGATES.register(name)(Surrogate(name, fn, float(param.default)))
        return fn

    return decorator


def get_surrogate(name: str) -> Surrogate:
    """The surrogate registered as ``name``; :class:`UnknownNameError` lists close matches."""
    return _SURROGATES.get(name)


def list_surrogates() -> list[str]:
    """Names of the registered surrogates."""
    return _SURROGATES.names()


@register_surrogate("sigmoid")
def sigmoid_derivative(x: Tensor, alpha: float | Tensor = 4.0) -> Tensor:
    """alpha * sigmoid(alpha x) * (1 - sigmoid(alpha x)), SpikingJelly's ``Sigmoid``.

    While compiling, float32 takes its exponential from :func:`_exp_float32` (<= 1.4 ulp).
    """
    if x.dtype == torch.float32 and torch.compiler.is_compiling():
        s = 1.0 / (1.0 + _exp_float32(-(x * alpha)))
    else:
        s = (x * alpha).sigmoid_()
    return (1.0 - s).mul_(s).mul_(alpha)


def _exp_float32(z: Tensor) -> Tensor:
    """exp of float32 ``z`` by Cephes' expf polynomial: <= 1.4 ulp on [-87, 88], clamped outside.

    Inductor turns torch.exp into a call to Sleef's exp, which alone took about a quarter of
    the fused sigmoid backward; this inlines into the loop. Used only while compiling.
    """
    t = z.clamp(-87.0, 88.0)
    n = torch.round(t * 1.4426950408889634)  # t = n ln2 + r, |r| <= ln2 / 2
    r = t - n * 0.693359375 + n * 2.12194440e-4  # ln2 in two parts, exact first product
    p = r * 1.9875691500e-4 + 1.3981999507e-3
    for c in (8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        p = p * r + c
    two_n = ((n.to(torch.int32) + 127) << 23).view(torch.float32)  # 2**n from its bits
    return (p * (r * r) + r + 1.0) * two_n


@register_surrogate("atan")
def atan_derivative(x: Tensor, alpha: float | Tensor = 2.0) -> Tensor:
    """alpha / 2 / (1 + (pi / 2 * alpha * x)^2), SpikingJelly's ``ATan``."""
    return (x * (math.pi / 2 * alpha)).square_().add_(1.0).reciprocal_().mul_(alpha / 2)
