"""Proxies: contract over the registry, hand-checked kernels, measured costs, shared work,
rank ensembles and reference pools."""

from __future__ import annotations

import math
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import autost
from autost import ArchConfig
from autost.errors import AutostError, UnknownNameError
from autost.neurons import record_spikes
from autost.proxies import (
    KernelAccumulator,
    ProxyContext,
    ReferencePool,
    get_proxy,
    list_proxies,
    log_abs_det,
    rank_aggregate,
    score_all,
)

TINY = ArchConfig(
    in_channels=1, image_size=8, stem_pooling="0001", embed_dim=32, depth=1, num_heads=2,
    mlp_ratios=2, timesteps=2,
)  # fmt: skip
SHARED = ["firing_rate", "sops", "energy", "sahd", "naswot_hd"]


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    from autost.data import load_dataset

    ds = load_dataset("digits", split="train", timesteps=TINY.timesteps)
    items = [ds[i] for i in range(8)]  # small: LIF inputs stay below the compile threshold
    return torch.stack([x for x, _ in items], dim=1), torch.tensor([y for _, y in items])


# ------------------------------------------------------------------------------ contract


@pytest.mark.parametrize("name", list_proxies())
def test_every_proxy_is_finite_and_deterministic(name: str, batch: Any) -> None:
    proxy = get_proxy(name)
    assert proxy.sign in (1, -1) and proxy.cost and proxy.info()["summary"]
    first = score_all(TINY, [name], batch=batch, seed=3)[name]
    again = ProxyContext(TINY, batch, seed=3).score([name])[name]
    assert math.isfinite(first) and first == again
    if proxy.builds_model:  # another seed, other weights, another value
        assert score_all(TINY, [name], batch=batch, seed=4)[name] != first


def test_unknown_proxy_lists_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="sahd"):
        get_proxy("sahdd")


def test_data_proxies_need_a_batch() -> None:
    with pytest.raises(AutostError, match="sahd"):
        score_all(TINY, ["flops", "sahd"])


def test_data_free_proxies_build_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was built")

    monkeypatch.setattr(autost.model.network, "create_model", fail)
    monkeypatch.setattr(autost.model.network, "SpikingTransformer", fail)
    scores = score_all(TINY, ["flops", "params"])
    table = autost.layer_table(TINY)
    assert scores["flops"] == 2 * sum(r.macs + r.matmul_macs for r in table)
    assert scores["params"] == autost.count_params(TINY)
    with pytest.raises(AssertionError, match="a model was built"):
        score_all(TINY, ["synflow"])


def test_scoring_leaves_the_global_rng_alone(batch: Any) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    score_all(TINY, ["firing_rate", "grad_norm"], batch=batch)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------ kernels


def hand_kernels(layers: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """SNASNet's and Mellor's kernels by explicit loops over pairs of binary codes."""
    batch = layers[0].shape[1]
    sahd, hamming, steps = np.zeros((batch, batch)), np.zeros((batch, batch)), 0
    for codes in layers:  # [T, B, N]
        for x in codes.astype(np.float64):
            steps += 1
            n = x.shape[1]
            for i, j in product(range(batch), repeat=2):
                d = int(np.sum(x[i] != x[j]))
                ri, rj = x[i].mean(), x[j].mean()
                expected = ri * (1 - rj) + (1 - ri) * rj
                sahd[i, j] += n - 0.5 / (expected + 1e-3) * d
                hamming[i, j] += n - d
    return sahd / steps, hamming


def test_kernels_on_hand_made_codes() -> None:
    rng = np.random.default_rng(0)
    layers = [(rng.random((2, 5, n)) < 0.4).astype(np.float32) for n in (7, 12)]
    layers[0][:, 0] = 0  # a silent sample: e(i, j) of two silent codes is 0
    acc = KernelAccumulator()
    for codes in layers:
        acc.add(torch.from_numpy(codes).reshape(2, 5, -1, 1))  # trailing dims are flattened
    sahd, hamming = hand_kernels(layers)
    np.testing.assert_allclose(acc.sahd_kernel(), sahd, rtol=1e-6)  # float32 terms, as SNASNet
    np.testing.assert_array_equal(acc.hamming_kernel(), hamming)  # exact counts
    assert acc.layer_steps == 4
    assert log_abs_det(acc.sahd_kernel()) == pytest.approx(np.log(abs(np.linalg.det(sahd))), 1e-6)
    assert log_abs_det(acc.hamming_kernel()) == pytest.approx(np.log(np.linalg.det(hamming)))


def test_identical_codes_give_a_singular_kernel() -> None:
    acc = KernelAccumulator()
    acc.add(torch.tensor([[[1.0, 0, 1], [1.0, 0, 1], [0.0, 1, 1]]]))  # samples 0 and 1 equal
    assert log_abs_det(acc.hamming_kernel()) == -math.inf


def test_kernel_proxies_equal_the_kernels_of_the_recorded_spikes(batch: Any) -> None:
    ctx = ProxyContext(TINY, batch, seed=0)
    scores = ctx.score(["sahd", "naswot_hd"])
    acc = KernelAccumulator()
    with record_spikes(ctx.model) as spikes, torch.no_grad():
        ctx.model(batch[0])
    for out in spikes.values():
        acc.add(out)
    assert scores["sahd"] == pytest.approx(log_abs_det(acc.sahd_kernel()), rel=1e-12)
    assert scores["naswot_hd"] == pytest.approx(log_abs_det(acc.hamming_kernel()), rel=1e-12)
    rates = ctx.activity().layer_rates
    assert set(rates) == set(spikes)
    for name, out in spikes.items():
        assert rates[name] == pytest.approx(float(out.mean()))


# ------------------------------------------------------------------------------ measured cost


@pytest.mark.parametrize(
    "cfg",
    [TINY, TINY.replace(attention="sdsa", shortcut="membrane", stem="sps-membrane"),
     TINY.replace(attention="semm", mlp="emsp", num_experts=2, tim=False)],
    ids=["ssa", "sdsa-membrane", "semm"],
)  # fmt: skip
def test_sops_and_energy_use_the_measured_rates(cfg: ArchConfig, batch: Any) -> None:
    ctx = ProxyContext(cfg, batch, seed=0)
    scores = ctx.score(["sops", "energy"])
    act = ctx.activity()
    table = autost.layer_table(cfg)
    rates = {}
    for row in table:
        if row.kind in ("conv", "linear"):
            rates[row.name] = act.input_rates[row.name]  # every row was measured
        elif row.kind == "matmul":
            rates[row.name] = act.layer_rates[row.name.replace(".qkv", ".q_lif")]
    report = autost.estimate_cost(cfg, firing_rates=rates)
    assert scores["sops"] == report.sops and scores["energy"] == report.energy_mj
    bound = autost.estimate_cost(cfg)
    assert 0 < scores["sops"] < bound.sops and 0 < scores["energy"] < bound.energy_mj
    # a linear's input rate is the firing rate of the neuron that feeds it
    if cfg.mlp == "mlp":
        assert act.input_rates["blocks.0.mlp.fc2.linear"] == pytest.approx(
            act.layer_rates["blocks.0.mlp.hidden_lif"]
        )


# ------------------------------------------------------------------------------ shared work


def test_shared_forward_pass_runs_once(batch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    forward = autost.SpikingTransformer.forward

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(torch.is_grad_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(autost.SpikingTransformer, "forward", counting)
    ctx = ProxyContext(TINY, batch, seed=0)
    ctx.score(SHARED)
    assert calls == [False]  # one pass, without autograd
    ctx.score(["grad_norm", "synflow"])
    assert len(calls) == 3  # each gradient proxy runs its own pass
    ctx.score(SHARED)
    assert len(calls) == 3  # cached
    assert set(ctx.seconds) >= {"activity", *SHARED, "grad_norm", "synflow"}


def test_gradient_proxies_do_not_change_the_shared_results(batch: Any) -> None:
    alone = score_all(TINY, SHARED, batch=batch)
    after = ProxyContext(TINY, batch)
    after.score(["grad_norm", "synflow"])
    assert after.score(SHARED) == alone


# ------------------------------------------------------------------------------ ensembles


def test_rank_aggregate_orients_averages_ties_and_ranks_non_finite_last() -> None:
    scores = {
        "sahd": [1.0, float("-inf"), 3.0, 3.0],  # +1: -inf last, tie at the top
        "sops": [10.0, 5.0, float("nan"), 1.0],  # -1: fewer is better, NaN last
    }
    out = rank_aggregate(scores, {"sahd": 1.0, "sops": 3.0})
    sahd = np.array([1, 0, 2.5, 2.5]) / 3
    sops = np.array([1, 2, 0, 3]) / 3
    np.testing.assert_allclose(out, (sahd + 3 * sops) / 4)
    assert rank_aggregate({"flops": [7.0]}, {"flops": 1.0}) == [0.5]
    with pytest.raises(AutostError, match="length"):
        rank_aggregate({"flops": [1.0], "params": [1.0, 2.0]}, {"flops": 1, "params": 1})
    with pytest.raises(AutostError, match="> 0"):
        rank_aggregate({"flops": [1.0]}, {"flops": 0.0})
    with pytest.raises(UnknownNameError):
        rank_aggregate({"flop": [1.0]}, {"flop": 1.0})


def test_reference_pool_percentiles_are_stable_and_round_trip(tmp_path: Path) -> None:
    pool = ReferencePool.from_rows(
        [{"sahd": v, "sops": s} for v, s in [(1, 9), (2, 8), (2, 7), (float("-inf"), 1)]],
        ["sahd", "sops"],
        note="test",
    )
    assert pool.percentile("sahd", 2.0) == pytest.approx((2 + 0.5 * 2) / 4)
    assert pool.percentile("sahd", float("-inf")) == pytest.approx(0.5 / 4)
    assert pool.percentile("sahd", float("nan")) == pool.percentile("sahd", float("-inf"))
    assert pool.percentile("sahd", 100.0) == 1.0
    assert pool.percentile("sops", 0.5) == 1.0  # sign -1: fewer ops than every reference
    weights = {"sahd": 1.0, "sops": 1.0}
    candidates = [{"sahd": float(i), "sops": float(10 - i)} for i in range(6)]
    before = [pool.score(c, weights) for c in candidates]
    # scoring does not depend on what else was scored, nor on the order
    assert [pool.score(c, weights) for c in reversed(candidates)] == before[::-1]
    path = tmp_path / "pool.json"
    pool.save(path)
    loaded = ReferencePool.load(path)
    assert loaded == pool and loaded.meta["note"] == "test"
    assert [loaded.score(c, weights) for c in candidates] == before
    assert all(0.0 <= s <= 1.0 for s in before)
    with pytest.raises(AutostError, match="no values for proxy"):
        pool.percentile("flops", 1.0)
    path.write_text('{"values": {"sahd": ["x"]}}')
    with pytest.raises(AutostError, match="not a number"):
        ReferencePool.load(path)
