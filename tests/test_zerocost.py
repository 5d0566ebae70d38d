"""Zero-cost proxies for spiking networks (ZiCo, MeCo, jacob_cov, SNIP, Fisher, AutoST's fitness):
registry entries, finite and seeded values, and each one's response to what it measures."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import autost
from autost import ArchConfig
from autost.neurons import LIF
from autost.proxies import (
    AutostFitness,
    ProxyContext,
    get_proxy,
    list_proxies,
    score_all,
    synaptic_weights,
)
from autost.proxies import zerocost as zc
from autost.proxies.probes import channel_axis, input_batch_axis, time_major

TINY = ArchConfig(
    in_channels=1, image_size=8, stem_pooling="0001", embed_dim=32, depth=1, num_heads=2,
    mlp_ratios=2, timesteps=2,
)  # fmt: skip
MODEL_PROXIES = ["zico", "meco", "jacob_cov", "snip", "fisher"]
ZERO_COST = [*MODEL_PROXIES, "autost_fitness"]

Batch = tuple[Tensor, Tensor]


@pytest.fixture(scope="module")
def batch() -> Batch:
    from autost.data import load_dataset

    ds = load_dataset("digits", split="train", timesteps=TINY.timesteps)
    items = [ds[i] for i in range(8)]  # small: LIF inputs stay below the compile threshold
    return torch.stack([x for x, _ in items], dim=1), torch.tensor([y for _, y in items])


def duplicated(batch: Batch) -> Batch:
    """The batch twice over: same BN statistics, every sample's loss share halved."""
    x, y = batch
    return torch.cat([x, x], dim=1), torch.cat([y, y])


def model_context(model: nn.Module, batch: Batch) -> ProxyContext:
    """A context around a hand-made model (a copy: BN on batch statistics, eval mode)."""
    return ProxyContext.from_model(model, batch)


class Toy(nn.Module):
    """``[T, B, F]`` -> linear -> BatchNorm -> LIF -> linear (plus a linear shortcut from the
    LIF's input, ``skip``), logits averaged over T."""

    def __init__(self, features: int = 6, hidden: int = 5, classes: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden, bias=False)
        self.bn = nn.BatchNorm1d(hidden)
        self.lif = LIF(v_threshold=0.5, backend="eager")
        self.fc2 = nn.Linear(hidden, classes)
        self.skip = nn.Linear(hidden, classes, bias=False)

    def drive(self, x: Tensor) -> Tensor:
        steps, batch, _ = x.shape
        return self.bn(self.fc1(x).flatten(0, 1)).reshape(steps, batch, -1)

    def head(self, drive: Tensor, shortcut: Tensor | None = None) -> Tensor:
        shortcut = drive if shortcut is None else shortcut
        return (self.fc2(self.lif(drive)) + self.skip(shortcut)).mean(0)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.drive(x))


def toy_batch(seed: int = 0, steps: int = 3, batch: int = 16) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(steps, batch, 6, generator=gen), torch.randint(0, 3, (batch,), generator=gen)


def toy(seed: int = 0) -> Toy:
    torch.manual_seed(seed)
    return Toy()


# ------------------------------------------------------------------------------ contract


def test_registry_lists_them_with_sign_and_data_needs() -> None:
    names = list_proxies()
    for name in ZERO_COST:
        info = get_proxy(name).info()
        assert name in names and info["sign"] == 1 and info["cost"] and info["summary"]
        assert info["needs_data"] == info["builds_model"] == (name != "autost_fitness")
    assert get_proxy("zico").cost.startswith("own forward + backward")
    assert "no model" in get_proxy("autost_fitness").cost


@pytest.mark.parametrize("name", ZERO_COST)
def test_finite_and_deterministic_given_a_seed(name: str, batch: Batch) -> None:
    first = score_all(TINY, [name], batch=batch, seed=3)[name]
    assert math.isfinite(first) and first == ProxyContext(TINY, batch, seed=3).score([name])[name]
    if name != "autost_fitness":  # other weights, another value
        assert score_all(TINY, [name], batch=batch, seed=4)[name] != first


def test_they_leave_the_model_without_gradients(batch: Batch) -> None:
    ctx = ProxyContext(TINY, batch, seed=0)
    ctx.score(MODEL_PROXIES)
    assert all(p.grad is None for p in ctx.model.parameters())


def test_layouts() -> None:
    assert input_batch_axis(torch.zeros(4, 8, 1, 8, 8), 8) == 1
    assert input_batch_axis(torch.zeros(8, 8, 1, 8, 8), 8) == 1  # T == B: time-major
    assert input_batch_axis(torch.zeros(8, 1, 8, 8), 8) == 0
    assert input_batch_axis(torch.zeros(8, 3, 8, 8), 3) == 1  # [T, B, ...] of 4 dims
    step = time_major(torch.zeros(8, 5), 8)
    assert step is not None and step.shape == (1, 8, 5)
    assert time_major(torch.zeros(2, 3), 8) is None
    assert channel_axis(torch.zeros(2, 8, 12, 4, 4)) == 2  # [T, B, C, H, W]
    assert channel_axis(torch.zeros(2, 8, 16, 32)) == 3  # [T, B, N, D]


# ------------------------------------------------------------------------------ ZiCo


def official_zico(grads: list[list[np.ndarray]]) -> float:
    """SLDGroup/ZiCo's ``caculate_zico`` on per-batch gradients ``[batch][layer]``."""
    score = 0.0
    for layer in zip(*grads, strict=True):
        g = np.array(layer)
        std = np.std(g, axis=0)
        nz = np.nonzero(std)[0]
        total = np.sum(np.mean(np.abs(g), axis=0)[nz] / std[nz])
        if total != 0:
            score += np.log(total)
    return float(score)


def test_zico_matches_the_official_formula(batch: Batch) -> None:
    ctx = ProxyContext(TINY, batch, seed=0)
    model, (x, y) = ctx.model, batch
    grads = []
    for xs, ys in ((x[:, :4], y[:4]), (x[:, 4:], y[4:])):
        model.zero_grad()
        F.cross_entropy(model(xs), ys).backward()
        grads.append([w.grad.reshape(-1).double().numpy() for w in synaptic_weights(model)])
    model.zero_grad(set_to_none=True)
    assert ctx.score(["zico"])["zico"] == pytest.approx(official_zico(grads), rel=1e-6)


def test_zico_is_zero_when_gradients_are_equal_across_mini_batches(batch: Batch) -> None:
    x, y = batch
    halves = (torch.cat([x[:, :4], x[:, :4]], dim=1), torch.cat([y[:4], y[:4]]))
    assert score_all(TINY, ["zico"], batch=batch)["zico"] != 0.0
    assert score_all(TINY, ["zico"], batch=halves)["zico"] == 0.0  # std 0: every layer skipped


# ------------------------------------------------------------------------------ MeCo


class Channels(nn.Module):
    """``[T, B, F]`` -> ``channels`` LIF inputs; ``tied``: all of them one and the same signal."""

    def __init__(self, tied: bool, channels: int = 8, features: int = 6) -> None:
        super().__init__()
        self.fc = nn.Linear(features, 1 if tied else channels)
        self.channels = channels
        self.lif = LIF(backend="eager")

    def forward(self, x: Tensor) -> Tensor:
        drive = self.fc(x).expand(*x.shape[:2], self.channels)
        return self.lif(drive).mean(0)


def test_meco_of_perfectly_correlated_channels_is_zero() -> None:
    data = (
        torch.randn(4, 64, 6, generator=torch.Generator().manual_seed(0)),
        torch.zeros(64).long(),
    )
    tied = get_proxy("meco").compute(model_context(Channels(tied=True), data))
    assert tied == pytest.approx(0.0, abs=1e-9)
    torch.manual_seed(0)
    free = Channels(tied=False, channels=4)  # 4 random mixtures of 6 independent features
    assert get_proxy("meco").compute(model_context(free, data)) > 0.05


def test_meco_is_the_minimum_eigenvalue_of_each_layers_channel_correlation(batch: Batch) -> None:
    ctx = ProxyContext(TINY, batch, seed=0)
    features: dict[str, Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(lambda m, a, n=n: features.__setitem__(n, a[0].detach()))
        for n, m in autost.neurons.neuron_layers(ctx.model)
    ]
    with torch.no_grad():
        ctx.model(batch[0])
    for hook in hooks:
        hook.remove()
    expected = 0.0
    for t in features.values():  # [T, B, C, H, W] or [T, B, N, D]
        rows = t.movedim(2 if t.dim() == 5 else -1, 0).reshape(
            t.shape[2 if t.dim() == 5 else -1], -1
        )
        if rows.shape[0] >= 2:
            corr = torch.corrcoef(rows.double()).nan_to_num(0.0)
            expected += float(torch.linalg.eigvalsh(corr)[0])
    assert ctx.score(["meco"])["meco"] == pytest.approx(expected, rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------------------ jacob_cov


class Linear(nn.Module):
    """Logits linear in the input (a neuron that is never called, to be found)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.idle = LIF()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


def test_jacob_cov_of_identical_jacobian_rows_is_far_lower(batch: Batch) -> None:
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    linear = model_context(Linear(), (x, torch.zeros(8, dtype=torch.long)))  # J_i: W's column sums
    k, b = zc.JACOB_COV_K, 8  # correlation all ones: eigenvalues b, 0, ..., 0
    expected = -((b - 1) * (math.log(k) + 1 / k) + math.log(b + k) + 1 / (b + k))
    assert get_proxy("jacob_cov").compute(linear) == pytest.approx(expected, rel=1e-9)
    assert score_all(TINY, ["jacob_cov"], batch=batch)["jacob_cov"] > expected / 100


def test_jacob_cov_matches_the_v1_formula(batch: Batch) -> None:
    ctx = ProxyContext(TINY, batch, seed=0)
    x = batch[0].clone().requires_grad_(True)
    ctx.model(x).sum().backward()
    jac = x.grad.transpose(0, 1).reshape(8, -1).double().numpy()
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    expected = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    assert ctx.score(["jacob_cov"])["jacob_cov"] == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------ SNIP


def test_snip_is_the_sum_of_weight_times_gradient(batch: Batch) -> None:
    ctx = ProxyContext(TINY, batch, seed=0)
    F.cross_entropy(ctx.model(batch[0]), batch[1]).backward()
    expected = sum(float((w.detach() * w.grad).abs().sum()) for w in synaptic_weights(ctx.model))
    ctx.model.zero_grad(set_to_none=True)
    assert ctx.score(["snip"])["snip"] == pytest.approx(expected, rel=1e-6)
    assert score_all(TINY, ["snip"], batch=duplicated(batch))["snip"] == pytest.approx(
        expected, rel=1e-5
    )  # the same mean loss: the same sensitivities


def test_snip_ignores_rescaling_a_batch_normalised_layer() -> None:
    model, data = toy(), toy_batch()
    before = get_proxy("snip").compute(model_context(model, data))
    with torch.no_grad():
        model.fc1.weight.mul_(10.0)  # BN undoes it: w * dL/dw unchanged, dL/dw / 10
    assert get_proxy("snip").compute(model_context(model, data)) == pytest.approx(before, rel=1e-4)
    with torch.no_grad():
        model.fc2.weight.zero_()  # no path from any weight to the loss
        model.skip.weight.zero_()
    assert get_proxy("snip").compute(model_context(model, data)) == 0.0


# ------------------------------------------------------------------------------ Fisher


def test_fisher_matches_a_hand_computation() -> None:
    model, (x, y) = toy(), toy_batch()
    drive = model.drive(x).detach().requires_grad_(True)  # [T, B, C]: the LIF's input
    logits = model.head(drive, shortcut=drive.detach())  # dL/da through the LIF only
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), [drive])
    per_channel = (drive.detach() * grad).sum(dim=0)  # [B, C]: summed over timesteps
    expected = float(0.5 * per_channel.pow(2).mean(dim=0).sum())
    got = get_proxy("fisher").compute(model_context(model, (x, y)))
    assert expected > 0 and got == pytest.approx(expected, rel=1e-5)


def test_fisher_quarters_on_a_duplicated_batch(batch: Batch) -> None:
    once = score_all(TINY, ["fisher"], batch=batch)["fisher"]
    twice = score_all(TINY, ["fisher"], batch=duplicated(batch))["fisher"]
    assert once > 0 and twice == pytest.approx(once / 4, rel=1e-4)  # dL/da per sample halves


# ------------------------------------------------------------------------------ AutoST


class FitnessWithNaswot(AutostFitness):
    name = "autost_fitness_ld2"
    ld = 2.0


def test_autost_fitness_as_released_is_gflops_without_a_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was built")

    monkeypatch.setattr(autost.model.network, "create_model", fail)
    flops = autost.estimate_cost(TINY).flops
    assert score_all(TINY, ["autost_fitness"])["autost_fitness"] == pytest.approx(flops / 1e9)


def test_autost_fitness_with_ld_adds_ld_over_naswot(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit = FitnessWithNaswot()
    assert fit.needs_data and fit.builds_model and fit.shares == {"activity", "kernels"}
    ctx = ProxyContext(TINY, batch, seed=0)
    naswot = ctx.score(["naswot_hd"])["naswot_hd"]
    gflops = autost.estimate_cost(TINY).flops / 1e9
    assert fit.compute(ctx) == pytest.approx(gflops + 2.0 / naswot, rel=1e-12)
    monkeypatch.setattr(zc, "log_abs_det", lambda k: 0.0)
    assert fit.compute(ctx) == math.inf  # as numpy divides: 2 / 0 = +inf
    monkeypatch.setattr(zc, "log_abs_det", lambda k: -math.inf)  # a singular kernel
    assert fit.compute(ctx) == pytest.approx(gflops)


# ------------------------------------------------------------------------------ foreign networks


class JellyNet(nn.Module):
    """linear -> SpikingJelly LIF -> linear over ``x [T, B, F]``, multi- or single-step."""

    def __init__(self, multistep: bool) -> None:
        super().__init__()
        neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
        self.fc1, self.fc2 = nn.Linear(6, 4), nn.Linear(4, 3)  # 4 channels of 6 features
        self.lif = neuron.LIFNode(step_mode="m" if multistep else "s")
        self.multistep = multistep

    def forward(self, x: Tensor) -> Tensor:
        if self.multistep:
            return self.fc2(self.lif(self.fc1(x) * 2)).mean(0)
        return torch.stack([self.fc2(self.lif(self.fc1(xt) * 2)) for xt in x]).mean(0)


def test_foreign_neurons_in_either_step_mode_give_the_same_values() -> None:
    data = toy_batch(steps=4, batch=10)
    values = {}
    for multistep in (True, False):
        torch.manual_seed(0)
        net = JellyNet(multistep)
        values[multistep] = autost.proxies.score(net, data, MODEL_PROXIES).raw
    for name in MODEL_PROXIES:  # every call of a single-step neuron is one timestep
        assert math.isfinite(values[True][name])
        assert values[False][name] == pytest.approx(values[True][name], rel=1e-5, abs=1e-9)
    assert values[True]["fisher"] > 0 and values[True]["meco"] > 0.01
