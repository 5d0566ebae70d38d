"""The ranking benchmark's code path, in its tiny form (4 architectures, 1 epoch, digits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_ranking_benchmark_runs_and_resumes(tmp_path: Path) -> None:
    env = {**os.environ, "AUTOST_LIF_BACKEND": "eager", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "benchmarks/ranking.py", "--tiny", "--out", str(tmp_path)]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    report = json.loads((tmp_path / "ranking.json").read_text())
    assert report["n_architectures"] == 4
    proxies = {"flops", "params", "sahd", "grad_norm", "ensemble"}
    assert proxies <= set(report["kendall_tau"]) and proxies <= set(report["spearman_rho"])
    assert set(report["kendall_tau_ci95"]) == set(report["kendall_tau"])
    digits = report["datasets"]["digits"]
    low, high = digits["ensemble_minus_flops_tau_ci95"]
    assert low <= high and digits["ensemble_minus_flops_tau"] is not None
    assert set(digits["seed_to_seed"]) == {"seed 1"}  # the ceiling: seed 1 against seed 0
    assert len(digits["seed_to_seed"]["seed 1"]["accuracies"]) == 4
    assert set(digits["against_mean_of_seeds"]["kendall_tau"]) == set(report["kendall_tau"])
    assert report["training_devices"] == {"digits": {"cpu": 8}}
    table = (tmp_path / "ranking.md").read_text()
    assert table.count("\n| 3 | ") == 1 and "| ensemble |" in table
    rows = (tmp_path / "ranking_accuracy.csv").read_text().splitlines()
    assert len(rows) == 5  # header + 4 trainings
    assert len((tmp_path / "ranking_seeds.csv").read_text().splitlines()) == 5
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert "val acc" not in again.stdout  # nothing trained twice
    assert (tmp_path / "ranking_accuracy.csv").read_text().splitlines() == rows
