"""Evaluator recipes: shipped files, batches, scores, reference pools and recipe errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import autost
from autost import ArchConfig
from autost.errors import AutostError
from autost.proxies import ReferencePool, get_proxy, list_proxies
from autost.search.evaluator import Evaluator, list_evaluators

DIGITS = dict(in_channels=1, image_size=8, stem_pooling="0001", num_heads=2, mlp_ratios=2)
TINY = ArchConfig(embed_dim=32, depth=1, timesteps=2, **DIGITS)  # type: ignore[arg-type]
POOL = [
    ArchConfig(embed_dim=d, depth=n, timesteps=2, **DIGITS)  # type: ignore[arg-type]
    for d, n in [(32, 1), (32, 2), (32, 3)]  # small: no LIF input reaches the compile threshold
]


def recipe(**tables: Any) -> dict[str, Any]:
    return {"proxies": {"flops": 1.0}, **tables}


def test_shipped_recipes_load() -> None:
    names = list_evaluators()
    assert {"flops", "params", "zero-cost"} <= set(names)
    for name in names:
        evaluator = Evaluator.load(name)
        assert evaluator.name == name
        if evaluator.kind == "short-training":  # trains its candidates: no proxies
            continue
        assert evaluator.proxies
        assert evaluator.needs_data == any(get_proxy(p).needs_data for p in evaluator.proxies)
    assert not Evaluator.load("flops").needs_data
    zero = Evaluator.load("zero-cost")
    assert zero.weights == {"sahd": 1.0, "flops": 1.0}  # chosen in benchmarks/ranking.py
    assert zero.needs_data and zero.is_ensemble and zero.dataset == "digits"
    # every data-free proxy and every data proxy has a recipe of its own
    assert set(list_proxies()) <= set(names)


def test_flops_recipe_builds_no_model_and_reads_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was built or data was read")

    monkeypatch.setattr(autost.model.network, "create_model", fail)
    monkeypatch.setattr("autost.data.load_dataset", fail)
    scores = Evaluator.load("flops").score(TINY)
    expected = 2 * sum(r.macs + r.matmul_macs for r in autost.layer_table(TINY))
    assert scores == {"flops": expected, "score": expected}
    params = Evaluator.load("params").score(TINY)
    assert params["score"] == autost.count_params(TINY)


def test_batch_is_fixed_seeded_and_cached_per_timesteps() -> None:
    evaluator = Evaluator.from_dict(recipe(data={"batch_size": 12, "seed": 3}))
    x2, y2 = evaluator.batch(TINY)
    assert x2.shape == (2, 12, 1, 8, 8) and y2.shape == (12,) and y2.dtype == torch.long
    assert evaluator.batch(TINY)[0] is x2  # cached
    x4, y4 = evaluator.batch(TINY.replace(timesteps=4))
    assert x4.shape[0] == 4 and torch.equal(y4, y2)  # the same samples for every T
    assert torch.equal(
        Evaluator.from_dict(recipe(data={"batch_size": 12, "seed": 3})).batch(TINY)[0], x2
    )
    other = Evaluator.from_dict(recipe(data={"batch_size": 12, "seed": 4})).batch(TINY)[1]
    assert not torch.equal(other, y2)


def test_batch_shape_mismatch_is_a_clear_error() -> None:
    cifar = ArchConfig(embed_dim=32, depth=1, num_heads=2)
    with pytest.raises(AutostError, match=r"expects \[3, 32, 32\]"):
        Evaluator.load("sahd").batch(cifar)


def test_single_data_proxy_score_is_its_oriented_value() -> None:
    sops = Evaluator.from_dict({"proxies": {"sops": 2.0}, "data": {"batch_size": 8}})
    scores = sops.score(TINY)
    assert scores["score"] == -scores["sops"] < 0
    assert sops.score(TINY) == scores  # deterministic


def test_ensemble_uses_a_fixed_reference_pool(tmp_path: Path) -> None:
    data = {
        "proxies": {"sahd": 1.0, "flops": 2.0},
        "data": {"batch_size": 8},
        "reference": {"size": 3},
    }
    evaluator = Evaluator.from_dict(data)
    with pytest.raises(AutostError, match="reference pool"):
        evaluator.score(TINY)
    pool = evaluator.fit_reference(POOL)
    assert pool.size == 3 and set(pool.values) == {"sahd", "flops"}
    first = evaluator.score(TINY)
    assert 0.0 <= first["score"] <= 1.0
    expected = (
        pool.percentile("sahd", first["sahd"]) + 2 * pool.percentile("flops", first["flops"])
    ) / 3
    assert first["score"] == pytest.approx(expected)
    evaluator.score(POOL[2])  # scoring others changes nothing
    assert evaluator.score(TINY) == first
    pool.save(tmp_path / "pool.json")
    resumed = Evaluator.from_dict(data)
    resumed.set_reference(tmp_path / "pool.json")
    assert resumed.score(TINY) == first
    with pytest.raises(AutostError, match="lacks proxies"):
        Evaluator.from_dict({**data, "proxies": {"params": 1, "flops": 1}}).set_reference(pool)


def test_ensemble_draws_its_pool_from_the_recipe_space() -> None:
    data = {
        "proxies": {"flops": 1.0, "params": 1.0},
        "reference": {"size": 5, "space": "digits", "seed": 1},
    }
    a, b = Evaluator.from_dict(data), Evaluator.from_dict(data)
    assert a.score(TINY) == b.score(TINY)  # the same pool in every process
    assert a.reference is not None and a.reference.size == 5
    assert a.reference.to_dict() == b.reference.to_dict()  # type: ignore[union-attr]
    assert ReferencePool.from_dict(a.reference.to_dict()) == a.reference


def test_with_dataset_copies_the_recipe() -> None:
    zero = Evaluator.load("zero-cost")
    moved = zero.with_dataset("mnist", root="/nowhere")
    assert moved.dataset == "mnist" and moved.root == "/nowhere" and moved.name == "zero-cost"
    assert moved.weights == zero.weights and zero.dataset == "digits"
    assert zero.reference_space == "digits" and moved.reference_space is None
    with pytest.raises(AutostError, match=r"data\.dataset"):
        zero.with_dataset("cifar11")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[proxies\nflops = 1", "malformed TOML"),
        ("description = 'x'", "proxies"),
        ("[proxies]", "proxies"),
        ("[proxies]\nsahdd = 1.0", "proxies.sahdd: unknown proxy 'sahdd'; close matches: sahd"),
        ("[proxies]\nflops = 0", "proxies.flops: weight must be finite and > 0"),
        ("[proxies]\nflops = -1.5", "proxies.flops: weight must be finite and > 0"),
        ("[proxies]\nflops = nan", "proxies.flops: weight must be finite and > 0"),
        ("[proxies]\nflops = inf", "proxies.flops: weight must be finite and > 0"),
        ("[proxies]\nflops = true", "proxies.flops: weight must be a number"),
        ("[proxies]\nflops = 'high'", "proxies.flops: weight must be a number"),
        ("seeed = 1\n[proxies]\nflops = 1", "seeed: unknown key; did you mean 'seed'?"),
        ("[proxies]\nsahd = 1\n[data]\nbatch_size = 0", "data.batch_size: must be an integer >= 1"),
        ("[proxies]\nsahd = 1\n[data]\ndataset = 'cifar11'", "data.dataset: unknown dataset"),
        ("[proxies]\nsahd = 1\n[data]\nbatch = 8", "data.batch: unknown key"),
        ("[proxies]\nflops = 1\n[reference]\nsize = -2", "reference.size: must be an integer"),
        ("[proxies]\nsahd = 1\n[data]\nmax_timesteps = -1", "data.max_timesteps: must be an"),
        ("[proxies]\nsahd = 1\n[data]\nmax_timesteps = 1.5", "data.max_timesteps: must be an"),
    ],
)
def test_recipe_errors_name_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(AutostError) as info:
        Evaluator.load(path)
    assert str(path) in str(info.value) and key in str(info.value)


def test_unknown_recipe_name_lists_close_matches() -> None:
    with pytest.raises(AutostError, match="zero-cost"):
        Evaluator.load("zero-cots")
    with pytest.raises(AutostError, match="cannot read"):
        Evaluator.load("/no/such/recipe.toml")


def test_max_timesteps_caps_the_data_proxies_only() -> None:
    capped = Evaluator.from_dict(
        {"proxies": {"sahd": 1.0, "flops": 1.0}, "data": {"batch_size": 8, "max_timesteps": 2}}
    )
    plain = Evaluator.from_dict({"proxies": {"sahd": 1.0, "flops": 1.0}, "data": {"batch_size": 8}})
    long = TINY.replace(timesteps=4)
    raw = capped.raw_scores(long)
    assert capped.data_config(long).timesteps == 2 and capped.data_config(TINY) is TINY
    # sahd on the candidate at T = 2 (its batch encoded for 2 steps), FLOPs on it whole
    assert raw["sahd"] == plain.raw_scores(TINY)["sahd"]
    assert raw["flops"] == plain.raw_scores(long)["flops"] > plain.raw_scores(TINY)["flops"]
    assert raw["sahd"] != plain.raw_scores(long)["sahd"]
    assert list(raw) == ["sahd", "flops"]
    assert capped.raw_scores(TINY) == plain.raw_scores(TINY)  # within the cap: unchanged
    assert capped.to_dict()["data"]["max_timesteps"] == 2
    assert Evaluator.from_dict(capped.to_dict()).max_timesteps == 2
    assert "max_timesteps" not in plain.to_dict()["data"]  # older recipes keep their dict
    assert capped.with_dataset("digits").max_timesteps == 2


def test_shipped_default_scores_at_the_benchmarked_setting() -> None:
    """evaluators/zero-cost.toml scores at the setting benchmarks/scoring_cost.py chose (the
    cheapest whose tau stays inside the batch-64 intervals on every ground truth and seed)."""
    result = json.loads(
        (Path(__file__).parents[1] / "benchmarks/results/scoring_cost.json").read_text()
    )
    zero = Evaluator.load("zero-cost")
    assert (zero.batch_size, zero.max_timesteps) == (16, 2)
    assert result["decision"]["chosen"] == result["decision"]["shipped"] == "b16-T2"
    verdict = result["verdict"]["b16-T2"]
    assert verdict["ground_truths"] == 13 and not verdict["tau_outside_todays_interval"]
    seconds = result["decision"]["chosen_seconds"]["2"]
    assert seconds <= result["decision"]["target_seconds_2_threads"]


def test_recipe_round_trips_through_to_dict() -> None:
    zero = Evaluator.load("zero-cost")
    again = Evaluator.from_dict(zero.to_dict())
    assert again.to_dict() == zero.to_dict()
    assert not math.isnan(again.weights["sahd"])


def test_describe_score_says_what_score_is() -> None:
    zero = Evaluator.load("zero-cost").describe_score()
    assert zero.startswith("score: zero-cost rank ensemble of sahd, flops")
    assert "percentile among 64 reference candidates" in zero and "higher is better" in zero
    weighted = Evaluator.from_dict({"proxies": {"sahd": 1.0, "flops": 2.0}}).describe_score()
    assert "sahd x1, flops x2" in weighted and "weighted mean percentile" in weighted
    flops = Evaluator.load("flops").describe_score()
    assert flops.startswith("score: flops (") and flops.endswith("; higher is better")
    sops = Evaluator.load("sops").describe_score()
    assert sops.startswith("score: -sops (") and "lower is better), so higher is better" in sops


def test_fit_reference_shows_a_progress_bar_unless_told_not_to(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = {"proxies": {"flops": 1.0, "params": 1.0}}
    Evaluator.from_dict(data).fit_reference(POOL, progress=True)
    err = capsys.readouterr().err
    assert "reference pool" in err and "3/3" in err
    Evaluator.from_dict(data).fit_reference(POOL)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ short-training evaluators


def short(**training: Any) -> dict[str, Any]:
    return {"kind": "short-training", "training": {"steps": 4, **training}}


def test_short_training_recipes_ship_and_round_trip() -> None:
    from autost.search.short_evaluator import ShortTrainingEvaluator

    epoch, drop = Evaluator.load("short-1epoch"), Evaluator.load("loss-drop")
    assert isinstance(epoch, ShortTrainingEvaluator) and isinstance(drop, ShortTrainingEvaluator)
    assert (epoch.epochs, epoch.steps, epoch.metric) == (1, None, "val_acc")
    assert (drop.steps, drop.metric) == (20, "loss_drop")
    for evaluator in (epoch, drop):
        assert evaluator.proxies == [] and not evaluator.is_ensemble and evaluator.needs_data
        assert Evaluator.from_dict(evaluator.to_dict()).to_dict() == evaluator.to_dict()
        assert evaluator.describe_score().endswith("higher is better")
        with pytest.raises(AutostError, match="no reference pool"):
            evaluator.fit_reference(POOL)
    moved = drop.with_dataset("digits", None, seed=1)
    assert moved.options == {"seed": 1} and moved.name == "loss-drop"
    assert isinstance(moved, ShortTrainingEvaluator) and moved.steps == 20


@pytest.mark.slow
def test_short_training_scores_are_finite_and_deterministic() -> None:
    for name in ("short-1epoch", "loss-drop"):
        scores = Evaluator.load(name).score(TINY)
        assert math.isfinite(scores["score"]) and scores["train_steps"] == 20
        assert Evaluator.load(name).score(TINY) == scores  # a new evaluator, the same numbers
    epoch = Evaluator.load("short-1epoch").score(TINY)
    assert epoch["score"] == epoch["val_acc"] and 0.0 <= epoch["val_acc"] <= 1.0
    assert "val_acc" not in Evaluator.load("loss-drop").score(TINY)  # no validation pass
    other = Evaluator.from_dict({**short(steps=20, metric="loss_drop"), "seed": 1}).score(TINY)
    assert other["score"] != Evaluator.load("loss-drop").score(TINY)["score"]


def test_loss_drop_is_positive_when_the_task_is_learnable() -> None:
    scores = Evaluator.from_dict(short(steps=30, metric="loss_drop", lr=5e-3)).score(TINY)
    assert scores["score"] == scores["loss_drop"] > 0.05


def test_short_training_runs_in_a_search(tmp_path: Path) -> None:
    recipe = tmp_path / "quick.toml"
    recipe.write_text(
        'kind = "short-training"\n[training]\nsteps = 2\nbatch_size = 16\nmetric = "loss_drop"\n'
    )
    # dataset options make the run write its recipe as JSON for the workers: read back here
    result = autost.search(
        "digits", recipe, budget=2, out=tmp_path / "run", progress=False,
        dataset_options={"seed": 1},
    )  # fmt: skip
    assert len(result.leaderboard) == 2
    assert all(math.isfinite(c.score) and "loss_drop" in c.scores for c in result.leaderboard)
    assert "loss drop" in result.score_meaning
    saved = json.loads((tmp_path / "run" / "evaluator.json").read_text())
    assert saved["kind"] == "short-training" and saved["data"]["options"] == {"seed": 1}


def test_short_training_refuses_a_dataset_that_does_not_fit() -> None:
    cifar = ArchConfig(embed_dim=32, depth=1, num_heads=2)
    with pytest.raises(AutostError, match=r"expects 3 at 32x32"):
        Evaluator.from_dict(short()).score(cifar)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('kind = "short-trainig"', "kind: unknown kind 'short-trainig'"),
        ('kind = "short-training"', "training: give exactly one of steps"),
        ('kind = "short-training"\n[training]\nsteps = 2\nepochs = 1', "exactly one of steps"),
        ('kind = "short-training"\n[training]\nsteps = 0', "training.steps: must be an integer"),
        ('kind = "short-training"\n[training]\nepochs = 1.5', "training.epochs: must be an"),
        ('kind = "short-training"\n[training]\nsteps = 2\nlr = -1', "training.lr: must be finite"),
        ('kind = "short-training"\n[training]\nsteps = 2\nlr = nan', "training.lr: must be finite"),
        ('kind = "short-training"\n[training]\nsteps = 2\nlr = "x"', "training.lr: must be a num"),
        ('kind = "short-training"\n[training]\nsteps = 2\nmetric = "acc"', "training.metric"),
        ('kind = "short-training"\n[training]\nsteps = 2\ndevice = "tpu"', "training.device"),
        ('kind = "short-training"\n[training]\nsteps = 2\nbatch_size = 0', "training.batch_size"),
        ('kind = "short-training"\n[training]\nstepz = 2', "training.stepz: unknown key"),
        ('kind = "short-training"\n[training]\nsteps = 2\n[data]\nsplit = "val"', "data.split"),
        ('kind = "short-training"\n[training]\nsteps = 2\n[data]\ndataset = "x"', "data.dataset"),
        ('kind = "short-training"\n[proxies]\nflops = 1', "proxies: unknown key"),
    ],
)
def test_short_training_recipe_errors_are_one_line(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(AutostError) as info:
        Evaluator.load(path)
    message = str(info.value)
    assert str(path) in message and key in message and "\n" not in message


def test_describe_score_states_the_tie_break_order() -> None:
    zero = Evaluator.load("zero-cost").describe_score()
    assert zero.endswith(
        "equal scores are ordered by sahd, then flops (the better raw value first), "
        "then by candidate key"
    )
    heavier = Evaluator.from_dict({"proxies": {"sahd": 1.0, "flops": 2.0, "sops": 2.0}})
    assert "ordered by flops, then sops, then sahd (" in heavier.describe_score()
    assert "ordered by" not in Evaluator.load("flops").describe_score()  # unchanged for one
