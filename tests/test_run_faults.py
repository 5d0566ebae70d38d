"""``autost run`` killed with SIGKILL at every stage boundary, then run again with the same
command: it ends with the uninterrupted run's leaderboard, winner and training."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from testkit import ROOT, cli_env, run_cli

from autost.runtime.faults import KILL_ENV

#: record written, then each stage finished (its record written, the next not started)
POINTS = ["run-record", "run-search", "run-tune", "run-train", "run-export"]


#: figures of the training's clock, not of its outcome
CLOCKED = ("train_images_per_s", "epoch_seconds")


def _args(out: Path) -> list[str]:
    return [
        *["run", "--quiet", "--space", "digits", "--evaluator", "flops", "--budget", "6"],
        *["--top", "1", "--trials", "1", "--tune-epochs", "1", "--epochs", "2"],
        *["--out", str(out)],
    ]


def _outcome(out: Path) -> dict[str, Any]:
    with (out / "search" / "leaderboard.csv").open() as handle:
        board = [(row["key"], row["score"]) for row in csv.DictReader(handle)]
    bundle = json.loads((out / "bundle" / "config.json").read_text())
    train = json.loads((out / "train" / "train.json").read_text())
    stages = json.loads((out / "pipeline.json").read_text())["stages"]
    return {
        "leaderboard": board,
        "config": bundle["config"],
        "final": {k: v for k, v in train["final"].items() if k not in CLOCKED},
        "stages": sorted(k for k, v in stages.items() if v["status"] == "complete"),
    }


@pytest.mark.slow
def test_sigkill_at_every_stage_boundary_then_the_same_command_finishes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))
    full = run_cli(*_args(tmp_path / "full"), timeout=900)
    assert full.returncode == 0, full.stderr
    expected = _outcome(tmp_path / "full")
    assert expected["stages"] == ["export", "search", "train", "tune"]
    for point in POINTS:
        out = tmp_path / point
        killed = subprocess.run(
            [sys.executable, "-m", "autost", *_args(out)],
            cwd=ROOT,
            env={**cli_env(), KILL_ENV: point},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
        again = run_cli(*_args(out), timeout=900)
        assert again.returncode == 0, (point, again.stderr[-2000:])
        assert _outcome(out) == expected, point
