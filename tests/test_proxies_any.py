"""Proxies on any PyTorch spiking network: SpikingJelly, snnTorch, Norse, autost and registered
neurons, checked against spikes counted by hand; bad input gives one clear AutostError."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import autost
from autost import ArchConfig
from autost.errors import AutostError
from autost.neurons import LIF, PLIF
from autost.proxies import (
    ConfigRequiredError,
    KernelAccumulator,
    ProxyContext,
    find_neurons,
    list_proxies,
    log_abs_det,
    register_neuron,
    score,
    score_all,
)

T, B, F, H, C = 4, 6, 12, 16, 3
ALL = ["firing_rate", "sops", "energy", "sahd", "naswot_hd", "grad_norm", "synflow"]
ALL += ["flops", "params"]


def make_batch(seed: int = 0, steps: int = T) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(steps, B, F, generator=gen) * 3, torch.arange(B) % C


class Net(nn.Module):
    """fc1 -> n1 -> fc2 -> n2 -> fc3 over ``x [T, B, F]``, logits averaged over time.

    ``multistep`` neurons take the whole sequence, the others one step per call; ``spikes``
    reads a neuron's output (a tuple for snnTorch and Norse); ``reset`` clears its state.
    """

    def __init__(
        self,
        n1: nn.Module,
        n2: nn.Module,
        multistep: bool,
        spikes: Callable[[Any], Tensor] = lambda out: out,
        reset: Callable[[Any], None] = lambda m: None,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.fc1, self.n1, self.fc2 = nn.Linear(F, H), n1, nn.Linear(H, H)
        self.n2, self.fc3 = n2, nn.Linear(H, C)
        self.multistep, self.gain = multistep, gain
        self.spikes: Callable[[Any], Tensor] = spikes
        self.reset: Callable[[Any], None] = reset

    def forward(self, x: Tensor) -> Tensor:
        if self.multistep:
            s1 = self.spikes(self.n1(self.fc1(x) * self.gain))
            return self.fc3(self.spikes(self.n2(self.fc2(s1) * self.gain))).mean(0)
        outs = []
        for xt in x:  # state carries over the steps: not reset here (the scorer must)
            s1 = self.spikes(self.n1(self.fc1(xt) * self.gain))
            outs.append(self.fc3(self.spikes(self.n2(self.fc2(s1) * self.gain))))
        return torch.stack(outs).mean(0)

    def reset_state(self) -> None:
        self.reset(self.n1)
        self.reset(self.n2)


def first(out: Any) -> Tensor:
    return out[0] if isinstance(out, tuple) else out


def spikingjelly_net(mode: str) -> Net:
    neuron = pytest.importorskip(
        "spikingjelly.activation_based.neuron", reason="spikingjelly is not installed"
    )
    n1, n2 = neuron.LIFNode(step_mode=mode), neuron.IFNode(step_mode=mode)
    return Net(n1, n2, mode == "m", reset=lambda m: m.reset(), gain=2.0)


def snntorch_net() -> Net:
    snn = pytest.importorskip("snntorch", reason="snntorch is not installed")
    n1, n2 = snn.Leaky(beta=0.8), snn.Synaptic(alpha=0.7, beta=0.8)  # (spk, mem), (spk, syn, mem)
    return Net(n1, n2, False, spikes=first, reset=lambda m: m.reset_mem(), gain=2.0)


def norse_net(cells: bool) -> Net:
    norse = pytest.importorskip("norse.torch", reason="norse is not installed")
    p = norse.LIFParameters(tau_mem_inv=torch.tensor(500.0))
    kind = norse.LIFCell if cells else norse.LIF  # one step per call (SNNCell), or [T, B, ...]
    return Net(kind(p), kind(p), not cells, spikes=first, gain=5.0)


def autost_net() -> Net:
    return Net(LIF(), PLIF(tau=3.0), True, gain=2.0)


NETS: dict[str, Callable[[], Net]] = {
    "spikingjelly-multistep": lambda: spikingjelly_net("m"),
    "spikingjelly-singlestep": lambda: spikingjelly_net("s"),
    "snntorch": snntorch_net,
    "norse": lambda: norse_net(cells=False),
    "norse-cells": lambda: norse_net(cells=True),
    "autost": autost_net,
}


def build(name: str, seed: int = 0) -> Net:
    factory = NETS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def hand_count(net: Net, x: Tensor) -> dict[str, Any]:
    """Run ``net`` once from a reset state, counting spikes and synaptic inputs by hand."""
    calls: dict[str, list[Tensor]] = {"n1": [], "n2": [], "fc1": [], "fc2": [], "fc3": []}

    def keep(name: str, spikes: bool) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            calls[name].append(net.spikes(out).detach() if spikes else args[0].detach())

        return hook

    handles = [getattr(net, n).register_forward_hook(keep(n, n[0] == "n")) for n in calls]
    net.reset_state()
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    rates, acc = [], KernelAccumulator()
    for name in ("n1", "n2"):
        out = calls[name]
        assert all(set(s.unique().tolist()) <= {0.0, 1.0} for s in out)  # spikes are 0/1
        rates.append(sum(float(s.sum()) for s in out) / sum(s.numel() for s in out))
        for s in out:  # a single-step call is one timestep of the codes
            acc.add(s if net.multistep else s.unsqueeze(0))
    fc_out = {"fc1": H, "fc2": H, "fc3": C}
    accumulates = sum(float(s.sum()) * fc_out[n] for n in ("fc2", "fc3") for s in calls[n])
    dense = sum(s.numel() * H for s in calls["fc1"])  # real-valued input: multiply-accumulates
    return {"rates": rates, "sops": accumulates / B, "macs": dense / B, "kernels": acc}


# ------------------------------------------------------------------------------ every library


@pytest.mark.parametrize("name", list(NETS))
def test_activity_proxies_equal_hand_counted_spikes(name: str) -> None:
    net, batch = build(name), make_batch()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scores = score(net, batch, ALL, seed=1)
    assert set(scores.raw) == set(ALL) == set(scores.oriented) and "activity" in scores.seconds
    assert [n for n, _ in find_neurons(net)] == ["n1", "n2"]
    # the network is left as it was: weights, mode and hooks
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and net.training
    assert not net._forward_hooks and not net._forward_pre_hooks

    hand = hand_count(net, batch[0])
    assert all(0.0 < r < 1.0 for r in hand["rates"]), hand["rates"]  # spikes, not saturated
    assert scores.raw["firing_rate"] == pytest.approx(sum(hand["rates"]) / 2, rel=1e-12)
    assert scores.raw["sops"] == pytest.approx(hand["sops"], rel=1e-9)
    energy = (0.9 * hand["sops"] + 4.6 * hand["macs"]) * 1e-9
    assert scores.raw["energy"] == pytest.approx(energy, rel=1e-9)
    assert scores.oriented["sops"] == -scores.raw["sops"]
    acc: KernelAccumulator = hand["kernels"]
    assert scores.raw["sahd"] == pytest.approx(log_abs_det(acc.sahd_kernel()), rel=1e-9)
    assert scores.raw["naswot_hd"] == pytest.approx(log_abs_det(acc.hamming_kernel()), rel=1e-9)
    assert math.isfinite(scores.raw["naswot_hd"])
    for grad in ("grad_norm", "synflow"):
        assert math.isfinite(scores.raw[grad]) and scores.raw[grad] > 0, grad
    assert scores.raw["params"] == sum(p.numel() for p in net.parameters())
    assert scores.raw["flops"] == 2 * (F * H + H * H + H * C) * T  # FlopCounterMode, per sample


@pytest.mark.parametrize("name", ["spikingjelly-singlestep", "snntorch"])
def test_stateful_neurons_are_reset_around_every_pass(name: str) -> None:
    net, batch = build(name), make_batch()
    first_scores = score(net, batch, ["firing_rate", "sahd", "grad_norm"]).raw
    with torch.no_grad():
        net(batch[0] * 5)  # leaves membrane state behind in the network
    assert score(net, batch, ["firing_rate", "sahd", "grad_norm"]).raw == first_scores


def test_norse_leaky_integrators_and_nested_neurons_are_not_counted() -> None:
    norse = pytest.importorskip("norse.torch", reason="norse is not installed")
    net = nn.Sequential(nn.Linear(F, H), norse.LIFCell(), norse.LICell(), norse.LIBoxCell())
    assert [n for n, _ in find_neurons(net)] == ["1"]

    class Wrapper(nn.Module):  # a registered neuron that holds another: the outermost counts
        def __init__(self) -> None:
            super().__init__()
            self.inner = LIF()

        def forward(self, x: Tensor) -> Tensor:
            out: Tensor = self.inner(x)
            return out

    register_neuron(Wrapper)
    assert [n for n, _ in find_neurons(nn.Sequential(Wrapper(), LIF()))] == ["0", "1"]


def test_finding_neurons_imports_no_library() -> None:
    code = (
        "import sys, torch; from autost.proxies import find_neurons; "
        "find_neurons(torch.nn.Linear(2, 2)); "
        "print(sorted(m for m in ('spikingjelly', 'snntorch', 'norse') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ autost models

TINY = ArchConfig(
    in_channels=1, image_size=8, stem_pooling="0001", embed_dim=32, depth=1, num_heads=2,
    mlp_ratios=2, timesteps=2,
)  # fmt: skip


class Wrapped(nn.Module):
    """An autost model without its config: scored as a foreign network."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out


def test_autost_model_scores_as_its_config_and_without_it() -> None:
    gen = torch.Generator().manual_seed(0)
    batch = (torch.rand(2, 8, 1, 8, 8, generator=gen) * 2, torch.arange(8) % 10)
    expected = score_all(TINY, ALL, batch=batch, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = autost.create_model(TINY)
    assert score(model, batch, ALL).raw == expected  # the same passes as for the config

    wrapped = score(Wrapped(model), batch, ALL).raw  # no config: counted from the model
    same = ["firing_rate", "sahd", "naswot_hd", "grad_norm", "synflow", "flops", "params"]
    assert {k: wrapped[k] for k in same} == pytest.approx({k: expected[k] for k in same})
    report = ProxyContext(TINY, batch).measured_cost()
    products = [r for r in report.layers if r.kind == "matmul"]  # not modules: left out
    assert products and sum(r.sops for r in products) > 0
    assert wrapped["sops"] == pytest.approx(expected["sops"] - sum(r.sops for r in products))
    energy = expected["energy"] - sum(r.energy_mj for r in products)
    assert wrapped["energy"] == pytest.approx(energy)


# ------------------------------------------------------------------------------ registered


class Spiker(nn.Module):
    """A single-step neuron unknown to autost: returns ``(membrane, spikes)``, keeps state."""

    def __init__(self) -> None:
        super().__init__()
        self.v: Tensor | None = None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        v = x if self.v is None else 0.5 * self.v + x
        spikes = (v >= 1.0).float()
        self.v = v * (1 - spikes)
        return v, spikes

    def clear(self) -> None:
        self.v = None


def test_registered_neuron_class_is_read_through_its_spike_reader() -> None:
    net = Net(Spiker(), Spiker(), False, spikes=lambda out: out[1], reset=Spiker.clear, gain=2.0)
    batch = make_batch()
    with pytest.raises(AutostError, match="no spiking neurons"):
        score(net, batch, ["firing_rate"])
    hand = hand_count(net, batch[0])
    assert all(0.0 < r < 1.0 for r in hand["rates"])
    register_neuron(Spiker)  # the default reader takes out[0]: the membrane, not the spikes
    assert score(net, batch, ["firing_rate"]).raw["firing_rate"] != pytest.approx(
        sum(hand["rates"]) / 2
    )
    register_neuron(Spiker, spikes=lambda out: out[1], multistep=False, reset=Spiker.clear)
    assert [n for n, _ in find_neurons(net)] == ["n1", "n2"]
    scores = score(net, batch, ["firing_rate", "naswot_hd"]).raw
    assert scores["firing_rate"] == pytest.approx(sum(hand["rates"]) / 2, rel=1e-12)
    assert scores["naswot_hd"] == pytest.approx(log_abs_det(hand["kernels"].hamming_kernel()))


class Unknown(nn.Module):
    """A multi-step neuron registered without saying so: its layout is told from B."""

    def forward(self, x: Tensor) -> Tensor:
        return (x > 0.5).float()


def test_layout_told_from_the_batch_size_or_refused_when_ambiguous() -> None:
    register_neuron(Unknown)
    net = Net(Unknown(), Unknown(), True)
    scores = score(net, make_batch(), ["firing_rate", "sahd"]).raw
    assert math.isfinite(scores["sahd"])
    square = make_batch(steps=B)  # T == B: [T, B, ...] or [B, ...]?
    assert score(net, square, ["firing_rate"]).raw["firing_rate"] > 0
    with pytest.raises(AutostError, match="pass multistep= to register_neuron"):
        score(net, square, ["sahd"])


def test_synflow_is_per_sample_whatever_the_layout() -> None:
    net, (x, y) = autost_net(), make_batch(steps=B)  # ambiguous: the whole batch, divided by B
    whole = score(net, (x, y), ["synflow"]).raw["synflow"]
    one = score(net, (x[:, :1], y[:1]), ["synflow"]).raw["synflow"]  # [T, 1, F]: one sample
    assert whole == pytest.approx(one, rel=1e-12) and whole > 0


# ------------------------------------------------------------------------------ bad input


def test_a_model_without_spiking_neurons_is_refused() -> None:
    with pytest.raises(AutostError, match=r"no spiking neurons in Sequential.*register_neuron"):
        score(nn.Sequential(nn.Linear(F, C)), make_batch(), ["firing_rate"])
    with pytest.raises(AutostError, match=r"must be a torch\.nn\.Module"):
        score(TINY, make_batch(), ["params"])  # type: ignore[arg-type]


def test_a_batch_of_the_wrong_shape_is_refused() -> None:
    net, (x, y) = autost_net(), make_batch()
    bad: list[tuple[Any, str]] = [
        ((x, y[:-1]), "does not fit 5 labels"),
        ((x[0, 0], y), "does not fit"),
        ((x, y.float()), "integer class labels"),
        ((x,), "pair of tensors"),
        ((x[..., :-1], y), r"model failed on x of shape \[4, 6, 11\]"),
    ]
    for batch, message in bad:
        with pytest.raises(AutostError, match=message):
            score(net, batch, ["firing_rate"])
    net.forward = lambda x: net.fc1(x)  # type: ignore[method-assign]  # [T, B, H], not logits
    with pytest.raises(AutostError, match=r"logits \[B, classes\] with B = 6, got \[4, 6, 16\]"):
        score(net, (x, y), ["grad_norm"])
    with pytest.raises(AutostError, match="does not fit"):
        ProxyContext(TINY, (torch.rand(2, 8, 1, 8, 8), torch.zeros(5, dtype=torch.long)))


def test_gradient_proxies_on_a_model_without_parameters_are_refused() -> None:
    class Rates(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lif = LIF()

        def forward(self, x: Tensor) -> Tensor:
            out: Tensor = self.lif(x[..., :C] * 3).mean(0)
            return out

    batch = make_batch()
    assert score(Rates(), batch, ["firing_rate"]).raw["firing_rate"] > 0
    for name in ("grad_norm", "synflow"):
        with pytest.raises(AutostError, match=f"{name} needs gradients of conv/linear weights"):
            score(Rates(), batch, [name])


def test_a_proxy_that_needs_a_config_says_so() -> None:
    ctx = ProxyContext.from_model(autost_net(), make_batch())
    assert not ctx.has_config
    with pytest.raises(ConfigRequiredError, match="needs an autost ArchConfig"):
        ctx.config  # noqa: B018
    if "autost_fitness" in list_proxies():
        with pytest.raises(ConfigRequiredError, match="proxy 'autost_fitness' needs"):
            score(autost_net(), make_batch(), ["autost_fitness"])
