"""Search spaces: loading, sampling, genetic operators, size, adapters and bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import autost
from autost.space import Constraint, SearchSpace, list_spaces

SHIPPED = ["autost-base", "autost-small", "autost-tiny", "digits", "spiking-transformer"]


def test_shipped_spaces() -> None:
    assert list_spaces() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_samples_are_valid_members(name: str) -> None:
    space = SearchSpace.load(name)
    configs = [space.sample(i) for i in range(50)]
    assert all(space.contains(c) for c in configs)
    assert space.sample(7) == space.sample(7)
    rng = np.random.default_rng(0)
    for a, b in itertools.pairwise(configs):
        assert space.contains(space.mutate(a, rng))
        assert space.contains(space.crossover(a, b, rng))
        assert space.from_params(space.to_params(a)) == a


def test_autost_small_matches_the_paper() -> None:
    space = SearchSpace.load("autost-small")
    dims = space.dimensions
    assert dims["embed_dim"].values() == (256, 320, 384, 448, 512)
    assert dims["depth"].values() == tuple(range(2, 13))
    assert dims["mlp_ratios"].values() == (3, 4, 5) and dims["mlp_ratios"].per_layer
    assert dims["num_heads"].values() == (4, 8) and dims["num_heads"].per_layer
    cfg = space.sample(3)
    assert len(cfg.num_heads) == cfg.depth == len(cfg.mlp_ratios)
    assert (cfg.image_size, cfg.timesteps, cfg.in_channels) == (32, 4, 3)
    # size: 5 widths x sum over depths d of (3*2)^d
    assert space.size() == 5 * sum(6**d for d in range(2, 13))


def test_enumerate_small_space(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(
        """
[fixed]
in_channels = 1
image_size = 8
stem_pooling = "0001"
[dimensions.embed_dim]
choices = [32, 64]
[dimensions.depth]
type = "int"
low = 1
high = 2
[dimensions.num_heads]
choices = [1, 3]
per_layer = true
"""
    )
    space = SearchSpace.load(path)
    assert space.size() == 2 * (2 + 4)
    configs = list(space.enumerate())
    # 3 heads divide neither 32 nor 64: only all-1-head settings are valid
    assert len(configs) == 2 * 2
    assert all(set(c.num_heads) == {1} for c in configs)


def test_constraints_are_analytic_and_enforced() -> None:
    space = SearchSpace.load("autost-small").with_constraints(["params>=11e6", "params <= 12e6"])
    for i in range(10):
        cfg = space.sample(i)
        assert 11e6 <= autost.count_params(cfg) <= 12e6
    with pytest.raises(autost.AutostError, match="no valid candidate"):
        SearchSpace.load("digits").with_constraints(["params<=10"]).sample(0)


@pytest.mark.parametrize(
    "text",
    ["param<=1", "params<<1", "params<=abc", "energy_mj"],
)
def test_bad_constraints(text: str) -> None:
    with pytest.raises(autost.AutostError, match="bad constraint"):
        Constraint.parse(text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[dimensions.depth\nchoices=[1]", "malformed TOML"),
        ("[dimensions.depth]\nchoices = []", "non-empty list"),
        ("[dimensions.depth]\ntype = 'int'\nlow = 5\nhigh = 2", "empty range"),
        ("[dimensions.embed_dims]\nchoices = [64]", "not an ArchConfig field"),
        ("[dimensions.embed_dim]\nchoices = [64]\nper_layer = true", "per_layer"),
        ("[dimensions.depth]\ntype = 'log'", "'type'"),
        ("constraints = 'params<1'", "list of strings"),
    ],
)
def test_bad_space_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(autost.AutostError, match=message):
        SearchSpace.load(path)


def test_unknown_space_name_suggests() -> None:
    with pytest.raises(autost.AutostError, match="autost-small"):
        SearchSpace.load("autost-smal")


def test_optuna_and_ray_adapters() -> None:
    space = SearchSpace.load("digits")
    dists = space.optuna_distributions()
    assert set(dists) == set(space.param_names())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        cfg = space.build(space.suggest(trial))
        assert cfg is None or space.contains(cfg)
        study.tell(trial, 0.0)
    params = space.ray_param_space()
    assert set(params) == set(dists)


def _counted_flops(cfg: autost.ArchConfig) -> tuple[int, int]:
    """(FlopCounterMode's FLOPs of one forward pass, estimate_cost's FLOPs) of ``cfg``."""
    torch.set_num_threads(1)
    with torch.device("meta"):
        model = autost.create_model(cfg)
    # uninitialised CPU storage: no init cost, and real kernels count faster than meta ones
    model = model.to_empty(device="cpu")
    x = torch.rand(1, cfg.in_channels, cfg.image_size, cfg.image_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops(), autost.estimate_cost(cfg).flops


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_cost_model_matches_flop_counter_on_200_candidates(name: str) -> None:
    """estimate_cost's conv/linear/matmul FLOPs equal FlopCounterMode's on the built model.

    Full-width candidates are built on the meta device, then given uninitialised CPU storage
    (values do not matter to a FLOP count); T and the image are cut to the smallest sizes the
    candidate accepts, since the formulas are linear in both and only the operator count makes
    the counter slow. Two processes share the candidates.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    space = SearchSpace.load(name)
    rng = np.random.default_rng(0)
    configs = []
    for _ in range(200):
        cfg = space.sample(rng)
        configs.append(cfg.replace(timesteps=2, image_size=2 * cfg.total_stride))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        results = list(pool.map(_counted_flops, configs, chunksize=10))
    for cfg, (counted, estimated) in zip(configs, results, strict=True):
        assert counted == estimated, cfg
