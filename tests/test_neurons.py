"""Multi-step LIF/PLIF: the fast op equals the reference loop; surrogates, modules, recording."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from autost import neurons
from autost.errors import ConfigError, UnknownNameError
from autost.neurons import (
    LIF,
    PLIF,
    backend,
    get_surrogate,
    kernels,
    lif_multistep,
    lif_multistep_reference,
    list_neurons,
    list_surrogates,
    make_neuron,
    neuron_layers,
    record_spikes,
    register_surrogate,
    surrogates,
)


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(neurons.BACKEND_ENV, raising=False)


def _vjp(out: Tensor, inputs: tuple[Tensor, ...], grad: Tensor) -> tuple[Tensor, ...]:
    return torch.autograd.grad(out, inputs, grad)


# --------------------------------------------------------------------------- fast == reference

cases = st.fixed_dictionaries(
    {
        "shape": st.tuples(
            st.integers(1, 8), st.lists(st.integers(1, 5), min_size=1, max_size=3)
        ).map(lambda tr: (tr[0], *tr[1])),
        "v_threshold": st.floats(0.3, 2.0),
        "v_reset": st.sampled_from([0.0, 0.0, -0.4, 0.2]),
        "tau": st.one_of(st.floats(1.2, 4.0), st.sampled_from([2.0, 4.0])),
        "surrogate": st.sampled_from(["sigmoid", "atan"]),
        "alpha": st.one_of(st.none(), st.floats(0.5, 6.0)),
        "detach_reset": st.booleans(),
        "scale": st.floats(0.1, 3.0),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def _inputs(case: dict, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["shape"], generator=gen, dtype=torch.float64) * case["scale"] + 0.5
    grad = torch.randn(case["shape"], generator=gen, dtype=torch.float64)
    return x.to(dtype), grad.to(dtype)


def _kwargs(case: dict) -> dict:
    keys = ("v_threshold", "v_reset", "surrogate", "alpha", "detach_reset")
    return {k: case[k] for k in keys}


def _assert_matches_reference(case: dict, backend: str) -> None:
    kwargs = _kwargs(case)
    # float32: spikes bit-identical, gradients to float32 rounding.
    x32, grad32 = _inputs(case, torch.float32)
    x_fast, x_ref = x32.clone().requires_grad_(), x32.clone().requires_grad_()
    fast = lif_multistep(x_fast, case["tau"], backend=backend, **kwargs)
    ref = lif_multistep_reference(x_ref, case["tau"], **kwargs)
    assert fast.dtype == torch.float32 and fast.shape == x32.shape
    assert torch.equal(fast, ref)
    (g_fast,), (g_ref,) = _vjp(fast, (x_fast,), grad32), _vjp(ref, (x_ref,), grad32)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-5)
    # float64: spikes identical, gradients w.r.t. x within 1e-6.
    x, grad = _inputs(case, torch.float64)
    x_fast, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast = lif_multistep(x_fast, case["tau"], backend=backend, **kwargs)
    ref = lif_multistep_reference(x_ref, case["tau"], **kwargs)
    assert torch.equal(fast, ref)
    (g_fast,), (g_ref,) = _vjp(fast, (x_fast,), grad), _vjp(ref, (x_ref,), grad)
    torch.testing.assert_close(g_fast, g_ref, rtol=0, atol=1e-6)
    # PLIF-style learnable tau: gradients w.r.t. x and w within 1e-6.
    w_fast = torch.tensor(-math.log(case["tau"] - 1.0), dtype=torch.float64, requires_grad=True)
    w_ref = w_fast.detach().clone().requires_grad_()
    x_fast, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast = lif_multistep(x_fast, 1.0 / torch.sigmoid(w_fast), backend=backend, **kwargs)
    ref = lif_multistep_reference(x_ref, 1.0 / torch.sigmoid(w_ref), **kwargs)
    assert torch.equal(fast, ref)
    grads_fast = _vjp(fast, (x_fast, w_fast), grad)
    grads_ref = _vjp(ref, (x_ref, w_ref), grad)
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@settings(max_examples=120, deadline=None)
@given(case=cases)
def test_eager_fast_op_matches_reference(case: dict) -> None:
    _assert_matches_reference(case, "eager")


@pytest.mark.slow
def test_compiled_fast_op_matches_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """One pass over the compiled backend (compiles a handful of graphs, ~10-30 s cold)."""
    if not backend._compiler_present("cpu"):
        pytest.skip("no C++ compiler for torch.compile")
    monkeypatch.setattr(backend, "_compile_failed", set())
    base = {"shape": (5, 3, 7), "scale": 1.5, "seed": 3, "alpha": None}
    configs = [
        {"v_threshold": 1.0, "v_reset": 0.0, "tau": 2.0, "surrogate": "sigmoid"},
        {"v_threshold": 0.3, "v_reset": -0.4, "tau": 1.7, "surrogate": "atan"},
    ]
    with warnings.catch_warnings():
        # A failed compilation would warn and quietly fall back to the eager kernel.
        warnings.filterwarnings("error", message="autost: compiling")
        for detach_reset, config in zip((True, False), configs, strict=True):
            _assert_matches_reference({**base, **config, "detach_reset": detach_reset}, "compiled")
    assert not backend._compile_failed


@pytest.mark.slow
def test_modules_work_inside_an_enclosing_torch_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    if not backend._compiler_present("cpu"):
        pytest.skip("no C++ compiler for torch.compile")
    monkeypatch.setattr(backend, "_compile_failed", set())
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 6), PLIF(tau=1.7, v_threshold=0.4, backend="compiled"))
    x = torch.randn(4, 3, 6)
    expected = net(x)
    expected.sum().backward()
    grads = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    net.zero_grad()
    out = torch.compile(net)(x)
    out.sum().backward()
    assert torch.equal(out, expected)
    for p, g in zip(net.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=1e-5)
    assert not backend._compile_failed


def test_cached_kernel_constants_are_not_inference_tensors() -> None:
    with torch.inference_mode():
        params = kernels._constants((0.123, 4.56), torch.device("cpu"))
    assert not params.is_inference()
    assert kernels._constants((0.123, 4.56), torch.device("cpu")) is params


# --------------------------------------------------------------------------- known values


@pytest.mark.parametrize("backend", ["eager", "reference"])
def test_constant_input_gives_hand_computed_spike_train(backend: str) -> None:
    # H: 0.75, 1.125 (spike, V=0), 0.75, 1.125 (spike), ... with tau 2, threshold 1.
    x = torch.full((6, 2), 1.5)
    if backend == "reference":
        spikes = lif_multistep_reference(x, 2.0, 1.0)
    else:
        spikes = lif_multistep(x, 2.0, 1.0, backend=backend)
    expected = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])[:, None].expand(6, 2)
    assert torch.equal(spikes, expected)


def test_threshold_reached_exactly_spikes_and_reset_value_applies() -> None:
    x = torch.full((3, 1), 2.0)  # H_0 = 2 / 2 = 1.0 = threshold -> spike
    assert lif_multistep(x, 2.0, 1.0, backend="eager")[0].item() == 1.0
    # v_reset 0.5: H = 0.5 + 1.5 / 2 = 1.25 every step, so every step spikes.
    y = torch.full((4, 1), 1.5)
    assert torch.equal(lif_multistep(y, 2.0, 1.0, 0.5, backend="eager"), torch.ones(4, 1))


@pytest.mark.parametrize("surrogate", ["sigmoid", "atan"])
def test_single_step_gradient_is_surrogate_at_zero_over_tau(surrogate: str) -> None:
    # T = 1, x = 2, tau = 2: H = 1 = threshold, so dS/dx = sg'(0) / tau = 1 / 2 for both
    # surrogates at their default alpha (sigmoid: 4 * 1/4; atan: 2 / 2).
    x = torch.tensor([[2.0]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(lif_multistep(x, 2.0, surrogate=surrogate, backend="eager"), x)
    assert grad.item() == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("detach_reset", [True, False])
def test_two_step_gradient_matches_closed_form(detach_reset: bool) -> None:
    """dS_1/dx_0 by hand: H_0 = x_0/tau, V_0 = H_0 (1 - S_0), H_1 = V_0 + (x_1 - V_0)/tau."""
    tau, th, alpha = 2.0, 1.0, 4.0
    x0, x1 = 2.4, 0.3  # H_0 = 1.2 spikes; H_1 = 0.15
    x = torch.tensor([[x0], [x1]], dtype=torch.float64, requires_grad=True)
    s = lif_multistep(x, tau, th, detach_reset=detach_reset, backend="eager")
    (grad,) = torch.autograd.grad(s[1].sum(), x)
    sg = get_surrogate("sigmoid").derivative
    h0, h1 = x0 / tau, x1 / tau  # V_0 = 0 after the spike
    sg0, sg1 = (float(sg(torch.tensor(h - th, dtype=torch.float64), alpha)) for h in (h0, h1))
    dv0_dh0 = 0.0 if detach_reset else -h0 * sg0  # (1 - S) + (v_reset - H) sg'
    expected_dx0 = sg1 * (1 - 1 / tau) * dv0_dh0 / tau
    assert grad[0].item() == pytest.approx(expected_dx0, abs=1e-12)
    assert grad[1].item() == pytest.approx(sg1 / tau, abs=1e-12)


@pytest.mark.parametrize("detach_reset", [True, False])
def test_full_jacobian_matches_reference(detach_reset: bool) -> None:
    """gradcheck-style: every vector-Jacobian row of the hand-written backward, not one."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 2, 3, generator=gen, dtype=torch.float64) * 1.2 + 0.5
    kwargs: dict[str, Any] = {"tau": 1.6, "v_threshold": 0.8, "v_reset": -0.1}
    kwargs["detach_reset"] = detach_reset
    fast = torch.autograd.functional.jacobian(
        lambda t: lif_multistep(t, backend="eager", **kwargs), x
    )
    ref = torch.autograd.functional.jacobian(lambda t: lif_multistep_reference(t, **kwargs), x)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)
    assert fast.abs().sum() > 0


def test_backward_is_linear_in_the_output_gradient() -> None:
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(6, 4, 5, generator=gen, dtype=torch.float64) + 0.6).requires_grad_()
    g1, g2 = torch.randn(2, 6, 4, 5, generator=gen, dtype=torch.float64)
    out = lif_multistep(x, 1.8, 0.7, detach_reset=False, backend="eager")
    (a,) = torch.autograd.grad(out, x, g1, retain_graph=True)
    (b,) = torch.autograd.grad(out, x, g2, retain_graph=True)
    (c,) = torch.autograd.grad(out, x, 2.0 * g1 - 3.0 * g2)
    torch.testing.assert_close(c, 2.0 * a - 3.0 * b)
    assert a.abs().sum() > 0


def test_noncontiguous_empty_and_no_grad_inputs() -> None:
    x = torch.randn(5, 4, 3).transpose(1, 2)  # [T, 3, 4], not contiguous
    ref = lif_multistep_reference(x)
    assert torch.equal(lif_multistep(x, backend="eager"), ref)
    with torch.no_grad():
        assert torch.equal(lif_multistep(x.requires_grad_(), backend="eager"), ref)
    assert lif_multistep(torch.empty(4, 0, 3), backend="eager").shape == (4, 0, 3)


# --------------------------------------------------------------------------- surrogates


def test_surrogate_derivatives_equal_autograd_of_spikingjelly_primitives() -> None:
    x = torch.linspace(-3, 3, 61, dtype=torch.float64, requires_grad=True)
    primitives = {
        "sigmoid": lambda t, a: torch.sigmoid(a * t),
        "atan": lambda t, a: torch.atan(math.pi / 2 * a * t) / math.pi + 0.5,
    }
    for name, primitive in primitives.items():
        sur = get_surrogate(name)
        for alpha in (sur.default_alpha, 1.3):
            (expected,) = torch.autograd.grad(primitive(x, alpha).sum(), x)
            torch.testing.assert_close(sur.derivative(x.detach(), alpha), expected)
    assert get_surrogate("sigmoid").default_alpha == 4.0
    assert get_surrogate("atan").default_alpha == 2.0


def test_compiled_kernels_exp_polynomial_is_accurate() -> None:
    z = torch.linspace(-87.0, 88.0, 200_001)
    exact = torch.exp(z.double())
    rel = (surrogates._exp_float32(z).double() - exact).abs() / exact
    assert rel.max().item() < 1.5 * 2.0**-24  # about one float32 ulp, as good as torch.exp
    assert torch.isfinite(surrogates._exp_float32(torch.tensor([-1e4, 1e4]))).all()


def test_surrogate_spike_is_heaviside_with_surrogate_gradient() -> None:
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    sur = get_surrogate("atan")
    out = sur.spike(x)
    assert out.tolist() == [0.0, 1.0, 1.0]
    (grad,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(grad, sur.derivative(x.detach(), 2.0))


def test_surrogate_registry() -> None:
    assert {"sigmoid", "atan"} <= set(list_surrogates())
    with pytest.raises(UnknownNameError, match="sigmoid"):
        get_surrogate("sigmiod")

    def with_default(x: Tensor, alpha: float = 1.0) -> Tensor:
        return x

    def without_default(x: Tensor, alpha: float) -> Tensor:
        return x

    with pytest.raises(ValueError, match="already registered"):
        register_surrogate("atan")(with_default)
    with pytest.raises(TypeError, match="alpha"):
        register_surrogate("no-default-alpha")(without_default)
    assert "no-default-alpha" not in list_surrogates()


# --------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": -2.0}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"tau": "2"}, "tau"),
        ({"v_threshold": 0.0}, "v_threshold"),
        ({"v_threshold": 0.5, "v_reset": 0.5}, "v_threshold"),
        ({"v_reset": float("inf")}, "v_reset"),
        ({"surrogate": "sigmod"}, "surrogate"),
        ({"alpha": 0.0}, "alpha"),
        ({"backend": "fast"}, "backend"),
    ],
)
def test_lif_rejects_bad_arguments(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        LIF(**kwargs)
    assert info.value.field == field


def test_other_bad_input_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="sigmoid") as info:
        LIF(surrogate="sigmod")
    assert info.value.field == "surrogate"
    with pytest.raises(ConfigError) as info:
        PLIF(tau=1.0)  # 1 / sigmoid(w) is always > 1
    assert info.value.field == "tau"
    with pytest.raises(UnknownNameError, match="lif"):
        make_neuron("lifx")
    with pytest.raises(ConfigError) as info:
        lif_multistep(torch.tensor(1.0))
    assert info.value.field == "x"
    with pytest.raises(ConfigError) as info:
        lif_multistep(torch.ones(2, 2), tau=-1.0)
    assert info.value.field == "tau"
    with pytest.raises(UnknownNameError):
        lif_multistep(torch.ones(2, 2), surrogate="nope")
    monkeypatch.setenv(neurons.BACKEND_ENV, "turbo")
    with pytest.raises(ConfigError) as info:
        LIF()(torch.ones(2, 2))
    assert info.value.field == neurons.BACKEND_ENV


# --------------------------------------------------------------------------- backends


def test_backend_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    small, big = torch.zeros(2, 3), torch.zeros(2, neurons.AUTO_COMPILE_MIN_NUMEL)
    monkeypatch.setattr(backend, "_compiler_present", lambda device_type: True)
    assert backend._resolve_backend("eager", big) == "eager"
    assert backend._resolve_backend("compiled", small) == "compiled"
    assert backend._resolve_backend("auto", small) == "eager"  # not worth compiling
    assert backend._resolve_backend("auto", big) == "compiled"
    monkeypatch.setenv(neurons.BACKEND_ENV, "eager")
    assert backend._resolve_backend("auto", big) == "eager"
    monkeypatch.setenv(neurons.BACKEND_ENV, "compiled")
    assert backend._resolve_backend("auto", small) == "compiled"
    assert backend._resolve_backend("eager", small) == "eager"  # an explicit argument wins
    monkeypatch.delenv(neurons.BACKEND_ENV)
    monkeypatch.setattr(backend, "_compiler_present", lambda device_type: False)
    assert backend._resolve_backend("auto", big) == "eager"
    monkeypatch.setattr(backend, "_compile_failed", {"cpu"})
    assert backend._resolve_backend("compiled", big) == "eager"


def test_failed_compilation_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_compile(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(backend, "_compiled_fns", {})
    monkeypatch.setattr(backend, "_compile_failed", set())
    monkeypatch.setattr(backend, "_warned", set())
    x = (torch.randn(4, 3, 5, dtype=torch.float64) + 0.5).requires_grad_()
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler.*from now on"):
        out = lif_multistep(x, backend="compiled")
    assert backend._compile_failed == {"cpu"}
    x_ref = x.detach().clone().requires_grad_()
    ref = lif_multistep_reference(x_ref)
    assert torch.equal(out, ref)
    grad = torch.randn_like(ref)
    torch.testing.assert_close(_vjp(out, (x,), grad)[0], _vjp(ref, (x_ref,), grad)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later calls go straight to eager
        lif_multistep(x, backend="compiled")


def test_a_failing_call_falls_back_for_that_call_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: object) -> object:
        raise NotImplementedError("dynamo cannot trace this")

    x = torch.randn(3, 4, 5)
    key = ("_fused_forward", 3, True, True)  # tau 2 (a power of two), v_reset 0
    monkeypatch.setattr(backend, "_compiled_fns", {key: unsupported})
    monkeypatch.setattr(backend, "_compile_failed", set())
    monkeypatch.setattr(backend, "_warned", set())
    with pytest.warns(RuntimeWarning, match="for this call"):
        out = lif_multistep(x, backend="compiled")
    assert torch.equal(out, lif_multistep_reference(x))
    assert not backend._compile_failed


def test_backend_compiler_failures_get_a_second_chance(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._dynamo.exc import BackendCompilerFailed

    def toolchain_broken(*args: object) -> object:
        raise BackendCompilerFailed(torch.compile, RuntimeError("g++: error"), None)

    x = torch.randn(3, 4, 5)
    key = ("_fused_forward", 3, True, True)
    monkeypatch.setattr(backend, "_compiled_fns", {key: toolchain_broken})
    monkeypatch.setattr(backend, "_compile_failed", set())
    monkeypatch.setattr(backend, "_backend_failures", {})
    monkeypatch.setattr(backend, "_warned", set())
    with pytest.warns(RuntimeWarning, match="for this call"):
        assert torch.equal(lif_multistep(x, backend="compiled"), lif_multistep_reference(x))
    assert not backend._compile_failed
    with pytest.warns(RuntimeWarning, match="from now on"):
        assert torch.equal(lif_multistep(x, backend="compiled"), lif_multistep_reference(x))
    assert backend._compile_failed == {"cpu"}


def test_dispatch_modes_see_the_eager_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    monkeypatch.setattr(backend, "_compiler_present", lambda device_type: True)
    big = torch.zeros(2, neurons.AUTO_COMPILE_MIN_NUMEL)
    with FlopCounterMode(display=False):
        assert backend._resolve_backend("compiled", big) == "eager"
    assert backend._resolve_backend("compiled", big) == "compiled"


def test_backward_recovers_when_compiling_fails_after_a_compiled_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forward_only(fn: object, static: tuple[bool, bool], x: Tensor, *args: Tensor) -> object:
        if fn is backend._fused_backward:
            return None  # as if compiling the backward failed
        return backend._fused_forward(x, args[0], *static)

    monkeypatch.setattr(backend, "_run_compiled", forward_only)
    x = (torch.randn(3, 8, dtype=torch.float64) + 0.5).requires_grad_()
    out = lif_multistep(x, 1.5, detach_reset=False, backend="compiled")
    x_ref = x.detach().clone().requires_grad_()
    ref = lif_multistep_reference(x_ref, 1.5, detach_reset=False)
    assert torch.equal(out, ref)
    grad = torch.randn_like(ref)
    torch.testing.assert_close(_vjp(out, (x,), grad)[0], _vjp(ref, (x_ref,), grad)[0])


def test_fused_kernels_match_reference_uncompiled() -> None:
    """The pure functions torch.compile fuses, run eagerly (an enclosing compile traces them)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 40, generator=gen, dtype=torch.float64) * 1.5 + 0.4
    grad = torch.randn(6, 40, generator=gen, dtype=torch.float64)
    for tau, v_reset, surrogate, detach in [
        (2.0, 0.0, "sigmoid", True),
        (1.7, -0.3, "atan", False),
    ]:
        sur = get_surrogate(surrogate)
        spec = kernels._Spec(tau, 0.9, v_reset, sur.default_alpha, sur.derivative, detach)
        params, flags = spec.params(x), spec.flags()
        x_ref = x.clone().requires_grad_()
        ref = lif_multistep_reference(x_ref, tau, 0.9, v_reset, surrogate, detach_reset=detach)
        assert torch.equal(backend._fused_forward(x, params, *flags), ref)
        grad_x, grad_tau = backend._fused_backward(
            x, grad, params, sur.derivative, detach, False, *flags
        )
        assert grad_tau is None
        torch.testing.assert_close(grad_x, _vjp(ref, (x_ref,), grad)[0], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- modules


def test_modules_registry_and_plif_parameter() -> None:
    assert list_neurons() == ["lif", "plif"]
    lif = make_neuron("lif", tau=3.0, v_threshold=0.5)
    assert type(lif) is LIF and lif.tau == 3.0 and lif.v_threshold == 0.5
    assert list(lif.parameters()) == []
    plif = make_neuron("plif", tau=2.0)
    assert isinstance(plif, PLIF)
    assert [name for name, _ in plif.named_parameters()] == ["w"]
    assert float(plif.time_constant().detach()) == pytest.approx(2.0)
    assert float(PLIF(tau=3.0).time_constant().detach()) == pytest.approx(3.0)
    assert "tau=2" in repr(plif)


def test_plif_tau_gets_a_gradient_and_modules_keep_no_state() -> None:
    plif = PLIF(backend="eager")
    x = torch.rand(4, 2, 16) * 2.0
    out = plif(x)
    out.sum().backward()
    assert plif.w.grad is not None and plif.w.grad.abs().item() > 0
    assert torch.equal(plif(x), out)  # every call starts again from v_reset
    lif = LIF(backend="eager")
    assert torch.equal(lif(x), lif(x))
    assert lif(x.double()).dtype == torch.float64


def test_recording_and_firing_rate() -> None:
    lif = LIF(backend="eager")
    x = torch.full((6, 3), 1.5)
    lif(x)
    assert lif.last_spikes is None
    with pytest.raises(RuntimeError, match="record"):
        lif.firing_rate()
    lif.record = True
    out = lif(x.requires_grad_())
    assert lif.last_spikes is not None and not lif.last_spikes.requires_grad
    assert torch.equal(lif.last_spikes, out.detach())
    assert lif.firing_rate() == pytest.approx(0.5)


def _net() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(4, 8), LIF(backend="eager"), nn.Linear(8, 8), PLIF(backend="eager")
    )


def test_neuron_layers_and_record_spikes() -> None:
    net = _net()
    assert [(name, type(m)) for name, m in neuron_layers(net)] == [("1", LIF), ("3", PLIF)]
    x = torch.randn(4, 2, 4) * 3
    with record_spikes(net) as spikes:
        assert spikes == {}
        assert all(m.record for _, m in neuron_layers(net))
        out = net(x)
        assert set(spikes) == {"1", "3"}
        assert torch.equal(spikes["3"], out.detach())
        assert spikes["1"].shape == (4, 2, 8)
    assert set(spikes) == {"1", "3"}  # the dict keeps what it recorded
    for _, neuron in neuron_layers(net):
        assert not neuron.record and neuron.last_spikes is None
    net(x)
    assert set(spikes) == {"1", "3"} and all(m.last_spikes is None for _, m in neuron_layers(net))


def test_record_spikes_restores_previous_setting_even_after_an_error() -> None:
    net = _net()
    (_, lif), (_, plif) = neuron_layers(net)
    lif.record = True
    with pytest.raises(ValueError), record_spikes(net):
        net(torch.randn(2, 1, 4))
        raise ValueError
    assert lif.record and lif.last_spikes is not None
    assert not plif.record and plif.last_spikes is None
