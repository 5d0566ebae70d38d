"""Multi-step spiking neurons over time-major tensors ``[T, ...]``.

One LIF equation (SpikingJelly's ``MultiStepLIFNode``, ``decay_input=True``, hard reset)::

    H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau,   V_{-1} = v_reset
    S_t = Heaviside(H_t - v_threshold)                    (a spike when H_t >= v_threshold)
    V_t = H_t * (1 - S_t) + v_reset * S_t

Backward replaces dS/dH by a registered surrogate derivative; ``detach_reset`` treats the S in
the reset as a constant. Two kernels compute it: :func:`lif_multistep_reference`, a plain loop
under ordinary autograd (the ground truth), and :func:`lif_multistep`, a custom autograd
function whose backward runs the reverse-time recurrence by hand. Its backends:

- ``compiled``: ``torch.compile`` turns the whole recurrence into one fused loop (C++ on CPU,
  Triton on CUDA). Forward saves nothing but the input, backward recomputes H on the fly.
- ``eager``: preallocated buffers and in-place ops, one step at a time; forward saves H.
- ``auto`` (default): ``$AUTOST_LIF_BACKEND`` (``eager|compiled|auto``) if set, else
  ``compiled`` where a compiler is present and the input has at least
  ``AUTO_COMPILE_MIN_NUMEL`` elements (small ones do not repay compiling), else ``eager``.

Inside an enclosing ``torch.compile`` the fused kernels are traced into the caller's graph;
under a dispatch mode (a FLOP counter, say) the eager kernel runs so the mode sees its ops.
If compiling fails the call runs eagerly with a warning (once); a failure of the toolchain
itself (no C++ compiler, unsupported platform) keeps that device on ``eager`` from then on.
Set ``AUTOST_LIF_BACKEND=eager`` to never compile (short test runs, say).

Neurons keep no state between calls: every forward runs a whole sequence from ``v_reset``.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import shutil
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from autost.errors import ConfigError, UnknownNameError
from autost.registry import Registry

__all__ = [
    "LIF",
    "PLIF",
    "Surrogate",
    "get_surrogate",
    "lif_multistep",
    "lif_multistep_reference",
    "list_neurons",
    "list_surrogates",
    "make_neuron",
    "neuron_layers",
    "record_spikes",
    "register_neuron",
    "register_surrogate",
]

BACKENDS = ("auto", "eager", "compiled")
#: Environment variable that decides what ``backend="auto"`` means.
BACKEND_ENV = "AUTOST_LIF_BACKEND"
#: ``auto`` compiles only inputs at least this large; smaller ones run eagerly.
AUTO_COMPILE_MIN_NUMEL = 1 << 16

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


# --------------------------------------------------------------------------- backends

_compiled_fns: dict[tuple[Any, ...], Callable[..., Any]] = {}
_compile_failed: set[str] = set()
_backend_failures: dict[str, int] = {}
_warned: set[tuple[str, type, bool]] = set()


@functools.cache
def _compiler_present(device_type: str) -> bool:
    """Whether torch.compile can be expected to pay on this device type (Windows: no)."""
    if sys.platform == "win32":
        return False
    if device_type == "cpu":
        names = [os.environ.get("CXX", ""), "g++", "clang++", "c++"]
        if not any(name and shutil.which(name) for name in names):
            return False
        try:  # without a SIMD instruction set inductor's loops are scalar: slower than eager
            from torch._inductor.cpu_vec_isa import pick_vec_isa

            return bool(pick_vec_isa())
        except Exception:
            return False
    if device_type == "cuda":
        from torch.utils._triton import has_triton

        return bool(has_triton())
    return False


def _resolve_backend(backend: str, x: Tensor) -> str:
    """``eager`` or ``compiled`` for this call."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    explicit = backend != "auto"
    if not explicit:
        backend = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
        if backend not in BACKENDS:
            raise ConfigError(BACKEND_ENV, f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
        explicit = backend != "auto"
    if torch.compiler.is_compiling():
        return "compiled"  # an enclosing torch.compile traces the fused kernels itself
    if backend == "eager" or x.numel() == 0 or x.device.type in _compile_failed:
        return "eager"
    if _get_current_dispatch_mode() is not None:
        return "eager"  # e.g. a FLOP counter: it must see the ops, and dynamo refuses it
    if explicit:
        return "compiled"
    big = x.numel() >= AUTO_COMPILE_MIN_NUMEL
    return "compiled" if big and _compiler_present(x.device.type) else "eager"


def _run_compiled(fn: Callable[..., Any], static: tuple[Any, ...], x: Tensor, *args: Any) -> Any:
    """``fn(x, *args, *static)`` through torch.compile, or ``None`` if compiling failed.

    The device stays on the eager kernel for good once the toolchain itself has failed (no
    compiler, unsupported platform: torch.compile refuses, or the backend fails twice, a second
    chance for races in the shared compile cache); any other failure costs only this call.
    """
    if torch.compiler.is_compiling():
        return fn(x, *args, *static)
    device = x.device.type
    key = (fn.__name__, x.shape[0], *static)
    permanent = True
    try:
        compiled = _compiled_fns.get(key)
        if compiled is None:
            # Dynamo keeps its graphs per code object and gives up after ``recompile_limit``
            # (8) of them, so every static variant gets a code object of its own.
            code = fn.__code__.replace(co_name=f"{fn.__name__}_{len(_compiled_fns)}")
            variant = types.FunctionType(code, fn.__globals__, code.co_name)
            # dynamic_threads: a graph compiled for a small N must still use every thread.
            options: dict[str, Any] = {"cpp.dynamic_threads": True}
            compiled = torch.compile(variant, fullgraph=True, options=options)
            _compiled_fns[key] = compiled
        from torch._dynamo import maybe_mark_dynamic
        from torch._dynamo.exc import BackendCompilerFailed

        # requires_grad and grad mode are guarded: keep both constant; one graph for every N.
        inputs = [a.detach() if isinstance(a, Tensor) else a for a in (x, *args)]
        for arg in inputs:
            if isinstance(arg, Tensor) and arg.dim() == 2:
                maybe_mark_dynamic(arg, 1)
        with torch.no_grad():
            try:
                return compiled(*inputs, *static)
            except BackendCompilerFailed:
                _backend_failures[device] = _backend_failures.get(device, 0) + 1
                permanent = _backend_failures[device] >= 2
                raise
            except Exception:
                permanent = False
                raise
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:
        if permanent:
            _compile_failed.add(device)
        if (device, type(exc), permanent) not in _warned:
            _warned.add((device, type(exc), permanent))
            scope = "from now on" if permanent else "for this call"
            warnings.warn(
                f"autost: compiling the LIF kernel failed ({type(exc).__name__}: {exc}); "
                f"using the eager kernel on {device} {scope}",
                RuntimeWarning,
                stacklevel=2,
            )
        return None


def _forward(x: Tensor, spec: _Spec, mode: str, save: bool) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Spikes, and what backward needs: ``(x, params)`` (compiled) or ``(H,)`` (eager)."""
    if mode == "compiled":
        params = spec.params(x)
        spikes = _run_compiled(_fused_forward, spec.flags(), x, params)
        if spikes is not None:
            return spikes, (x, params)
    spikes, hs = _eager_forward(x, spec, save_h=save)
    return spikes, () if hs is None else (hs,)


def _backward(
    saved: tuple[Tensor, ...], grad_spikes: Tensor, spec: _Spec, tau_grad: bool
) -> tuple[Tensor, Tensor | None]:
    if len(saved) == 2:  # a compiled forward saved (x, params)
        x, params = saved
        static = (spec.derivative, spec.detach_reset, tau_grad, *spec.flags())
        result: tuple[Tensor, Tensor | None] | None = _run_compiled(
            _fused_backward, static, x, grad_spikes, params
        )
        if result is not None:
            return result
        saved = _forward(x, spec, "eager", save=True)[1]  # compiling failed: recompute H
    return _eager_backward(saved[0], grad_spikes, spec, tau_grad)


# --------------------------------------------------------------------------- fast op


class _LIFFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, tau: float | Tensor, spec: _Spec, mode: str) -> Tensor:
        spikes, saved = _forward(x, spec, mode, save=True)
        ctx.save_for_backward(*saved)
        ctx.spec = spec
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        tau_grad = ctx.needs_input_grad[1]
        grad_x, grad_tau = _backward(
            ctx.saved_tensors, grad_spikes.contiguous(), ctx.spec, tau_grad
        )
        if grad_tau is not None:
            grad_tau = grad_tau.to(ctx.spec.tau.dtype)
        return grad_x, grad_tau, None, None


def lif_multistep(
    x: Tensor,
    tau: float | Tensor = 2.0,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    surrogate: str = "sigmoid",
    alpha: float | None = None,
    detach_reset: bool = True,
    backend: str = "auto",
) -> Tensor:
    """Spikes of a LIF over ``x: [T, ...]`` (the fast op; same maths as the reference).

    ``tau`` may be a 0-d tensor that requires grad (PLIF); its gradient is returned too.
    ``backend`` is ``auto``, ``eager`` or ``compiled`` (see the module docstring).
    """
    if x.dim() == 0:
        raise ConfigError("x", "needs a leading time dimension [T, ...]")
    if not isinstance(tau, Tensor) and not tau > 0:
        raise ConfigError("tau", f"must be > 0, got {tau!r}")
    if not v_threshold > v_reset:
        raise ConfigError("v_threshold", f"must be > v_reset ({v_reset}), got {v_threshold!r}")
    sur = get_surrogate(surrogate)
    spec = _Spec(
        tau.detach() if isinstance(tau, Tensor) else float(tau),
        float(v_threshold),
        float(v_reset),
        sur.default_alpha if alpha is None else float(alpha),
        sur.derivative,
        bool(detach_reset),
    )
    mode = _resolve_backend(backend, x)
    x2 = x.contiguous().view(x.shape[0], -1)
    tau_tracked = isinstance(tau, Tensor) and tau.requires_grad
    if torch.is_grad_enabled() and (x.requires_grad or tau_tracked):
        spikes = _LIFFunction.apply(x2, tau, spec, mode)
    else:
        spikes = _forward(x2, spec, mode, save=False)[0]
    return spikes.view(x.shape)


# --------------------------------------------------------------------------- modules


def _check_number(
    field: str, value: object, rule: str = "", ok: Callable[[float], bool] = bool
) -> float:
    """``value`` as a float, or :class:`ConfigError` naming ``field`` if it is not a finite
    number for which ``ok`` holds."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not ok(number):
        raise ConfigError(field, f"must be a finite number{rule}, got {value!r}")
    return float(number)


class LIF(nn.Module):
    """Multi-step leaky integrate-and-fire neuron over ``[T, ...]`` (no state between calls).

    Set ``record = True`` (or use :func:`record_spikes`) to keep the latest output spikes,
    detached, in ``last_spikes``.
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate: str = "sigmoid",
        alpha: float | None = None,
        detach_reset: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.tau = _check_number("tau", tau, " > 0", lambda v: v > 0)
        self.v_reset = _check_number("v_reset", v_reset, ok=lambda v: True)
        self.v_threshold = _check_number(
            "v_threshold", v_threshold, f" > v_reset ({v_reset})", lambda v: v > self.v_reset
        )
        try:
            get_surrogate(surrogate)
        except UnknownNameError as exc:
            raise ConfigError("surrogate", str(exc)) from None
        self.surrogate = surrogate
        if alpha is not None:
            alpha = _check_number("alpha", alpha, " > 0 (or None for the default)", lambda v: v > 0)
        self.alpha = alpha
        self.detach_reset = bool(detach_reset)
        if backend not in BACKENDS:
            raise ConfigError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend = backend
        self.record = False
        self.last_spikes: Tensor | None = None

    def time_constant(self) -> float | Tensor:
        """The membrane time constant used by ``forward``."""
        return self.tau

    def forward(self, x: Tensor) -> Tensor:
        spikes = lif_multistep(
            x,
            self.time_constant(),
            self.v_threshold,
            self.v_reset,
            self.surrogate,
            self.alpha,
            self.detach_reset,
            self.backend,
        )
        if self.record:
            self.last_spikes = spikes.detach()
        return spikes

    def firing_rate(self) -> float:
        """Mean of the recorded spikes (fraction of neurons x steps that fired)."""
        if self.last_spikes is None:
            raise RuntimeError("no spikes recorded: set record = True and run a forward pass")
        return float(self.last_spikes.float().mean())

    def extra_repr(self) -> str:
        tau = self.time_constant()
        tau_value = float(tau.detach()) if isinstance(tau, Tensor) else tau
        return (
            f"tau={tau_value:.4g}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
            f"surrogate={self.surrogate!r}, alpha={self.alpha}, detach_reset={self.detach_reset}"
        )


class PLIF(LIF):
    """Parametric LIF: a learnable ``tau = 1 / sigmoid(w)``, ``w`` set so that tau starts at
    ``tau`` (> 1). The attribute ``tau`` keeps that initial value; see :meth:`time_constant`."""

    def __init__(self, tau: float = 2.0, **kwargs: Any) -> None:
        _check_number("tau", tau, " > 1 (a PLIF has tau = 1 / sigmoid(w))", lambda v: v > 1)
        super().__init__(tau, **kwargs)
        self.w = nn.Parameter(torch.tensor(-math.log(tau - 1.0)))

    def time_constant(self) -> Tensor:
        return 1.0 / torch.sigmoid(self.w)


_NEURONS: Registry[type[LIF]] = Registry("neuron")
register_neuron = _NEURONS.register
register_neuron("lif")(LIF)
register_neuron("plif")(PLIF)


def make_neuron(kind: str, **kwargs: Any) -> LIF:
    """Build the neuron registered as ``kind`` (``lif``, ``plif``) with ``kwargs``."""
    return _NEURONS.get(kind)(**kwargs)


def list_neurons() -> list[str]:
    """Names of the registered neuron kinds."""
    return _NEURONS.names()


# --------------------------------------------------------------------------- recording


def neuron_layers(module: nn.Module) -> list[tuple[str, LIF]]:
    """Every LIF (or subclass) inside ``module`` with its module path."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, LIF)]


@contextmanager
def record_spikes(module: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Record every neuron of ``module`` while the block runs.

    Yields a dict, filled by each forward pass, from module path to that neuron's latest output
    spikes (detached); it keeps its contents after the block. On exit recording returns to its
    previous setting and the neurons drop the tensors they stored.
    """
    spikes: dict[str, Tensor] = {}
    layers = neuron_layers(module)
    previous = [neuron.record for _, neuron in layers]
    handles = []

    def hook_for(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def hook(neuron: nn.Module, inputs: Any, output: Tensor) -> None:
            spikes[name] = output.detach()

        return hook

    try:
        for name, neuron in layers:
            neuron.record = True
            handles.append(neuron.register_forward_hook(hook_for(name)))
        yield spikes
    finally:
        for handle in handles:
            handle.remove()
        for (_, neuron), was_recording in zip(layers, previous, strict=True):
            neuron.record = was_recording
            if not was_recording:
                neuron.last_spikes = None
