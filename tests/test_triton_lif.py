"""The triton backend of the LIF op equals the reference, checked on CPU through Triton's
interpreter; which backend ``auto`` picks; and its fallbacks.

``@triton.jit`` reads ``TRITON_INTERPRET`` when it decorates, that is when
``autost.neurons.triton_kernels`` is imported (not when a kernel launches); the
``kernels_module`` fixture therefore imports that module afresh with the variable set, and
afterwards puts back the module and the environment it found. Triton itself may have been
imported before without the variable: the kernels use none of its ``@jit`` library functions.
The last test runs the real kernels, where a CUDA GPU is present.
"""

from __future__ import annotations

import importlib
import math
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from autost import neurons
from autost.neurons import (
    backend,
    get_surrogate,
    kernels,
    lif_multistep,
    lif_multistep_reference,
)

triton = pytest.importorskip("triton", reason="triton is not installed")
tl = triton.language

MODULE = "autost.neurons.triton_kernels"


def _import_kernels(monkeypatch: pytest.MonkeyPatch, interpret: bool) -> types.ModuleType:
    """``triton_kernels`` imported afresh with ``TRITON_INTERPRET`` set so; the module, the
    package attribute and the variable go back to what they were when ``monkeypatch`` undoes."""
    monkeypatch.setenv("TRITON_INTERPRET", "1" if interpret else "0")
    monkeypatch.setitem(sys.modules, MODULE, None)
    del sys.modules[MODULE]
    monkeypatch.setattr(neurons, "triton_kernels", None, raising=False)
    delattr(neurons, "triton_kernels")  # else ``from autost.neurons import`` would find it
    return importlib.import_module(MODULE)


@pytest.fixture
def kernels_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """The triton kernels under the interpreter, with a small block (several programs and a
    ragged last one), a clean failure record, and warnings from autost as errors."""
    monkeypatch.delenv(neurons.BACKEND_ENV, raising=False)
    module = _import_kernels(monkeypatch, interpret=True)
    assert module.INTERPRETED
    monkeypatch.setattr(module, "BLOCK", 32)
    monkeypatch.setattr(backend, "_triton_failed", set())
    monkeypatch.setattr(backend, "_triton_warned", set())
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="autost:")  # no quiet fallback
        yield module


def _spec(
    tau: float | Tensor, v_threshold: float, v_reset: float, surrogate: str, **kw: Any
) -> kernels._Spec:
    sur = get_surrogate(surrogate)
    alpha = kw.get("alpha")
    return kernels._Spec(
        tau.detach() if isinstance(tau, Tensor) else tau,
        v_threshold,
        v_reset,
        sur.default_alpha if alpha is None else alpha,
        sur.derivative,
        kw.get("detach_reset", True),
    )


def _reference_membrane(
    x: Tensor, tau: float | Tensor, v_threshold: float, v_reset: float
) -> Tensor:
    """H of the reference loop (its arithmetic, without autograd)."""
    v = torch.full_like(x[0], v_reset)
    hs = []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - v_reset)) / tau
        s = (h - v_threshold >= 0).to(x.dtype)
        v = h * (1.0 - s) + v_reset * s
        hs.append(h)
    return torch.stack(hs)


def _inputs(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5
    return x.to(dtype), torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)


def _grads(
    op: Any, x: Tensor, grad: Tensor, w: Tensor | None = None, **kw: Any
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Spikes of ``op`` and the gradients w.r.t. x (and w, where tau = 1 / sigmoid(w))."""
    x = x.clone().requires_grad_()
    inputs: tuple[Tensor, ...] = (x,)
    if w is not None:
        w = w.detach().clone().requires_grad_()
        kw["tau"] = 1.0 / torch.sigmoid(w)
        inputs = (x, w)
    out = op(x, **kw)
    return out.detach(), torch.autograd.grad(out, inputs, grad)


# --------------------------------------------------------------------------- kernels == reference


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1, 4, 16])
@pytest.mark.parametrize("surrogate", ["sigmoid", "atan"])
@pytest.mark.parametrize(("tau", "v_reset"), [(2.0, 0.0), (1.7, -0.3)])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_kernels_match_reference_float32(
    kernels_module: types.ModuleType,
    steps: int,
    surrogate: str,
    tau: float,
    v_reset: float,
    detach_reset: bool,
) -> None:
    x, grad = _inputs((steps, 75), torch.float32, seed=steps)  # 75 = 2 x 32 + 11
    kw = {"v_threshold": 0.8, "v_reset": v_reset, "surrogate": surrogate}
    kw |= {"detach_reset": detach_reset}
    spec = _spec(tau, **kw)
    spikes, hs = kernels_module.forward(x, spec, store_h=True)
    ref, (g_ref,) = _grads(lif_multistep_reference, x, grad, tau=tau, **kw)
    assert torch.equal(spikes, ref)
    assert torch.equal(hs, _reference_membrane(x, tau, 0.8, v_reset))  # the membrane, bit for bit
    assert 0 < ref.sum() < ref.numel()
    grad_x, grad_tau = kernels_module.backward(x, grad, spec, False)
    assert grad_tau is None
    torch.testing.assert_close(grad_x, g_ref, rtol=1e-6, atol=1e-6)
    # the same through the public op, and with a learnable tau (PLIF)
    fast, (g_fast,) = _grads(lif_multistep, x, grad, tau=tau, backend="triton", **kw)
    assert torch.equal(fast, ref)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-6, atol=1e-6)
    w = torch.tensor(-math.log(tau - 1.0))
    fast, grads_fast = _grads(lif_multistep, x, grad, w, backend="triton", **kw)
    ref, grads_ref = _grads(lif_multistep_reference, x, grad, w, **kw)
    assert torch.equal(fast, ref)
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_kernels_known_values(kernels_module: types.ModuleType) -> None:
    """Hand-computed trains; H lands exactly on the threshold, which must spike."""
    # tau 2, threshold 1: H = 0.75, 1.125 (spike, V = 0), 0.75, ...
    out = lif_multistep(torch.full((6, 40), 1.5), 2.0, 1.0, backend="triton")
    assert torch.equal(out, torch.tensor([0.0, 1.0] * 3)[:, None].expand(6, 40))
    # H_0 = 2 / 2 = 1.0 = threshold; then H = 0 + 0.5 / 2, then 0.25 + (3.5 - 0.25) / 2 = 1.875
    x = torch.tensor([2.0, 0.5, 3.5])[:, None].expand(3, 33)
    assert torch.equal(
        lif_multistep(x, 2.0, 1.0, backend="triton")[:, 0], torch.tensor([1.0, 0, 1])
    )
    # v_reset 0.5: H = 0.5 + (1.5 - 0) / 2 = 1.25 every step, so every step spikes
    out = lif_multistep(torch.full((4, 35), 1.5), 2.0, 1.0, 0.5, backend="triton")
    assert torch.equal(out, torch.ones(4, 35))
    # T = 1, x = 2, tau = 2: dS/dx = sg'(0) / tau = 1 / 2 for both surrogates' default alpha
    for surrogate in ("sigmoid", "atan"):
        x = torch.full((1, 40), 2.0, dtype=torch.float64, requires_grad=True)
        out = lif_multistep(x, 2.0, surrogate=surrogate, backend="triton")
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.equal(grad, torch.full_like(grad, 0.5))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_kernels_match_reference_other_dtypes(
    kernels_module: types.ModuleType, dtype: torch.dtype
) -> None:
    """float64 to 1e-12; float16 rounded op by op and with its constants cast as PyTorch does,
    so spikes and H still equal. (bfloat16 only on a GPU: the interpreter truncates to it.)"""
    x, grad = _inputs((6, 3, 25), dtype, seed=5)
    tol = 1e-12 if dtype == torch.float64 else 2e-3
    for tau, kw in [
        (1.3, {"v_threshold": 1.0, "v_reset": 0.0, "surrogate": "sigmoid", "alpha": 2.5}),
        (3.3, {"v_threshold": 0.4, "v_reset": -0.35, "surrogate": "atan", "detach_reset": False}),
    ]:
        spec = _spec(tau, **kw)
        hs = kernels_module.forward(x.view(6, -1), spec, store_h=True)[1]
        assert torch.equal(
            hs.view(x.shape), _reference_membrane(x, tau, kw["v_threshold"], kw["v_reset"])
        )
        fast, grads_fast = _grads(lif_multistep, x, grad, tau=tau, backend="triton", **kw)
        ref, grads_ref = _grads(lif_multistep_reference, x, grad, tau=tau, **kw)
        assert fast.dtype == dtype and fast.shape == x.shape
        assert torch.equal(fast, ref)
        torch.testing.assert_close(grads_fast[0], grads_ref[0], rtol=tol, atol=tol)
        w = torch.tensor(0.2, dtype=torch.float64)
        fast, grads_fast = _grads(lif_multistep, x, grad, w, backend="triton", **kw)
        ref, grads_ref = _grads(lif_multistep_reference, x, grad, w, **kw)
        assert torch.equal(fast, ref)
        for a, b in zip(grads_fast, grads_ref, strict=True):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernels_divide_by_the_reciprocal_as_pytorch_on_cuda(
    kernels_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    """The CUDA path for a scalar tau (x * (1 / tau), as PyTorch's CUDA division by a scalar),
    run here through the interpreter against that arithmetic spelled out in PyTorch."""
    launch_args = kernels_module._launch_args

    def as_on_cuda(x: Tensor, spec: kernels._Spec) -> tuple[Tensor, dict[str, Any]]:
        params, constexprs = launch_args(x, spec)
        return params, {**constexprs, "TRUE_DIV": False}

    monkeypatch.setattr(kernels_module, "_launch_args", as_on_cuda)
    tau, v_threshold, v_reset = 1.7, 0.9, -0.3
    x, grad = _inputs((7, 70), dtype, seed=4)
    inv_tau = 1.0 / torch.tensor(tau, dtype=dtype)  # in x's dtype, as CUDA's opmath
    expected = torch.empty_like(x)
    v = torch.full_like(x[0], v_reset)
    for t in range(x.shape[0]):  # the same loop with the division as CUDA does it
        expected[t] = v + (x[t] - (v - v_reset)) * inv_tau
        v = torch.where(expected[t] - v_threshold >= 0, v_reset, expected[t])
    spec = _spec(tau, v_threshold, v_reset, "atan", detach_reset=False)
    spikes, hs = kernels_module.forward(x, spec, store_h=True)
    assert torch.equal(hs, expected)
    assert not torch.equal(hs, _reference_membrane(x, tau, v_threshold, v_reset))  # it differs
    assert torch.equal(spikes, (expected - v_threshold >= 0).to(dtype))
    grad_x = kernels_module.backward(x, grad, spec, False)[0]
    kw = {"v_threshold": v_threshold, "v_reset": v_reset, "surrogate": "atan"}
    g_ref = _grads(lif_multistep_reference, x, grad, tau=tau, detach_reset=False, **kw)[1][0]
    torch.testing.assert_close(grad_x, g_ref, rtol=1e-5, atol=1e-5)


def test_triton_backend_runs_the_kernels_and_no_grad(
    kernels_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("forward", "backward"):
        fn = getattr(kernels_module, name)
        monkeypatch.setattr(
            kernels_module, name, lambda *a, fn=fn, name=name: calls.append(name) or fn(*a)
        )
    monkeypatch.setattr(backend, "_eager_forward", None)  # would fail if called
    x = torch.randn(3, 4, 10) + 0.5
    monkeypatch.setenv(neurons.BACKEND_ENV, "triton")
    out = neurons.LIF()(x.requires_grad_())
    out.sum().backward()
    assert calls == ["forward", "backward"]
    with torch.no_grad():
        assert torch.equal(lif_multistep(x), out)
    assert torch.equal(
        lif_multistep(x.detach().transpose(1, 2)),
        lif_multistep_reference(x.detach().transpose(1, 2)),
    )


# --------------------------------------------------------------------------- backend choice


class _FakeCuda:
    """Enough of a CUDA tensor for backend resolution, on a machine without one."""

    device = torch.device("cuda")
    dtype = torch.float32

    def __init__(self, numel: int) -> None:
        self._numel = numel

    def numel(self) -> int:
        return self._numel


def test_auto_picks_triton_only_for_cuda_tensors(
    kernels_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, big = torch.zeros(2, 3), torch.zeros(2, neurons.AUTO_COMPILE_MIN_NUMEL)
    assert backend._triton_runs_on("cpu")  # the interpreter could run it on CPU ...
    monkeypatch.setattr(backend, "_compiler_present", lambda device_type: True)
    assert backend._resolve_backend("auto", small) == "eager"  # ... yet CPU keeps its choice
    assert backend._resolve_backend("auto", big) == "compiled"
    assert backend._resolve_backend("triton", small) == "triton"  # unless asked for
    monkeypatch.setenv(neurons.BACKEND_ENV, "triton")
    assert backend._resolve_backend("auto", big) == "triton"
    assert backend._resolve_backend("compiled", big) == "compiled"  # an explicit argument wins
    monkeypatch.delenv(neurons.BACKEND_ENV)
    cuda = _FakeCuda(6)
    assert backend._resolve_backend("auto", cuda) == "triton"  # small or big
    assert backend._resolve_backend("auto", _FakeCuda(1 << 20)) == "triton"
    assert backend._resolve_backend("eager", cuda) == "eager"
    assert backend._resolve_backend("compiled", cuda) == "compiled"
    monkeypatch.setattr(backend, "_triton_failed", {"cuda"})  # triton broke: today's choice
    assert backend._resolve_backend("auto", cuda) == "eager"
    assert backend._resolve_backend("auto", _FakeCuda(1 << 20)) == "compiled"
    monkeypatch.setattr(backend, "_triton_failed", set())
    monkeypatch.setattr(backend, "_compiler_present", lambda device_type: False)  # no triton
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert backend._resolve_backend("auto", _FakeCuda(1 << 20)) == "eager"


def test_explicit_triton_where_it_cannot_run_falls_back_with_a_warning(
    kernels_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # as on a CPU machine without the interpreter
    assert not backend._triton_runs_on("cpu")
    x = torch.randn(4, 7, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="need triton and a CUDA tensor.*eager"):
        assert torch.equal(lif_multistep(x, backend="triton"), lif_multistep_reference(x))
    lif_multistep(x, backend="triton")  # warned once (warnings are errors here)


def test_a_failing_triton_kernel_falls_back_for_good(
    kernels_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("ptxas fatal")

    monkeypatch.setattr(kernels_module, "backward", broken)
    x, grad = _inputs((5, 2, 9), torch.float64, seed=1)
    kw = {"tau": 1.6, "v_threshold": 0.7, "detach_reset": False}
    ref, (g_ref,) = _grads(lif_multistep_reference, x, grad, **kw)
    with pytest.warns(RuntimeWarning, match="ptxas fatal.*from now on"):
        out, (g_out,) = _grads(lif_multistep, x, grad, backend="triton", **kw)
    assert torch.equal(out, ref)
    torch.testing.assert_close(g_out, g_ref, rtol=0, atol=1e-12)
    assert backend._triton_failed == {"cpu"}
    monkeypatch.setattr(kernels_module, "forward", broken)
    assert backend._resolve_backend("triton", x) == "eager"  # quietly now: warned once


def test_a_surrogate_the_kernel_lacks_gets_another_backward(
    kernels_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernels_module, "SURROGATE_CODES", {})
    x, grad = _inputs((4, 30), torch.float64, seed=2)
    kw = {"tau": 2.5, "surrogate": "atan", "detach_reset": False}
    out, (g_out,) = _grads(lif_multistep, x, grad, backend="triton", **kw)
    ref, (g_ref,) = _grads(lif_multistep_reference, x, grad, **kw)
    assert torch.equal(out, ref)
    torch.testing.assert_close(g_out, g_ref, rtol=0, atol=1e-12)
    assert not backend._triton_failed


# --------------------------------------------------------------------------- on a GPU


def test_kernels_compile_for_a_cuda_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What the interpreter cannot check: the kernels build for CUDA (sm_90, no GPU needed:
    Triton's own LLVM and ptxas), and the float32 charge has no fused multiply-add."""
    import triton.backends
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if "nvidia" not in triton.backends.backends:
        pytest.skip("this triton has no CUDA backend")
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    module = _import_kernels(monkeypatch, interpret=False)
    assert not module.INTERPRETED
    target = GPUTarget("cuda", 90, 32)
    options = module.LAUNCH_OPTIONS
    common = {"params_ptr": "*fp64", "steps": "i32", "n": "i32"}
    ptx = {}
    for dtype, compute, true_div, store_h in [
        ("fp32", tl.float32, False, False),
        ("bf16", tl.float32, True, True),
        ("fp64", tl.float64, True, False),
    ]:
        ptrs = {f"{name}_ptr": f"*{dtype}" for name in ("x", "spikes", "h")}
        constexprs = {"TRUE_DIV": true_div, "STORE_H": store_h, "COMPUTE": compute}
        constexprs["BLOCK"] = module.BLOCK
        signature = {**ptrs, **common, **dict.fromkeys(constexprs, "constexpr")}
        source = ASTSource(module._forward_kernel, signature, constexprs)
        ptx[dtype] = triton.compile(source, target=target, options=options).asm["ptx"]
    assert "fma." not in ptx["fp32"] and "mul.rn.f32" in ptx["fp32"]
    for dtype, compute, true_div, surrogate, detach, tau_grad in [
        ("fp32", tl.float32, False, 0, False, True),
        ("fp16", tl.float32, True, 1, True, False),
        ("fp64", tl.float64, True, 1, False, True),
    ]:
        ptrs = {f"{name}_ptr": f"*{dtype}" for name in ("x", "grad_spikes", "grad_x")}
        ptrs["grad_tau_ptr"] = "*fp64" if compute == tl.float64 else "*fp32"
        constexprs = {"TRUE_DIV": true_div, "SURROGATE": surrogate, "DETACH_RESET": detach}
        constexprs |= {"TAU_GRAD": tau_grad, "COMPUTE": compute, "BLOCK": module.BLOCK}
        signature = {**ptrs, **common, **dict.fromkeys(constexprs, "constexpr")}
        source = ASTSource(module._backward_kernel, signature, constexprs)
        assert triton.compile(source, target=target, options=options).asm["ptx"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_kernels_match_reference_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real kernels (not the interpreter) against the reference on the same GPU: spikes
    and H bit for bit in every dtype, with tau a Python number or a CUDA tensor (PLIF)."""
    module = _import_kernels(monkeypatch, interpret=False)
    assert not module.INTERPRETED
    monkeypatch.delenv(neurons.BACKEND_ENV, raising=False)
    monkeypatch.setattr(backend, "_triton_failed", set())
    assert backend._resolve_backend("auto", torch.zeros(2, 3, device="cuda")) == "triton"
    assert backend._resolve_backend("auto", torch.zeros(2, 3)) == "eager"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="autost:")
        for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            x, grad = (t.cuda() for t in _inputs((8, 3, 1700), dtype, seed=3))
            tol = {torch.float32: 1e-5, torch.float64: 1e-12}.get(dtype, 2e-2)
            for tau, kw in [
                (2.0, {"v_threshold": 1.0, "v_reset": 0.0, "surrogate": "sigmoid"}),
                (
                    1.7,
                    {
                        "v_threshold": 0.4,
                        "v_reset": -0.35,
                        "surrogate": "atan",
                        "detach_reset": False,
                    },
                ),
            ]:
                w = torch.tensor(-math.log(tau - 1.0), device="cuda")
                for tau_arg in (tau, 1.0 / torch.sigmoid(w)):
                    spec = _spec(tau_arg, **kw)
                    hs = module.forward(x.view(8, -1), spec, store_h=True)[1]
                    expected = _reference_membrane(x, tau_arg, kw["v_threshold"], kw["v_reset"])
                    assert torch.equal(hs.view(x.shape), expected), (dtype, tau_arg)
                fast, (g_fast,) = _grads(lif_multistep, x, grad, tau=tau, **kw)
                ref, (g_ref,) = _grads(lif_multistep_reference, x, grad, tau=tau, **kw)
                assert torch.equal(fast, ref)
                torch.testing.assert_close(g_fast, g_ref, rtol=tol, atol=tol)
                fast, grads_fast = _grads(lif_multistep, x, grad, w, **kw)
                ref, grads_ref = _grads(lif_multistep_reference, x, grad, w, **kw)
                assert torch.equal(fast, ref)
                torch.testing.assert_close(grads_fast[0], grads_ref[0], rtol=tol, atol=tol)
                if dtype in (torch.float32, torch.float64):  # a half reference sums too coarsely
                    torch.testing.assert_close(grads_fast[1], grads_ref[1], rtol=10 * tol, atol=tol)
