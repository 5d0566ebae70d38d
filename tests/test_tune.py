"""Ray Tune + Optuna short-training evaluation: ASHA, failures, resume, a real two-node cluster."""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from testkit import DIGITS_ARCH, ROOT, cli_env, run_cli

import autost

GOOD = DIGITS_ARCH.replace(embed_dim=32)
BAD = GOOD.replace(num_classes=11)  # digits has 10 classes: the trainer raises in the trial


def run_tune(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return run_cli("tune", "--quiet", *args, timeout=timeout)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def finalists(folder: Path, *configs: autost.ArchConfig) -> Path:
    folder.mkdir()
    for i, cfg in enumerate(configs):
        cfg.to_json(folder / f"rank-{i + 1:02d}.json")
    return folder


@pytest.mark.slow
def test_local_ray_with_asha_stopping_trials_early(tmp_path: Path) -> None:
    out = tmp_path / "t"
    result = run_tune(
        *["--space", "digits", "--dataset", "digits", "--trials", "8", "--epochs", "4"],
        *["--out", str(out)],
    )
    assert result.returncode == 0, result.stderr
    trials = rows(out / "trials.csv")
    assert len(trials) == 8
    statuses = [t["status"] for t in trials]
    assert "stopped_early" in statuses and "complete" in statuses, statuses
    for t in trials:
        assert (int(t["epochs"]) == 4) == (t["status"] == "complete"), t
    board = rows(out / "leaderboard.csv")
    assert {t["status"] for t in board} == {"complete"}
    assert len(board) == statuses.count("complete")
    accs = [float(t["val_acc"]) for t in board]
    assert accs == sorted(accs, reverse=True)
    best = json.loads((out / "best.json").read_text())
    assert autost.create_model(out / "best.json").config == autost.ArchConfig.from_dict(
        best["config"]
    )
    assert {"lr", "weight_decay", "depth"} <= set(best["params"])
    import optuna

    study = optuna.load_study(study_name="autost-tune", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 8


@pytest.mark.slow
def test_failing_trials_are_recorded_and_all_failing_exits_non_zero(tmp_path: Path) -> None:
    mixed = finalists(tmp_path / "mixed", GOOD, BAD)
    out = tmp_path / "m"
    result = run_tune(  # NSGA-II over accuracy and energy
        *["--from", str(mixed), "--trials", "4", "--epochs", "1", "--max-failures", "0"],
        *["--seed", "1", "--objective", "accuracy,energy", "--out", str(out)],
    )
    assert result.returncode == 0, result.stderr
    trials = rows(out / "trials.csv")
    failed = [t for t in trials if t["status"] == "failed"]
    assert failed and all("11 classes" in t["error"] or "classes" in t["error"] for t in failed)
    assert all(json.loads(t["params"])["arch"] == 1 for t in failed)
    board = rows(out / "leaderboard.csv")
    assert board and all(t["status"] == "complete" for t in board)
    assert all(float(t["energy_mj"]) > 0 for t in board)
    import optuna

    study = optuna.load_study(study_name="autost-tune", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.directions) == 2

    only_bad = finalists(tmp_path / "bad", BAD)
    result = run_tune(
        *["--from", str(only_bad), "--trials", "2", "--epochs", "1", "--max-failures", "0"],
        *["--out", str(tmp_path / "b")],
    )
    assert result.returncode == 1
    summary = result.stderr.strip().splitlines()[-1]  # after Ray's own logs of the failures
    assert summary.startswith("autost: every trial failed"), result.stderr
    assert "2 failed" in summary and "classes" in summary
    assert [t["status"] for t in rows(tmp_path / "b" / "trials.csv")] == ["failed"] * 2


def test_unreachable_address_fails_fast_with_one_line(tmp_path: Path) -> None:
    from ray_cluster import free_port

    start = time.monotonic()
    result = run_tune(
        *["--space", "digits", "--trials", "1", "--epochs", "1", "--out", str(tmp_path / "x")],
        *["--address", f"127.0.0.1:{free_port()}"],
        timeout=120,
    )
    assert time.monotonic() - start < 30
    assert result.returncode == 2
    assert "cannot reach the Ray cluster" in result.stderr and result.stderr.count("\n") == 1


def _latest_metrics(out: Path) -> dict[str, Path]:
    """Each trial's metrics.jsonl in its latest reported checkpoint."""
    found: dict[str, Path] = {}
    for trial in (out / "tune").glob("run_trial_*"):
        checkpoints = sorted(trial.glob("checkpoint_*/metrics.jsonl"))
        if checkpoints:
            found[trial.name] = checkpoints[-1]
    return found


def _terminated(out: Path) -> set[str]:
    """Trials Ray's latest experiment snapshot records as finished (its durable state)."""
    files = sorted((out / "tune").glob("experiment_state-*.json"))
    if not files:
        return set()
    try:
        data = json.loads(files[-1].read_text())
    except (json.JSONDecodeError, OSError):  # being rewritten
        return set()
    done = set()
    for entry in data["trial_data"]:
        trial = json.loads(entry[0]) if isinstance(entry[0], str) else entry[0]
        if trial.get("status") == "TERMINATED":
            done.add(str(trial["trial_id"]))
    return done


def _trial_epochs(out: Path) -> dict[str, int]:
    """Epochs each trial has checkpointed."""
    return {t: len(p.read_text().splitlines()) for t, p in _latest_metrics(out).items()}


@pytest.mark.slow
def test_killed_driver_resumes_without_rerunning_completed_trials(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["--space", "digits", "--trials", "5", "--epochs", "4", "--grace-period", "4"]
    args += ["--cpus-per-trial", "2", "--out", str(out)]  # one trial at a time, none stopped
    proc = subprocess.Popen(
        [sys.executable, "-m", "autost", "tune", "--quiet", *args],
        cwd=ROOT,
        env=cli_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tree: set[psutil.Process] = set()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        root = psutil.Process(proc.pid)
        tree |= {root, *root.children(recursive=True)}
        if len(_terminated(out)) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the driver must be killed mid-way"
    tree |= set(psutil.Process(proc.pid).children(recursive=True))
    for p in tree:  # the driver and the local Ray it started
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(list(tree), timeout=30)
    # completed = recorded as finished in Ray's experiment state when the driver died (a trial
    # that finished after the last snapshot is re-run from its last checkpoint: at least once)
    terminated = _terminated(out)
    paths = _latest_metrics(out)
    finished = {t for t in paths if any(f"run_trial_{i}_" in t for i in terminated)}
    assert 2 <= len(finished) < 5
    stamps = {t: (paths[t], paths[t].stat().st_mtime_ns) for t in finished}

    resumed = run_tune(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    trials = rows(out / "trials.csv")
    assert len(trials) == 5 and all(t["status"] == "complete" for t in trials)
    after = _latest_metrics(out)
    for t in finished:  # completed trials were not run again: same last checkpoint, untouched
        path, stamp = stamps[t]
        assert after[t] == path and path.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_worker_node_killed_mid_experiment_every_trial_still_finishes(tmp_path: Path) -> None:
    from ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(head_cpus=1)
    try:
        worker = cluster.add_worker(num_cpus=1)
        out = tmp_path / "c"
        args = ["--space", "digits", "--trials", "4", "--epochs", "4", "--grace-period", "4"]
        args += ["--max-failures", "3", "--out", str(out), "--address", cluster.address]
        proc = subprocess.Popen(
            [sys.executable, "-m", "autost", "tune", "--quiet", *args],
            cwd=ROOT,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 300
        killed = False
        while time.monotonic() < deadline and proc.poll() is None:
            worker.remember_tree()
            running = [p for p in worker.tree if p.is_running() and _is_trial(p)]
            if running and any(n >= 1 for n in _trial_epochs(out).values()):
                worker.stop(graceful=False)  # the node dies with its trial
                killed = True
                break
            time.sleep(0.2)
        assert killed, "no trial ran on the worker node"
        _stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr
        trials = rows(out / "trials.csv")
        assert len(trials) == 4 and all(t["status"] == "complete" for t in trials), trials
    finally:
        cluster.stop()
    assert cluster.our_processes() == []


def _is_trial(proc: psutil.Process) -> bool:
    """A Ray worker process running a trial (its title names the function trainable)."""
    try:
        title = " ".join(proc.cmdline()) or proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "ImplicitFunc" in title or "run_trial" in title
