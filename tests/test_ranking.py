"""The ranking benchmark's code path, in its tiny form (4 architectures per pool, 1 epoch,
digits: the open pool and one budget band), and its figures on known inputs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from autost.proxies import list_proxies

ROOT = Path(__file__).resolve().parents[1]


def ranking_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ranking", ROOT / "benchmarks" / "ranking.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_top1_and_top5_regret_follow_the_proxy_picks() -> None:
    ranking = ranking_module()
    accs = [0.50, 0.90, 0.60, 0.70, 0.80, 0.95, 0.55]
    table = {
        "perfect": accs,
        "reversed": [-a for a in accs],
        "broken": [float("nan")] * 7,  # a proxy that failed everywhere is ranked last
    }
    stats = ranking.correlations(table, accs, np.random.default_rng(0))
    assert stats["perfect"]["tau"] == pytest.approx(1.0) and stats["perfect"]["top1"] == 1.0
    assert stats["perfect"]["top5_regret"] == 0.0
    # the reversed proxy's top-5 are the five worst: best among them 0.80, best overall 0.95
    assert stats["reversed"]["top1"] == pytest.approx(0.50 / 0.95)
    assert stats["reversed"]["top5_regret"] == pytest.approx(0.95 - 0.80)
    assert stats["broken"]["tau"] is None
    low, high = stats["perfect"]["tau_ci"]
    assert low <= high


def _result(taus: dict[str, float], top1: float, gain: float, ci: list[float]) -> dict:
    """One pool and dataset as ranking.json keys it: every name's tau, the default's gain."""
    return {
        "kendall_tau": taus,
        "kendall_tau_ci95": {n: [t - 0.1, t + 0.1] for n, t in taus.items()},
        "minus_flops_tau": {"ensemble": gain},
        "minus_flops_tau_ci95": {"ensemble": ci},
        "top1_relative_accuracy": {n: top1 for n in taus},
    }


def _verdict_report(mnist_gain_ci: list[float], level_top1: float) -> dict:
    """Digits and MNIST params bands whose seeds agree, an MNIST band whose seeds disagree, and
    SpikeNAS-Bench with one FLOPs level; the default is `ensemble` (`zero-cost (x)` there)."""
    agree = {"kendall_tau": 0.5, "kendall_tau_ci95": [0.2, 0.7]}
    disagree = {"kendall_tau": 0.0, "kendall_tau_ci95": [-0.2, 0.2]}
    digits = _result(
        {"ensemble": 0.6, "flops": 0.3, "meco": 0.1, "short": 0.5}, 0.995, 0.3, [0.1, 0.5]
    )
    mnist = _result(
        {"ensemble": 0.4, "flops": 0.3, "meco": 0.5, "short": 0.4}, 0.999, 0.1, mnist_gain_ci
    )
    noisy = _result({"ensemble": -0.5, "flops": 0.3, "meco": 0.9}, 0.9, -0.8, [-1.0, -0.6])
    level = {
        "kendall_tau": 0.3,
        "kendall_tau_ci95": [0.1, 0.5],
        "top1_relative_accuracy": level_top1,
    }
    return {
        "datasets": {"digits": _result({"ensemble": 0.7}, 1.0, -0.1, [-0.2, 0.0])},
        "pools": {
            "p": {
                "datasets": {
                    "digits": {**digits, "seed_to_seed": agree},
                    "mnist": {**mnist, "seed_to_seed": agree},
                }
            },
            "f": {"datasets": {"mnist": {**noisy, "seed_to_seed": disagree}}},
        },
        "spikenas": {
            "default": "zero-cost (x)",
            "whole_sample": {
                "zero-cost (x)": {
                    **level,
                    "n": 90,
                    "minus_flops_tau": 0.2,
                    "minus_flops_tau_ci95": [0.15, 0.25],
                    "top1_relative_accuracy": 0.995,
                },
                "meco": {
                    **level,
                    "n": 90,
                    "kendall_tau": 0.25,
                    "minus_flops_tau": 0.15,
                    "minus_flops_tau_ci95": [0.05, 0.2],
                    "top1_relative_accuracy": 0.999,
                },
            },
            "flops_levels": {
                "1M": {
                    "n": 9,
                    "default": level,
                    "proxies": {"zero-cost (x)": level, "meco": {**level, "kendall_tau": 0.5}},
                }
            },
        },
    }


def test_verdict_weighs_only_ground_truths_that_can_rank() -> None:
    ranking_module()  # puts benchmarks/ on sys.path
    from ranking_verdict import verdict, verdict_markdown

    v = verdict(_verdict_report(mnist_gain_ci=[-0.1, 0.3], level_top1=0.98))
    rows = {r["ground_truth"]: r for r in v["rows"]}
    assert not rows["`f` band, mnist"]["reliable"]  # its seeds disagree: left out of the ranking
    assert (
        rows["`p` band, digits"]["tau_target"] == "met" == rows["`p` band, digits"]["top1_target"]
    )
    assert rows["`p` band, mnist"]["tau_target"] == "NOT met"  # interval of the gain includes 0
    # inside one FLOPs level the gain over FLOPs is the default's own tau (FLOPs is constant)
    level = rows["SpikeNAS-Bench, FLOPs level 1M (9 cells)"]
    assert level["tau_target"] == "met" and level["top1_target"] == "NOT met"
    assert not v["met"]
    inside = "SpikeNAS-Bench, inside its FLOPs levels (mean over 1)"
    whole = "SpikeNAS-Bench, 90 cells (CIFAR-10)"
    assert v["columns"] == ["`p` band, digits", "`p` band, mnist", whole, inside]
    assert v["held_out"] == v["columns"][1:]  # digits chose the default
    # held out: ensemble (0.4 + 0.3 + 0.3) / 3, meco (0.5 + 0.25 + 0.5) / 3, flops (0.3 + n/a)
    assert v["proxies"]["ensemble"]["held_out_mean_tau"] == pytest.approx(1.0 / 3)
    assert v["proxies"]["meco"]["held_out_mean_tau"] == pytest.approx(1.25 / 3)
    assert v["proxies"]["flops"]["kendall_tau"][inside] == 0.0  # constant inside a level
    assert v["best_held_out"] == "meco"
    assert v["proxies"]["short"]["held_out_mean_tau"] is None  # not scored on SpikeNAS-Bench
    # not everywhere: flops (not in the whole SpikeNAS sample; 0.3 on mnist, below the default),
    # params (0 inside the level) and short (0.4 on mnist, a tie: not above it)
    assert v["default_above_partial"] == {"flops": True, "params": True, "short": False}
    assert v["meet_target_everywhere"] == []
    assert v["meet_target"][whole] == ["ensemble", "meco"]  # gains 0.2 and 0.15, top-1 >= 0.99
    text = "\n".join(verdict_markdown(v))
    assert "Overall verdict (the target asks for all of them): NOT met" in text
    assert (
        "(seeds disagree)" in text and "| short | +0.500 | +0.400 | n/a | n/a | n/a | n/a |" in text
    )
    assert "Highest held-out mean tau (a point estimate, no interval): `meco`;" in text
    assert "Above the default on `p` band, mnist (+0.400): `meco` +0.500" in text
    assert "but not above `short`" in text
    # the MNIST gain's interval above zero and the level's top-1 within 1%: met on all four,
    # although the band whose seeds disagree misses it
    v = verdict(_verdict_report(mnist_gain_ci=[0.05, 0.3], level_top1=0.995))
    rows = {r["ground_truth"]: r for r in v["rows"]}
    assert v["met"] and rows["`f` band, mnist"]["tau_target"] != "met"
    assert v["meet_target_everywhere"] == ["ensemble"]
    # every tau half met, but the level's top-1 pick 2% short: not met
    assert not verdict(_verdict_report(mnist_gain_ci=[0.05, 0.3], level_top1=0.98))["met"]
    # no budgeted ground truth that can rank: nothing shows the target met
    report = _verdict_report(mnist_gain_ci=[0.05, 0.3], level_top1=0.995)
    report["pools"], report["spikenas"] = {}, None
    assert not verdict(report)["met"]


def test_band_pools_are_drawn_inside_their_band_and_persisted(tmp_path: Path) -> None:
    ranking = ranking_module()
    for name, spec in ranking.BAND_POOLS.items():
        configs = ranking.band_pool(tmp_path, name, 6)
        assert len({c.to_json() for c in configs}) == 6  # distinct
        for cfg in configs:
            value = ranking.budget_of(cfg, spec["budget"])
            assert abs(value / spec["target"] - 1) <= spec["tolerance"]
        saved = json.loads((tmp_path / f"ranking_pool_{name}.json").read_text())
        assert saved["budget"] == spec["budget"] and saved["draws"] >= 6
        again = ranking.band_pool(tmp_path, name, 6)  # read back, not drawn again
        assert [c.to_dict() for c in again] == [c.to_dict() for c in configs]
        with pytest.raises(SystemExit, match="--pool-n 5"):
            ranking.band_pool(tmp_path, name, 5)


@pytest.mark.slow
def test_tiny_ranking_benchmark_runs_and_resumes(tmp_path: Path) -> None:
    # one thread: idle OpenMP threads spin, which on a busy machine multiplies the run time
    env = {
        **os.environ,
        "AUTOST_LIF_BACKEND": "eager",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "benchmarks/ranking.py", "--tiny", "--out", str(tmp_path)]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr
    report = json.loads((tmp_path / "ranking.json").read_text())
    assert report["n_architectures"] == 4
    proxies = {"flops", "params", "sahd", "grad_norm", "ensemble"}
    baselines = {"short-1epoch", "loss-drop"}
    assert proxies | baselines <= set(report["kendall_tau"]) <= set(report["spearman_rho"])
    assert set(report["kendall_tau_ci95"]) == set(report["kendall_tau"])
    assert set(list_proxies()) <= set(report["kendall_tau"])  # every proxy
    digits = report["datasets"]["digits"]
    low, high = digits["ensemble_minus_flops_tau_ci95"]
    assert low <= high and digits["ensemble_minus_flops_tau"] is not None
    assert set(digits["seed_to_seed"]) == {"seed 1"}  # the ceiling: seed 1 against seed 0
    assert len(digits["seed_to_seed"]["seed 1"]["accuracies"]) == 4
    assert set(digits["against_mean_of_seeds"]["kendall_tau"]) == set(report["kendall_tau"])
    assert set(digits["top5_regret"]) == set(digits["seconds_per_candidate"])
    assert set(digits["top5_regret"]) == set(report["kendall_tau"])
    assert all(digits["seconds_per_candidate"][n] > 0 for n in baselines | {"sahd"})
    # the budget band: 4 architectures inside 10% of 200k parameters, two seeds each
    band = report["pools"]["params-200k"]
    assert band["n_architectures"] == 4 and band["seeds"] == [0, 1]
    assert band["definition"]["budget"] == "params" and not band["incomplete"]
    low, high = band["budget_range"]["params"]
    assert 180_000 <= low <= high <= 220_000
    result = band["datasets"]["digits"]
    names = set(result["kendall_tau"])
    assert proxies | baselines <= names
    for key in ("spearman_rho", "kendall_tau_ci95", "spearman_rho_ci95"):
        assert set(result[key]) == names
    for key in ("top1_relative_accuracy", "top5_regret", "seconds_per_candidate"):
        assert set(result[key]) == names
    assert all(0 < v <= 1 for v in result["top1_relative_accuracy"].values())
    assert all(v == 0 for v in result["top5_regret"].values())  # 4 architectures: all in top-5
    assert result["seed_to_seed"]["seeds"] == [0, 1]
    low, high = result["accuracy_range"]
    assert 0 <= low <= high == result["best_accuracy"] <= 1
    assert report["training_devices"] == {"digits": {"cpu": 16}}
    table = (tmp_path / "ranking.md").read_text()
    assert table.count("\n| 3 | ") == 2 and "| ensemble |" in table  # open pool and band
    assert "## Budget band `params-200k`" in table and "| short-1epoch (training) |" in table
    rows = (tmp_path / "ranking_accuracy.csv").read_text().splitlines()
    assert len(rows) == 5  # header + 4 trainings
    assert len((tmp_path / "ranking_seeds.csv").read_text().splitlines()) == 5
    band_rows = (tmp_path / "ranking_accuracy_params-200k.csv").read_text().splitlines()
    assert len(band_rows) == 9  # header + 4 architectures x 2 seeds
    scores = (tmp_path / "ranking_scores.csv").read_text()
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert "val acc" not in again.stdout  # nothing trained twice
    assert ": scored" not in again.stdout  # nothing scored twice
    assert (tmp_path / "ranking_accuracy.csv").read_text().splitlines() == rows
    assert (tmp_path / "ranking_scores.csv").read_text() == scores
    assert json.loads((tmp_path / "ranking.json").read_text())["pools"] == report["pools"]
