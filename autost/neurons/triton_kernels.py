"""The LIF recurrence as two Triton kernels, the ``triton`` backend of the fast op.

One kernel runs the forward over all T steps, one the backward over all T in reverse. Each
program owns ``BLOCK`` neurons (columns of ``x: [T, N]``) and keeps their state in registers.
Forward saves nothing but x; backward recomputes H into ``grad_x`` (H is exact in x's dtype),
then walks time backwards, overwriting each H with its gradient.

The forward repeats the reference's ops in its order, each result rounded to x's dtype as
PyTorch rounds it (float32 arithmetic for half types), with the constants as PyTorch uses them
(see :func:`_params`), and divides by tau as PyTorch does on x's device: by the reciprocal of
a Python-number (or CPU 0-d) tau on CUDA, exactly otherwise. Spikes and H come out
bit-identical to the reference; gradients agree to rounding.

Importing this module imports triton, and ``@triton.jit`` reads ``TRITON_INTERPRET`` at that
moment: with ``TRITON_INTERPRET=1`` the kernels run on CPU tensors through numpy (slowly), which
is how the tests check them without a GPU. The backend imports the module on first use. The
kernels call only Triton builtins, none of its ``@jit`` library functions (``tl.zeros``,
``tl.sigmoid``, ``tl.sum``): those were decorated when triton itself was imported, perhaps
before the variable was set, and would then refuse to run under the interpreter.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from autost.neurons.kernels import _constants, _Spec
from autost.neurons.surrogates import Derivative, atan_derivative, sigmoid_derivative

#: Neurons per program: 4 warps of 32 threads, 8 neurons each.
BLOCK = 1024
#: No fused multiply-add: PyTorch rounds a product before it adds (and backward recomputes
#: H exactly as the forward computed it).
LAUNCH_OPTIONS: dict[str, Any] = {"num_warps": 4, "enable_fp_fusion": False}
#: The surrogate derivatives the backward kernel implements, with their code in it.
SURROGATE_CODES: dict[Derivative, int] = {sigmoid_derivative: 0, atan_derivative: 1}


# --------------------------------------------------------------------------- device code


@triton.jit
def _round(value: tl.tensor, DTYPE: tl.constexpr, COMPUTE: tl.constexpr) -> tl.tensor:
    """``value`` rounded to the storage dtype, as PyTorch rounds every intermediate result."""
    return value.to(DTYPE).to(COMPUTE)


@triton.jit
def _div(a: tl.tensor, b: tl.tensor) -> tl.tensor:
    """``a / b`` correctly rounded (on CUDA Triton's float32 ``/`` is not; float64's is)."""
    if b.dtype == tl.float64:
        return a / b
    else:
        return tl.fdiv(a, b, ieee_rounding=True)


@triton.jit
def _div_tau(
    value: tl.tensor, tau: tl.tensor, inv_tau: tl.tensor, TRUE_DIV: tl.constexpr
) -> tl.tensor:
    if TRUE_DIV:
        return _div(value, tau)
    else:
        return value * inv_tau


@triton.jit
def _charge(
    x: tl.tensor,
    v: tl.tensor,
    tau: tl.tensor,
    inv_tau: tl.tensor,
    reset: tl.tensor,
    TRUE_DIV: tl.constexpr,
    DTYPE: tl.constexpr,
    COMPUTE: tl.constexpr,
) -> tl.tensor:
    """``H = V + (X - (V - v_reset)) / tau`` op by op, each rounded as the reference's."""
    d = _round(x - _round(v - reset, DTYPE, COMPUTE), DTYPE, COMPUTE)
    return _round(v + _round(_div_tau(d, tau, inv_tau, TRUE_DIV), DTYPE, COMPUTE), DTYPE, COMPUTE)


@triton.jit
def _fired(
    h: tl.tensor, threshold: tl.tensor, DTYPE: tl.constexpr, COMPUTE: tl.constexpr
) -> tl.tensor:
    """The reference's ``Heaviside(H - v_threshold)``, the difference rounded like its own."""
    return _round(h - threshold, DTYPE, COMPUTE) >= 0.0


@triton.jit
def _scalars(params_ptr: tl.tensor, COMPUTE: tl.constexpr) -> tuple[tl.tensor, ...]:
    """``(tau, 1 / tau, v_threshold, v_reset, alpha)`` from ``params`` (see :func:`_params`)."""
    tau = tl.load(params_ptr).to(COMPUTE)
    threshold = tl.load(params_ptr + 1).to(COMPUTE)
    reset = tl.load(params_ptr + 2).to(COMPUTE)
    alpha = tl.load(params_ptr + 3).to(COMPUTE)
    inv_tau = tl.load(params_ptr + 4).to(COMPUTE)
    return tau, inv_tau, threshold, reset, alpha


@triton.jit
def _forward_kernel(
    x_ptr: tl.tensor,
    spikes_ptr: tl.tensor,
    h_ptr: tl.tensor,
    params_ptr: tl.tensor,
    steps: int,
    n: int,
    TRUE_DIV: tl.constexpr,
    STORE_H: tl.constexpr,
    COMPUTE: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    DTYPE = x_ptr.dtype.element_ty
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tau, inv_tau, threshold, reset, _alpha = _scalars(params_ptr, COMPUTE)
    v = tl.full([BLOCK], 0.0, COMPUTE) + reset
    for _ in range(steps):
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
        h = _charge(x, v, tau, inv_tau, reset, TRUE_DIV, DTYPE, COMPUTE)
        fired = _fired(h, threshold, DTYPE, COMPUTE)
        tl.store(spikes_ptr + offs, tl.where(fired, 1.0, 0.0).to(DTYPE), mask=mask)
        if STORE_H:
            tl.store(h_ptr + offs, h.to(DTYPE), mask=mask)
        v = tl.where(fired, reset, h)  # H (1 - S) + v_reset S for S in {0, 1}
        offs += n


@triton.jit
def _surrogate(z: tl.tensor, alpha: tl.tensor, SURROGATE: tl.constexpr) -> tl.tensor:
    if SURROGATE == 0:  # sigmoid: alpha s (1 - s), s = sigmoid(alpha z)
        s = _div(tl.full(z.shape, 1.0, z.dtype), 1.0 + tl.exp(-(z * alpha)))
        return (1.0 - s) * s * alpha
    else:  # atan: alpha / 2 / (1 + (pi / 2 alpha z)^2)
        u = z * (alpha * (math.pi / 2))
        return _div(alpha * 0.5, 1.0 + u * u)


@triton.jit
def _backward_kernel(
    x_ptr: tl.tensor,
    grad_spikes_ptr: tl.tensor,
    grad_x_ptr: tl.tensor,
    grad_tau_ptr: tl.tensor,
    params_ptr: tl.tensor,
    steps: int,
    n: int,
    TRUE_DIV: tl.constexpr,
    SURROGATE: tl.constexpr,
    DETACH_RESET: tl.constexpr,
    TAU_GRAD: tl.constexpr,
    COMPUTE: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    DTYPE = x_ptr.dtype.element_ty
    lanes = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = lanes < n
    offs = lanes
    tau, inv_tau, threshold, reset, alpha = _scalars(params_ptr, COMPUTE)
    # Forward again, H into grad_x (H is a value of x's dtype, so this is exact).
    v = tl.full([BLOCK], 0.0, COMPUTE) + reset
    for _ in range(steps):
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
        h = _charge(x, v, tau, inv_tau, reset, TRUE_DIV, DTYPE, COMPUTE)
        tl.store(grad_x_ptr + offs, h.to(DTYPE), mask=mask)
        v = tl.where(_fired(h, threshold, DTYPE, COMPUTE), reset, h)
        offs += n
    # Time backwards, each H read once: H_{t-1} (for V_{t-1}) is the next step's H.
    offs -= n
    h = tl.load(grad_x_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    grad_v = tl.full([BLOCK], 0.0, COMPUTE)  # dL/dV_t, none after the last step
    acc = tl.full([BLOCK], 0.0, COMPUTE)
    for _ in range(steps):
        z = _round(h - threshold, DTYPE, COMPUTE)
        sg = _surrogate(z, alpha, SURROGATE)
        grad_h = tl.load(grad_spikes_ptr + offs, mask=mask, other=0.0).to(COMPUTE) * sg
        grad_h += tl.where(z >= 0.0, 0.0, grad_v)  # dV/dH = 1 - S ...
        if not DETACH_RESET:  # ... plus (v_reset - H) sg when the reset is differentiated
            grad_h += grad_v * (reset - h) * sg
        grad_x = _div_tau(grad_h, tau, inv_tau, TRUE_DIV)
        tl.store(grad_x_ptr + offs, grad_x.to(DTYPE), mask=mask)
        grad_v = grad_h - grad_x  # dH/dV = 1 - 1 / tau
        first = offs < n  # t = 0 (for the lanes in range): no H_{t-1}, and V_{-1} = v_reset
        h_prev = tl.load(grad_x_ptr + offs - n, mask=mask & ~first, other=0.0).to(COMPUTE)
        if TAU_GRAD:  # dH/dtau = -(X - V + v_reset) / tau^2 = -(H - V_{t-1}) / tau
            fired_prev = _fired(h_prev, threshold, DTYPE, COMPUTE)
            v_prev = tl.where(first | fired_prev, reset, h_prev)
            acc += tl.where(mask, grad_h * (h - v_prev), 0.0)
        h = h_prev
        offs -= n
    if TAU_GRAD:  # one sum per neuron, added up on the host
        tl.store(grad_tau_ptr + lanes, acc, mask=mask)


# --------------------------------------------------------------------------- host code

#: Whether the kernels were built for Triton's interpreter (``TRITON_INTERPRET=1`` at import).
INTERPRETED = not isinstance(_forward_kernel, triton.runtime.JITFunction)


def supports(spec: _Spec) -> bool:
    """Whether the backward kernel implements ``spec``'s surrogate (the forward needs none)."""
    return spec.derivative in SURROGATE_CODES


def _params(x: Tensor, spec: _Spec) -> Tensor:
    """``[tau, v_threshold, v_reset, alpha, 1 / tau]`` (float64 on x's device), each the value
    the reference's ops use on x. PyTorch casts a scalar operand to x's dtype before adding or
    subtracting it, and on CUDA before dividing by it too (on CPU it divides by the exact
    value); that rounds only for float16 and bfloat16, and a 0-d CUDA tau is cast the same
    way. ``1 / tau`` is what PyTorch's CUDA division by a scalar multiplies by: the reciprocal
    of that tau in float32 (float64 for float64 x)."""
    cuda = x.device.type == "cuda"
    reduced = x.dtype in (torch.float16, torch.bfloat16)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    threshold, reset = spec.v_threshold, spec.v_reset
    if reduced:
        threshold, reset = _rounded(threshold, x.dtype), _rounded(reset, x.dtype)
    if isinstance(spec.tau, Tensor):
        tau = spec.tau.reshape(1).to(x.device)
        tau = tau.to(x.dtype) if cuda and reduced else tau
        inv_tau = torch.reciprocal(tau.to(compute))
        rest = _constants((threshold, reset, spec.alpha), x.device)
        return torch.cat([tau.to(torch.float64), rest, inv_tau.to(torch.float64)])
    tau_value = _rounded(spec.tau, x.dtype) if cuda and reduced else spec.tau
    values = (tau_value, threshold, reset, spec.alpha, _reciprocal(tau_value, compute))
    return _constants(values, x.device)


@functools.lru_cache(maxsize=256)
def _rounded(value: float, dtype: torch.dtype) -> float:
    """``value`` cast to ``dtype`` by PyTorch, as a Python number."""
    return float(torch.tensor(value, dtype=torch.float64).to(dtype))


@functools.lru_cache(maxsize=256)
def _reciprocal(value: float, dtype: torch.dtype) -> float:
    """``1 / value`` computed in ``dtype`` (IEEE division on the CPU)."""
    return float(torch.reciprocal(torch.tensor(value, dtype=dtype)))


def _launch_args(x: Tensor, spec: _Spec) -> tuple[Tensor, dict[str, Any]]:
    """``params`` as the kernels read it, and the constexprs that depend on x and tau."""
    cuda = x.device.type == "cuda"
    # A 0-d CUDA tau is an operand, divided exactly; a Python number or a CPU 0-d tensor is a
    # scalar, which CUDA kernels multiply by its reciprocal.
    true_div = not cuda or (isinstance(spec.tau, Tensor) and spec.tau.device.type == "cuda")
    compute = tl.float64 if x.dtype == torch.float64 else tl.float32
    return _params(x, spec), {"TRUE_DIV": true_div, "COMPUTE": compute, "BLOCK": BLOCK}


def _device_guard(x: Tensor) -> contextlib.AbstractContextManager[Any]:
    # Triton launches on the current device.
    return torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()


def forward(x: Tensor, spec: _Spec, store_h: bool = False) -> tuple[Tensor, Tensor | None]:
    """Spikes of ``x: [T, N]`` (contiguous), and H if ``store_h``."""
    x = x.detach()
    steps, n = x.shape
    params, constexprs = _launch_args(x, spec)
    spikes = torch.empty_like(x)
    hs = torch.empty_like(x) if store_h else None
    grid = (triton.cdiv(n, BLOCK),)
    with _device_guard(x):
        _forward_kernel[grid](
            x,
            spikes,
            spikes if hs is None else hs,
            params,
            steps,
            n,
            STORE_H=store_h,
            **LAUNCH_OPTIONS,
            **constexprs,
        )
    return spikes, hs


def backward(
    x: Tensor, grad_spikes: Tensor, spec: _Spec, tau_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """``(grad_x, grad_tau)`` for ``x: [T, N]`` and ``grad_spikes`` (both contiguous);
    ``grad_tau`` is ``None`` unless ``tau_grad``. Needs :func:`supports`."""
    x, grad_spikes = x.detach(), grad_spikes.detach()
    steps, n = x.shape
    params, constexprs = _launch_args(x, spec)
    grad_x = torch.empty_like(x)
    grid = (triton.cdiv(n, BLOCK),)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    partials = torch.empty(n, dtype=dtype, device=x.device) if tau_grad else None
    with _device_guard(x):
        _backward_kernel[grid](
            x,
            grad_spikes,
            grad_x,
            grad_x if partials is None else partials,
            params,
            steps,
            n,
            SURROGATE=SURROGATE_CODES[spec.derivative],
            DETACH_RESET=spec.detach_reset,
            TAU_GRAD=tau_grad,
            **LAUNCH_OPTIONS,
            **constexprs,
        )
    # dL/dtau = -sum(grad_H (H - V_{t-1})) / tau
    grad_tau = None if partials is None else -partials.double().sum() / params[0]
    return grad_x, grad_tau
