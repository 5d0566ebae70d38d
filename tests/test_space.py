"""Search spaces: loading, sampling, genetic operators, size, adapters and bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from testkit import ROOT
from torch.utils.flop_counter import FlopCounterMode

import autost
from autost.search.space import Constraint, SearchSpace, list_spaces

SHIPPED = ["autost-base", "autost-small", "autost-tiny", "digits", "spiking-transformer"]


def test_shipped_spaces() -> None:
    assert list_spaces() == SHIPPED
    # every file in the folder loads (its values pass the load-time checks)
    files = sorted((ROOT / "search_spaces").glob("*.toml"))
    assert [SearchSpace.load(f).name for f in files] == SHIPPED


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
    with pytest.raises(
        autost.AutostError,
        match=r"no valid candidate meets the constraints \(params<=10\) after 2000 draws; "
        r"all were rejected by constraint params<=10, e\.g\. params = ",
    ):
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
        # mixed-type choices
        ("[dimensions.depth]\nchoices = [1, 'two']", r"dimensions\.depth: choices mix types"),
        ("[dimensions.tim]\nchoices = [false, 1]", r"tim: choices mix types \(boolean and number"),
        # a fixed value or a choice invalid on its own is refused naming the field
        ("[fixed]\ndepth = 0", r"fixed\.depth: must be a positive integer, got 0"),
        ("[fixed]\nembed_dim = 64.5", r"fixed\.embed_dim: must be a positive integer, got 64\.5"),
        ("[fixed]\nstem = 'spx'", r"fixed\.stem: unknown value 'spx'; did you mean 'sps'"),
        ("[fixed]\nnum_heads = [4, 0]", r"fixed\.num_heads\[1\]: must be a positive integer"),
        ("[fixed]\nneuron = {tau = 0.5}", r"fixed\.neuron\.tau: must be a finite number >= 1"),
        (
            "[dimensions.attention]\nchoices = ['ssa', 'nosuch']\nper_layer = true",
            r"dimensions\.attention: unknown value 'nosuch' \(choices: ssa, sdsa, qk-token, ",
        ),
        (
            "[dimensions.num_heads]\nchoices = [[4, 8]]\nper_layer = true",
            r"dimensions\.num_heads: a per_layer choice is one layer's value, got \[4, 8\]",
        ),
        (
            "[dimensions.embed_dim]\ntype = 'int'\nlow = 0\nhigh = 64\nstep = 32",
            r"dimensions\.embed_dim: must be a positive integer, got 0",
        ),
        (
            "[dimensions.tim_kernel]\ntype = 'int'\nlow = 3\nhigh = 7",
            r"dimensions\.tim_kernel: must be a positive odd integer, got 4",
        ),
        (
            "[dimensions.depth]\ntype = 'float'\nlow = 1\nhigh = 4",
            r"dimensions\.depth: must be a positive integer, got 1\.0",
        ),
        # valid values that no combination can use: the field that rejected the draws
        (
            "[fixed]\nimage_size = 34\nstem_pooling = '0011'",
            r"all were rejected by image_size, e\.g\. image_size: .* 34 is not divisible by it",
        ),
        (
            "[fixed]\nembed_dim = 64\n[dimensions.num_heads]\nchoices = [3, 5]\nper_layer = true",
            r"all were rejected by num_heads, e\.g\. num_heads\[0\]: [35] heads do not divide",
        ),
    ],
)
def test_bad_space_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(autost.AutostError, match=message):
        SearchSpace.load(path)


def test_values_invalid_only_in_combination_load(tmp_path: Path) -> None:
    path = tmp_path / "mixed.toml"
    path.write_text(
        """
[fixed]
in_channels = 1
image_size = 8
depth = 1
[dimensions.embed_dim]
choices = [48, 64]
[dimensions.num_heads]
choices = [3, 4]
per_layer = true
"""
    )
    space = SearchSpace.load(path)  # 3 heads divide 48 only; 4 heads divide both
    pairs = {(c.embed_dim, c.num_heads[0]) for c in space.enumerate()}
    assert pairs == {(48, 3), (48, 4), (64, 4)}


def test_cli_refuses_a_bad_space_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autost.cli import main

    path = tmp_path / "mixed.toml"
    path.write_text("[dimensions.num_heads]\nchoices = [1, 'two']\nper_layer = true\n")
    out = tmp_path / "run"
    assert main(["search", "--space", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "dimensions.num_heads: choices mix types (number and string)" in err


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
def test_cost_model_matches_flop_counter_on_100_candidates(name: str) -> None:
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
    for _ in range(100):
        cfg = space.sample(rng)
        configs.append(cfg.replace(timesteps=2, image_size=2 * cfg.total_stride))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        results = list(pool.map(_counted_flops, configs, chunksize=10))
    for cfg, (counted, estimated) in zip(configs, results, strict=True):
        assert counted == estimated, cfg
