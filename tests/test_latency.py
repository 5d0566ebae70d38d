"""Measured latency: the measurement, its cache, the ``latency`` proxy and constraint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from testkit import run_cli

import autost
from autost import ArchConfig
from autost.errors import AutostError
from autost.model.latency import measure_latency
from autost.search.dimensions import Constraint
from autost.search.evaluator import Evaluator

DIGITS = dict(in_channels=1, image_size=8, stem_pooling="0001", num_heads=2, mlp_ratios=2)
TINY = ArchConfig(embed_dim=32, depth=1, timesteps=2, **DIGITS)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "latency"


def test_a_measurement_is_a_median_with_its_spread_and_is_cached(_cache: Path) -> None:
    threads = torch.get_num_threads()
    first = measure_latency(TINY, batch=2, threads=1, repeats=5)
    assert torch.get_num_threads() == threads  # restored
    assert 0 < first.p10_ms <= first.median_ms <= first.p90_ms
    assert (first.device, first.threads, first.batch, first.timesteps) == ("cpu", 1, 2, 2)
    assert not first.cached and "CPUs" in first.device_name
    again = measure_latency(TINY, batch=2, threads=1, repeats=5)
    assert again.cached and again.to_dict() == first.to_dict()
    assert len(list(_cache.glob("*.json"))) == 1
    other = measure_latency(TINY, batch=2, threads=1, repeats=5, timesteps=4)  # another key
    assert other.timesteps == 4 and not other.cached
    model = autost.create_model(TINY)
    assert measure_latency(model, batch=2, threads=1, repeats=5).cached  # same config: cached
    assert not measure_latency(TINY, batch=2, threads=1, repeats=5, cache=False).cached


def test_a_damaged_cache_file_is_refused_naming_it(_cache: Path) -> None:
    measure_latency(TINY, threads=1, repeats=3)
    (path,) = _cache.glob("*.json")
    for text in ("{", "[]", json.dumps({"key": {}, "latency": {}})):
        path.write_text(text)
        with pytest.raises(AutostError, match="not a latency measurement autost wrote") as info:
            measure_latency(TINY, threads=1, repeats=3)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    data = {"key": None, "latency": None}
    path.write_text(json.dumps(data))
    with pytest.raises(AutostError):
        measure_latency(TINY, threads=1, repeats=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"batch": 0}, "batch must be an integer >= 1"),
        ({"threads": 0}, "threads must be an integer >= 1"),
        ({"repeats": 0}, "repeats must be an integer >= 1"),
        ({"timesteps": 0}, "timesteps must be an integer >= 1"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AutostError, match=message):
        measure_latency(TINY, **kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused() -> None:
    with pytest.raises(AutostError, match="no CUDA GPU"):
        measure_latency(TINY, device="cuda")


@pytest.mark.parametrize(
    ("text", "bound"),
    [("latency<=20ms", 20.0), ("latency <= 0.02 s", 20.0), ("latency<1500us", 1.5)],
)
def test_latency_constraints_take_a_unit(text: str, bound: float) -> None:
    parsed = Constraint.parse(text)
    assert (parsed.metric, parsed.bound) == ("latency", pytest.approx(bound))
    assert Constraint.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency<=20 parsecs", "latency needs a unit, one of us, ms, s"),
        ("latency<=20", "latency needs a unit"),
        ("params<=5ms", "params takes no unit"),
    ],
)
def test_bad_latency_constraints_are_refused(text: str, message: str) -> None:
    with pytest.raises(AutostError, match=message):
        Constraint.parse(text)


def test_the_latency_proxy_is_the_measured_median() -> None:
    scores = Evaluator.load("latency").score(TINY)
    measured = measure_latency(TINY, device="cpu", batch=1)
    assert measured.cached and scores["latency"] == measured.median_ms
    assert scores["score"] == -scores["latency"]


def test_a_latency_constrained_search_keeps_only_candidates_that_meet_it(tmp_path: Path) -> None:
    from autost.search.outputs import load_run

    out = tmp_path / "run"
    done = run_cli(
        "search", "--space", "digits", "--evaluator", "flops", "--budget", "8", "--strategy",
        "random", "--constraint", "latency<=1s", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "run.json").read_text())
    assert "latency<=1000ms" in run["settings"]["constraints"]
    board = load_run(out)
    assert board
    for cand in board:  # the measured latency the constraint read, kept with the candidate
        assert 0 < cand.metrics["latency"] <= 1000
    header = (out / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "latency" in header


def test_a_latency_constraint_with_a_bad_unit_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli(
        "search", "--space", "digits", "--evaluator", "flops", "--budget", "2",
        "--constraint", "latency<=20 parsecs", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "parsecs" in done.stderr and not out.exists()


def test_models_latency_prints_the_measured_latency(capsys: pytest.CaptureFixture[str]) -> None:
    from autost.cli import main

    assert main(["models", "spikformer-4-384-cifar10", "--latency", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    cached = measure_latency("spikformer-4-384-cifar10", device="cpu", batch=1)
    assert cached.cached and row["latency_ms"] == cached.median_ms
    assert main(["models", "spikformer-4-384-cifar10", "--latency"]) == 0
    out = capsys.readouterr().out
    assert "latency ms" in out and f"{cached.median_ms:.1f}" in out
    assert "median of 10 forwards on this CPU" in out
