"""Choosing and running a kernel: backend resolution, compilation and the Triton kernels with
their fallbacks, and the custom autograd function behind :func:`lif_multistep`."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from autost.errors import ConfigError
from autost.neurons.kernels import (
    _eager_backward,
    _eager_forward,
    _fused_backward,
    _fused_forward,
    _Spec,
)
from autost.neurons.surrogates import get_surrogate

BACKENDS = ("auto", "eager", "compiled", "triton")
#: Environment variable that decides what ``backend="auto"`` means.
BACKEND_ENV = "AUTOST_LIF_BACKEND"
#: ``auto`` compiles only inputs at least this large; smaller ones run eagerly.
AUTO_COMPILE_MIN_NUMEL = 1 << 16
#: The dtypes the triton kernels take.
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# --------------------------------------------------------------------------- backends

_compiled_fns: dict[tuple[Any, ...], Callable[..., Any]] = {}
_compile_failed: set[str] = set()
_backend_failures: dict[str, int] = {}
_warned: set[tuple[str, type, bool]] = set()
_triton_failed: set[str] = set()
_triton_warned: set[tuple[str, str]] = set()


@contextmanager
def backend_env(name: str) -> Iterator[None]:
    """``$AUTOST_LIF_BACKEND`` set to ``name`` for the block (worker processes started inside
    inherit it), then restored to what it was."""
    previous = os.environ.get(BACKEND_ENV)
    os.environ[BACKEND_ENV] = name
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = previous


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


def _triton_runs_on(device_type: str) -> bool:
    """Whether the triton kernels can run on this device type: CUDA with triton installed (and
    a GPU it supports), or any device under Triton's interpreter (``TRITON_INTERPRET=1``)."""
    if device_type in _triton_failed:
        return False
    if device_type == "cuda" and _compiler_present("cuda"):  # i.e. triton and a supported GPU
        return True
    if os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("", "0", "false", "off"):
        return False
    try:
        from autost.neurons import triton_kernels
    except Exception:  # not installed, or a triton too old or broken to build the kernels
        return False
    return triton_kernels.INTERPRETED


def _resolve_backend(backend: str, x: Tensor) -> str:
    """``eager``, ``compiled`` or ``triton`` for this call."""
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
    if backend == "eager" or x.numel() == 0:
        return "eager"
    if _get_current_dispatch_mode() is not None:
        return "eager"  # e.g. a FLOP counter: it must see the ops, and dynamo refuses it
    if backend == "triton" or (not explicit and x.device.type == "cuda"):
        if x.dtype in _TRITON_DTYPES and _triton_runs_on(x.device.type):
            return "triton"
        if backend == "triton":
            mode = _auto_mode(x)
            key = (x.device.type, str(x.dtype))
            if key not in _triton_warned and x.device.type not in _triton_failed:
                _triton_warned.add(key)
                warnings.warn(
                    f"autost: the triton LIF kernels need triton and a CUDA tensor of a "
                    f"floating dtype (or TRITON_INTERPRET=1), not {x.device.type} {x.dtype}; "
                    f"using the {mode} kernel there",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return mode
    if backend == "compiled":
        return "eager" if x.device.type in _compile_failed else "compiled"
    return _auto_mode(x)


def _auto_mode(x: Tensor) -> str:
    """What ``auto`` runs where the triton kernels do not: ``compiled`` for inputs large
    enough to repay compiling where a compiler is present, else ``eager``."""
    if x.device.type in _compile_failed:
        return "eager"
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


def _run_triton(name: str, x: Tensor, *args: Any) -> Any:
    """``triton_kernels.<name>(x, *args)``, or ``None`` if that failed: then the device stays
    off the triton kernels for good (a kernel that does not build will not build next time)."""
    try:
        from autost.neurons import triton_kernels

        return getattr(triton_kernels, name)(x, *args)
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:
        device = x.device.type
        _triton_failed.add(device)
        if (device, "failed") not in _triton_warned:
            _triton_warned.add((device, "failed"))
            warnings.warn(
                f"autost: the triton LIF kernel failed ({type(exc).__name__}: {exc}); "
                f"using the compiled or eager kernel on {device} from now on",
                RuntimeWarning,
                stacklevel=2,
            )
        return None


def _forward(
    x: Tensor, spec: _Spec, mode: str, save: bool
) -> tuple[Tensor, tuple[Tensor, ...], str]:
    """Spikes, what backward needs, and the kernel that ran: ``(x,)`` (triton),
    ``(x, params)`` (compiled) or ``(H,)`` (eager)."""
    if mode == "triton":
        result = _run_triton("forward", x, spec)
        if result is not None:
            return result[0], (x,), "triton"
        mode = _auto_mode(x)
    if mode == "compiled":
        params = spec.params(x)
        spikes = _run_compiled(_fused_forward, spec.flags(), x, params)
        if spikes is not None:
            return spikes, (x, params), "compiled"
    spikes, hs = _eager_forward(x, spec, save_h=save)
    return spikes, () if hs is None else (hs,), "eager"


def _backward(
    saved: tuple[Tensor, ...], grad_spikes: Tensor, spec: _Spec, tau_grad: bool, mode: str
) -> tuple[Tensor, Tensor | None]:
    if mode == "triton":
        (x,) = saved
        from autost.neurons import triton_kernels

        if triton_kernels.supports(spec):
            result: tuple[Tensor, Tensor | None] | None = _run_triton(
                "backward", x, grad_spikes, spec, tau_grad
            )
            if result is not None:
                return result
        # A surrogate the kernel does not implement, or it failed: what auto runs instead.
        mode = _auto_mode(x)
        saved = (x, spec.params(x)) if mode == "compiled" else _forward(x, spec, "eager", True)[1]
    if mode == "compiled":
        x, params = saved
        static = (spec.derivative, spec.detach_reset, tau_grad, *spec.flags())
        result = _run_compiled(_fused_backward, static, x, grad_spikes, params)
        if result is not None:
            return result
        saved = _forward(x, spec, "eager", save=True)[1]  # compiling failed: recompute H
    return _eager_backward(saved[0], grad_spikes, spec, tau_grad)


# --------------------------------------------------------------------------- fast op


class _LIFFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, tau: float | Tensor, spec: _Spec, mode: str) -> Tensor:
        spikes, saved, ctx.mode = _forward(x, spec, mode, save=True)
        ctx.save_for_backward(*saved)
        ctx.spec = spec
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        tau_grad = ctx.needs_input_grad[1]
        grad_x, grad_tau = _backward(
            ctx.saved_tensors, grad_spikes.contiguous(), ctx.spec, tau_grad, ctx.mode
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
    ``backend`` is ``auto``, ``eager``, ``compiled`` or ``triton`` (see the module docstring).
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
