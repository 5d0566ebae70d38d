"""The memoised cost model equals the per-layer table it summarises."""

from __future__ import annotations

import math

import numpy as np
import pytest

import autost
import autost.model.cost as cost
from autost.model.network import resolve_config
from autost.search.space import SearchSpace

SHIPPED = ["autost-tiny", "autost-small", "autost-base", "spiking-transformer", "digits"]


def _check(cfg: autost.ArchConfig) -> None:
    """Totals from the warm cache == a table computed from scratch for ``cfg`` alone."""
    fast = autost.estimate_cost(cfg)
    fast_names = [r.name for r in fast.layers]
    cost._parts_cache.clear()
    rows = autost.layer_table(cfg)
    per_layer = autost.estimate_cost(cfg, firing_rates=1.0)  # the row-by-row path
    assert fast.params == sum(r.params for r in rows) == autost.count_params(cfg)
    assert fast.macs == sum(r.macs for r in rows) == per_layer.macs
    assert fast.matmul_macs == sum(r.matmul_macs for r in rows) == per_layer.matmul_macs
    assert fast.sops == per_layer.sops
    assert math.isclose(fast.energy_mj, per_layer.energy_mj, rel_tol=1e-12)
    assert fast_names == [r.name for r in rows]


@pytest.mark.parametrize("name", SHIPPED)
def test_cached_totals_equal_the_layer_table(name: str) -> None:
    space = SearchSpace.load(name)
    rng = np.random.default_rng(1)
    configs = [space.sample(rng) for _ in range(300)]
    for cfg in configs:  # fill the cache with parts of many candidates
        autost.estimate_cost(cfg)
    for cfg in configs:
        _check(cfg)
        autost.estimate_cost(configs[int(rng.integers(len(configs)))])  # refill a little


def test_every_preset_after_the_cache_is_cleared_mid_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache clear between (or inside) configs never mixes parts of different settings."""
    monkeypatch.setattr(cost, "_CACHE_LIMIT", 3)
    for name in autost.list_models():
        _check(resolve_config(name))
    monkeypatch.setattr(cost, "_CACHE_LIMIT", 65_536)
    space = SearchSpace.load("spiking-transformer")
    rng = np.random.default_rng(2)
    for _ in range(100):
        _check(space.sample(rng))


def test_layers_are_built_on_demand_and_match_module_names() -> None:
    report = autost.estimate_cost("spikformer-4-384-cifar10")
    assert "layers" not in vars(report)
    names = [r.name for r in report.layers]
    assert names[0] == "stem.convs.0" and names[-1] == "head"
    assert "blocks.3.mlp.fc2.linear" in names
    assert report == autost.estimate_cost("spikformer-4-384-cifar10")
