"""Training-free search on a Ray cluster: ``--address`` to a real cluster, an unreachable one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from search_helpers import leaderboard
from testkit import run_cli


@pytest.mark.slow
def test_address_scores_on_a_real_ray_cluster(tmp_path: Path) -> None:
    """``--address`` sends the scoring to a running two-node cluster (head + worker on loopback,
    own temp dir and ports); the leaderboard equals a local run's, and stopping the cluster
    leaves none of its processes behind."""
    from ray_cluster import LocalRayCluster

    args = ["--space", "digits", "--evaluator", "flops", "--strategy", "random"]
    args += ["--budget", "8", "--seed", "4", "--quiet"]
    cluster = LocalRayCluster(head_cpus=1)
    try:
        cluster.add_worker(num_cpus=1)
        out = ["--out", str(tmp_path / "ray"), "--address", cluster.address]
        result = run_cli("search", *args, *out)
        assert result.returncode == 0, result.stderr
        logs = list(cluster.temp_dir.glob("session_latest/logs/worker-*.out"))
        assert logs, "no Ray worker ran a task"
        assert cluster.our_processes()
    finally:
        cluster.stop()
    assert cluster.our_processes() == []
    local = run_cli("search", *args, "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    assert leaderboard(tmp_path / "ray") == leaderboard(tmp_path / "local")
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run["settings"]["address"] == cluster.address


def test_unreachable_address_is_one_line_exit_2(tmp_path: Path) -> None:
    from ray_cluster import free_port

    start = time.monotonic()
    result = run_cli(
        "search",
        *["--space", "digits", "--evaluator", "flops", "--budget", "2", "--quiet"],
        *["--out", str(tmp_path / "x"), "--address", f"127.0.0.1:{free_port()}"],
    )
    assert result.returncode == 2
    assert "cannot reach the Ray cluster" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert time.monotonic() - start < 60
    assert not (tmp_path / "x" / "study.db").exists()
