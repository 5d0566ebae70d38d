"""The LIF arithmetic: the reference loop, and the fused and eager kernels of the fast op."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from autost.neurons.surrogates import Derivative, get_surrogate

# --------------------------------------------------------------------------- reference kernel


def lif_multistep_reference(
    x: Tensor,
    tau: float | Tensor = 2.0,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    surrogate: str = "sigmoid",
    alpha: float | None = None,
    detach_reset: bool = True,
) -> Tensor:
    """Spikes of a LIF over ``x: [T, ...]``, a plain loop under autograd (the ground truth)."""
    sur = get_surrogate(surrogate)
    v = torch.full_like(x[0], v_reset)
    spikes = []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - v_reset)) / tau
        s = sur.spike(h - v_threshold, alpha)
        s_reset = s.detach() if detach_reset else s
        v = h * (1.0 - s_reset) + v_reset * s_reset
        spikes.append(s)
    return torch.stack(spikes) if spikes else x.clone()


# --------------------------------------------------------------------------- call parameters


@dataclass(frozen=True)
class _Spec:
    """Everything but x that one LIF call needs (``tau`` detached)."""

    tau: float | Tensor
    v_threshold: float
    v_reset: float
    alpha: float
    derivative: Derivative
    detach_reset: bool

    def params(self, x: Tensor) -> Tensor:
        """The fused kernels' ``params`` tensor on x's device."""
        rest = (self.v_threshold, self.v_reset, self.alpha)
        if isinstance(self.tau, Tensor):
            tau = self.tau.reshape(1).to(device=x.device, dtype=torch.float64)
            return torch.cat([tau, _constants(rest, x.device), 1.0 / tau])
        return _constants((self.tau, *rest, 1.0 / self.tau), x.device)

    def flags(self) -> tuple[bool, bool]:
        """The fused kernels' static ``(tau_pow2, zero_reset)``."""
        pow2 = not isinstance(self.tau, Tensor) and math.frexp(self.tau)[0] == 0.5
        return pow2, self.v_reset == 0.0


def _constants(values: tuple[float, ...], device: torch.device) -> Tensor:
    """A float64 tensor of ``values``, made once per device (no host-to-device copy per call)."""
    if torch.compiler.is_compiling():  # an enclosing compile bakes it into its graph anyway
        return torch.tensor(values, dtype=torch.float64, device=device)
    return _cached_constants(values, device)


@functools.lru_cache(maxsize=256)
def _cached_constants(values: tuple[float, ...], device: torch.device) -> Tensor:
    with torch.inference_mode(False):  # a cached inference tensor could not be saved for backward
        return torch.tensor(values, dtype=torch.float64, device=device)


# --------------------------------------------------------------------------- fused kernels
# Pure functions over x: [T, N]; torch.compile fuses each into one loop over N with the T
# steps unrolled. They are also what an enclosing torch.compile traces. The scalars travel as
# one float64 tensor ``params = [tau, v_threshold, v_reset, alpha, 1 / tau]``, so one graph
# serves every value. Two static flags drop work where that is exact: ``tau_pow2`` (tau is a
# power of two, so d / tau == d * (1 / tau) bit for bit) and ``zero_reset`` (v_reset == 0).


def _fused_charge(
    x_t: Tensor, v: Tensor, params: Tensor, tau_pow2: bool, zero_reset: bool
) -> tuple[Tensor, Tensor]:
    """``(d, H)`` of one step, ``d = X - (V - v_reset)``, in the reference's arithmetic."""
    d = x_t - v if zero_reset else x_t - (v - params[2])
    return d, v + (d * params[4] if tau_pow2 else d / params[0])


def _fused_reset(h: Tensor, fired: Tensor, params: Tensor, zero_reset: bool) -> Tensor:
    # Equal to H (1 - S) + v_reset S for S in {0, 1} (up to the sign of a zero), in one select.
    return torch.where(fired, 0.0 if zero_reset else params[2], h)


def _fused_forward(x: Tensor, params: Tensor, tau_pow2: bool, zero_reset: bool) -> Tensor:
    v = torch.zeros_like(x[0]) + params[2]
    spikes = []
    for t in range(x.shape[0]):
        h = _fused_charge(x[t], v, params, tau_pow2, zero_reset)[1]
        fired = h >= params[1]
        v = _fused_reset(h, fired, params, zero_reset)
        spikes.append(fired.to(x.dtype))
    return torch.stack(spikes)


def _fused_backward(
    x: Tensor,
    grad_spikes: Tensor,
    params: Tensor,
    derivative: Derivative,
    detach_reset: bool,
    tau_grad: bool,
    tau_pow2: bool,
    zero_reset: bool,
) -> tuple[Tensor, Tensor | None]:
    # Recompute H from x (cheaper than storing and re-reading it), then run time backwards.
    v_threshold, v_reset, alpha, inv_tau = params[1], params[2], params[3], params[4]
    v = torch.zeros_like(x[0]) + v_reset
    hs, ds = [], []
    for t in range(x.shape[0]):
        d, h = _fused_charge(x[t], v, params, tau_pow2, zero_reset)
        v = _fused_reset(h, h >= v_threshold, params, zero_reset)
        hs.append(h)
        ds.append(d)
    grad_x: list[Tensor] = []  # in reverse time order
    grad_v: Tensor | None = None
    acc: Tensor | None = None
    for t in reversed(range(x.shape[0])):
        h = hs[t]
        sg = derivative(h - v_threshold, alpha)
        grad_h = grad_spikes[t] * sg
        if grad_v is not None:  # dV/dH = 1 - S, plus (v_reset - H) sg without detach_reset
            grad_h = grad_h + torch.where(h >= v_threshold, 0.0, grad_v)
            if not detach_reset:
                grad_h = grad_h + grad_v * (v_reset - h) * sg
        grad_x.append(grad_h * inv_tau)
        grad_v = grad_h - grad_x[-1]
        if tau_grad:  # dH/dtau = -d / tau^2
            term = grad_h * ds[t]
            acc = term if acc is None else acc + term
    grad_tau = None if acc is None else -acc.sum() * (inv_tau * inv_tau)
    return torch.stack(grad_x[::-1]), grad_tau


# --------------------------------------------------------------------------- eager kernels
# The same recurrence one step at a time into preallocated buffers. Every op mirrors the
# reference's arithmetic so that spikes come out bit-identical.


def _eager_forward(x: Tensor, spec: _Spec, save_h: bool) -> tuple[Tensor, Tensor | None]:
    tau, v_threshold, v_reset = spec.tau, spec.v_threshold, spec.v_reset
    steps = x.shape[0]
    spikes = torch.empty_like(x)
    hs = torch.empty_like(x) if save_h else torch.empty_like(x[:1]).expand_as(x)
    v = torch.empty_like(x[0])
    tmp = torch.empty_like(x[0]) if v_reset != 0.0 else v
    for t in range(steps):
        h = hs[t]
        if t == 0:  # V_{-1} = v_reset, so V - v_reset = 0
            torch.div(x[0], tau, out=h)
            if v_reset != 0.0:
                h.add_(v_reset)
        else:
            if v_reset != 0.0:
                torch.sub(v, v_reset, out=tmp)
            torch.sub(x[t], tmp, out=h)
            h.div_(tau).add_(v)
        torch.ge(h, v_threshold, out=spikes[t])
        if t + 1 < steps:  # V = H * (1 - S) + v_reset * S, exact because S is 0 or 1
            torch.addcmul(h, h, spikes[t], value=-1.0, out=v)
            if v_reset != 0.0:
                v.add_(spikes[t], alpha=v_reset)
    return spikes, hs if save_h else None


def _eager_backward(
    hs: Tensor, grad_spikes: Tensor, spec: _Spec, tau_grad: bool
) -> tuple[Tensor, Tensor | None]:
    tau, v_threshold, v_reset = spec.tau, spec.v_threshold, spec.v_reset
    grad_x = torch.empty_like(hs)
    grad_h = torch.empty_like(hs[0])
    grad_v = torch.empty_like(hs[0])
    acc = hs.new_zeros(()) if tau_grad else None
    for t in reversed(range(hs.shape[0])):
        h = hs[t]
        sg = spec.derivative(h - v_threshold, spec.alpha)
        torch.mul(sg, grad_spikes[t], out=grad_h)
        if t + 1 < hs.shape[0]:
            if not spec.detach_reset:  # dV/dH gains (v_reset - H) * sg
                grad_h.add_(sg.mul_(grad_v).mul_(torch.rsub(h, v_reset)))
            grad_h.add_(grad_v.masked_fill_(h >= v_threshold, 0.0))
        torch.div(grad_h, tau, out=grad_x[t])
        torch.sub(grad_h, grad_x[t], out=grad_v)
        if acc is not None:  # dH/dtau = -(X - V + v_reset) / tau^2 = -(H - V_{t-1}) / tau
            v_prev = hs[t - 1].masked_fill(hs[t - 1] >= v_threshold, v_reset) if t else v_reset
            acc.add_(torch.dot(grad_h.view(-1), torch.sub(h, v_prev).view(-1)))
    return grad_x, None if acc is None else -acc / tau
