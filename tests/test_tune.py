"""Ray Tune + Optuna short-training evaluation: ASHA, failures, resume, a real two-node cluster."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from testkit import DIGITS_ARCH, ROOT, cli_env, cli_in_process, run_cli

import autost
from autost.runtime.workdir import sweep
from autost.tune.tuner import TRIAL_PREFIX

GOOD = DIGITS_ARCH.replace(embed_dim=32)
BAD = GOOD.replace(num_classes=11)  # digits has 10 classes: the trainer raises in the trial


def run_tune(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return run_cli("tune", "--quiet", *args, timeout=timeout)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _trial_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"{TRIAL_PREFIX}*"))


def _private_tmpdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A temp dir of the test's own for the CLI subprocesses and their local Ray's trials
    (Ray's session files stay where they were: socket paths must stay short)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("RAY_TMPDIR", os.environ.get("RAY_TMPDIR", tempfile.gettempdir()))
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    return tmpdir


def _sweepable(before: set[Path]) -> set[Path]:
    """The trial folders made since ``before`` that a sweep (as the next trial's) does not
    remove within 60 s: those of live processes, or not locked at all."""
    deadline = time.monotonic() + 60
    while _trial_folders() - before and time.monotonic() < deadline:
        sweep(TRIAL_PREFIX)
        time.sleep(0.5)
    return _trial_folders() - before


def finalists(folder: Path, *configs: autost.ArchConfig) -> Path:
    folder.mkdir()
    for i, cfg in enumerate(configs):
        cfg.to_json(folder / f"rank-{i + 1:02d}.json")
    return folder


@pytest.mark.slow
def test_local_ray_with_asha_stopping_trials_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "t"
    tmpdir = _private_tmpdir(monkeypatch, tmp_path)
    result = run_tune(
        *["--space", "digits", "--dataset", "digits", "--trials", "8", "--epochs", "4"],
        *["--out", str(out)],
    )
    assert result.returncode == 0, result.stderr
    assert not list(tmpdir.glob(f"{TRIAL_PREFIX}*"))  # none left by the trials ASHA stopped
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

    # a dataset that fits no finalist's input is refused before Ray starts, nothing written
    only_bad = finalists(tmp_path / "bad", BAD)
    result = run_tune(
        *["--from", str(only_bad), "--trials", "2", "--epochs", "1", "--max-failures", "0"],
        *["--out", str(tmp_path / "b")],
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "autost: error: dataset 'digits' has 10 classes, the architecture 11"
    ]
    assert not (tmp_path / "b").exists()


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
    """Each trial's metrics.jsonl in its latest reported checkpoint (every session)."""
    found: dict[str, Path] = {}
    for trial in (out / "tune").glob("session-*/run_trial_*"):
        checkpoints = sorted(trial.glob("checkpoint_*/metrics.jsonl"))
        if checkpoints:
            found[trial.name] = checkpoints[-1]
    return found


def _trial_epochs(out: Path) -> dict[str, int]:
    """Epochs each trial has checkpointed."""
    return {t: len(p.read_text().splitlines()) for t, p in _latest_metrics(out).items()}


# ---------------------------------------------------------- resume: faults and hostile files

OTHER = GOOD.replace(embed_dim=48, num_heads=(2,))
RESUME_ARGS = ["--trials", "3", "--epochs", "2", "--grace-period", "2", "--cpus-per-trial", "2"]


class _Payload:
    """Unpickling this creates ``marker``: the proof that a file was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _tamper(folder: Path, marker: Path, checkpoints: bool) -> int:
    """Replace every file Ray wrote under ``folder`` (checkpoint files too, if asked) by a
    pickle that creates ``marker`` when loaded; the number of files replaced."""
    import pickle

    payload = pickle.dumps(_Payload(str(marker)))
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (checkpoints or "checkpoint_" not in str(path.parent)):
            path.write_bytes(payload)
            count += 1
    return count


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _finished(out: Path) -> dict[int, tuple[str, str, str]]:
    """Finished trials in the study: number -> (status, params JSON, metrics JSON)."""
    import optuna

    study = optuna.load_study(study_name="autost-tune", storage=f"sqlite:///{out / 'study.db'}")
    return {
        t.number: (
            t.user_attrs["status"],
            json.dumps(t.params, sort_keys=True),
            json.dumps(t.user_attrs["metrics"], sort_keys=True),
        )
        for t in study.get_trials()
        if t.user_attrs.get("status") in ("complete", "stopped_early", "failed")
    }


def _retried(out: Path) -> set[int]:
    """Trial numbers that a resume queued again (``retry_of`` of later trials)."""
    import optuna

    study = optuna.load_study(study_name="autost-tune", storage=f"sqlite:///{out / 'study.db'}")
    return {int(t.user_attrs["retry_of"]) for t in study.get_trials() if "retry_of" in t.user_attrs}


def _interrupted_metrics(out: Path) -> dict[int, str]:
    """Metrics recorded on trials a crash left running: number -> metrics JSON."""
    import optuna

    study = optuna.load_study(study_name="autost-tune", storage=f"sqlite:///{out / 'study.db'}")
    return {
        t.number: json.dumps(t.user_attrs.get("metrics"), sort_keys=True)
        for t in study.get_trials(states=[optuna.trial.TrialState.RUNNING])
        if t.user_attrs.get("metrics")  # asked for, but not started: nothing to lose
    }


def _run_until_killed(args: list[str], kill_at: str) -> int:
    """``autost tune ARGS`` with a kill point; the driver dies there (SIGKILL) and the local
    Ray it started is stopped here; the driver's return code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "autost", "tune", "--quiet", *args],
        cwd=ROOT,
        env={**cli_env(), "AUTOST_KILL_AT": kill_at},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tree: set[psutil.Process] = set()
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(proc.pid)
            tree |= {root, *root.children(recursive=True)}
        time.sleep(0.1)
    code = proc.wait(timeout=60)
    for p in list(tree):  # what the dead driver left: its local Ray
        with contextlib.suppress(psutil.NoSuchProcess):
            tree |= set(p.children(recursive=True))
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(list(tree), timeout=30)
    return code


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-trial run to damage in copies."""
    base = tmp_path_factory.mktemp("finished")
    folder = finalists(base / "configs", GOOD, OTHER)
    out = base / "run"
    result = run_tune(*["--from", str(folder), "--trials", "2", "--epochs", "1", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    """A copy of the run folder (its source of finalists stays where it is)."""
    import shutil

    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def _resume_args(run: Path) -> list[str]:
    return ["--from", str(run.parent / "configs"), "--trials", "2", "--epochs", "1"]


@pytest.mark.parametrize(
    "damage",
    ["study-empty", "study-truncated", "study-garbage", "study-no-tables", "json-cut", "json-list"],
)
def test_resume_refuses_a_damaged_record_and_changes_nothing(
    finished_run: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    out = _copy(finished_run, tmp_path)
    db, record = out / "study.db", out / "tune.json"
    if damage == "study-empty":
        db.write_bytes(b"")
    elif damage == "study-truncated":
        db.write_bytes(db.read_bytes()[:100])
    elif damage == "study-garbage":
        db.write_bytes(b"not a database" * 100)
    elif damage == "study-no-tables":
        db.unlink()
        sqlite3.connect(db).close()
    elif damage == "json-cut":
        record.write_bytes(record.read_bytes()[:50])
    else:
        record.write_text("[1, 2]")
    before = _snapshot(out)
    code, err = cli_in_process(
        capsys, "tune", "--quiet", *_resume_args(finished_run), "--out", str(out), "--resume"
    )
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "nothing was changed" in err
    assert _snapshot(out) == before


def test_resume_ignores_ray_state_and_accepts_the_same_source_by_another_path(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _copy(finished_run, tmp_path)
    before = _finished(out)
    marker = tmp_path / "PWNED"
    assert _tamper(out / "tune", marker, checkpoints=True) > 10
    for path in (out / "tune").rglob("*.pkl"):  # Ray's state truncated as well
        path.write_bytes(path.read_bytes()[:100])
    relative = os.path.relpath(finished_run.parent / "configs", ROOT)  # the run used it absolute
    result = run_tune(
        *["--from", relative, "--trials", "2", "--epochs", "1", "--out", str(out), "--resume"]
    )
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert _finished(out) == before and len(before) == 2
    assert [t["status"] for t in rows(out / "trials.csv")] == ["complete"] * 2

    changed = run_tune(*_resume_args(finished_run)[:-1], "2", "--out", str(out), "--resume")
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1
    assert "different epochs" in changed.stderr


# each step is one driver process killed at that point, every one but the first a resume
KILL_CHAIN = [
    "tune-result@1",  # during the first trial, just after its first epoch is recorded
    "tune-requeue@1",  # the resume itself, while it queues the interrupted trial again
    "tune-before-tell@1",  # while a trial's completion is being recorded
    "tune-after-tell@1",  # right after a completion is recorded
    "tune-result@2",  # during the next trial, after its second record
]


@pytest.mark.slow
def test_killed_driver_resumes_losing_and_repeating_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = finalists(tmp_path / "configs", GOOD, OTHER)
    out = tmp_path / "r"
    args = ["--from", str(folder), *RESUME_ARGS, "--out", str(out)]
    marker = tmp_path / "PWNED"
    tmpdir = _private_tmpdir(monkeypatch, tmp_path)
    done: dict[int, tuple[str, str, str]] = {}
    cut_short: dict[int, str] = {}  # killed after the last record, before being told
    for i, kill in enumerate(KILL_CHAIN):
        code = _run_until_killed(args + (["--resume"] if i else []), kill)
        assert code == -9, f"the kill point {kill} was not reached (exit {code})"
        now = _finished(out)
        assert {n: now[n] for n in done} == done, f"a finished trial changed after {kill}"
        assert not set(now) & _retried(out), f"a finished trial was queued again after {kill}"
        if kill.startswith("tune-before-tell"):
            cut_short = _interrupted_metrics(out)
            assert cut_short, "the kill left no trial running"
        done = now
        # a writer of the run folder cannot make the resume run code: Ray's files are bait
        _tamper(out / "tune", marker, checkpoints=False)
    assert 1 <= len(done) < 3
    resumed = run_tune(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not marker.exists()
    after = _finished(out)
    assert {n: after[n] for n in done} == done  # kept exactly
    assert not set(done) & _retried(out)  # and never run again
    assert len(after) == 3 and all(v[0] == "complete" for v in after.values()), after
    trials = rows(out / "trials.csv")
    assert len(trials) == 3 and all(t["status"] == "complete" for t in trials)
    # the trial cut short after its last epoch continued from its final checkpoint: its
    # re-run reports exactly the metrics it had reached, without training again
    assert set(cut_short.values()) <= {v[2] for v in after.values()}
    # the trials killed with their drivers left their working folders; the resumes swept them
    assert not list(tmpdir.glob(f"{TRIAL_PREFIX}*"))


@pytest.mark.slow
def test_worker_node_killed_mid_experiment_every_trial_still_finishes(tmp_path: Path) -> None:
    from ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(head_cpus=1)
    before = _trial_folders()
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
    # the dead node's trial folder is locked by no live process: the next trial on a node
    # with this temp dir (here: the same machine) removes it
    assert not _sweepable(before)


def _is_trial(proc: psutil.Process) -> bool:
    """A Ray worker process running a trial (its title names the function trainable)."""
    try:
        title = " ".join(proc.cmdline()) or proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "ImplicitFunc" in title or "run_trial" in title


def test_resume_stops_only_the_local_ray_a_killed_run_left(tmp_path: Path) -> None:
    from autost.runtime.ray_util import LOCAL_RAY, _proc_start, stop_left_ray

    sleeper = "import time; time.sleep(120)"
    left = subprocess.Popen([sys.executable, "-c", sleeper, "ray::DashboardAgent"])
    other = subprocess.Popen([sys.executable, "-c", sleeper, "ray::RuntimeEnvAgent"])
    plain = subprocess.Popen([sys.executable, "-c", sleeper])
    try:
        time.sleep(0.5)
        start = _proc_start(left.pid)
        assert start is not None
        processes = [
            [left.pid, start],
            [other.pid, (_proc_start(other.pid) or 0) + 1],  # a reused pid: another process
            [plain.pid, _proc_start(plain.pid)],  # not a Ray process
            "junk",
            [1, 0],
        ]
        (tmp_path / LOCAL_RAY).write_text(json.dumps({"processes": processes}))
        assert stop_left_ray(tmp_path) == 1
        assert left.wait(timeout=10) == -9
        assert other.poll() is None and plain.poll() is None
        assert not (tmp_path / LOCAL_RAY).exists()
        (tmp_path / LOCAL_RAY).write_text("{not json")
        assert stop_left_ray(tmp_path) == 0
    finally:
        for proc in (left, other, plain):
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--timesteps", "2,x"], "--timesteps: expected comma-separated integers"),
        (["--timesteps", "0,2"], "--timesteps: values must be >= 1"),
        (["--objective", "accuracy,banana"], "unknown objective 'accuracy,banana'"),
        (["--out", "FILE"], "is a file, not a folder"),
        (["--trials", "many"], "argument --trials: invalid int value"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_tune_input_is_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    args = [str(target) if a == "FILE" else a for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "never")]
    code, err = cli_in_process(
        capsys, "tune", "--quiet", "--space", "digits", "--trials", "1", *args
    )
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert says in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
    assert target.read_text() == "keep me"


@pytest.mark.slow
def test_dataset_root_and_options_reach_every_trial(tmp_path: Path) -> None:
    mnist = ROOT.parent / "shared" / "data" / "mnist"
    if not mnist.is_dir():
        pytest.skip("../shared/data/mnist is absent")
    folder = finalists(tmp_path / "configs", GOOD)
    out = tmp_path / "m"
    result = run_tune(
        *["--from", str(folder), "--trials", "1", "--epochs", "1", "--dataset", "mnist"],
        *["--root", str(mnist), "--dataset-option", "source=test"],
        *["--dataset-option", "image_size=8", "--out", str(out)],
    )
    assert result.returncode == 0, result.stderr
    assert [t["status"] for t in rows(out / "trials.csv")] == ["complete"]
    record = json.loads((out / "tune.json").read_text())
    assert record["dataset_options"] == {"source": "test", "image_size": 8}
    (train,) = (out / "tune").glob("session-0/run_trial_*/checkpoint_*/train.json")
    settings = json.loads(train.read_text())["settings"]
    assert settings["dataset_options"] == {"source": "test", "image_size": 8}
    assert json.loads(train.read_text())["dataset"] == "mnist"


def test_each_finalist_is_tried_first_and_trials_at_chance_pick_none(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --top 2 --trials 2: both finalists are trained (TPE alone drew finalist 1 twice)
    trials = rows(finished_run / "trials.csv")
    assert sorted(json.loads(t["params"])["arch"] for t in trials) == [0, 1]
    assert all(float(t["val_acc"]) <= float(t["val_chance"]) for t in trials), trials
    assert not (finished_run / "best.json").exists()  # nothing to pick between
    out = _copy(finished_run, tmp_path)
    from autost.cli import main

    capsys.readouterr()  # a resume with every trial finished: the summary, no Ray
    assert main(["tune", *_resume_args(finished_run), "--out", str(out), "--resume"]) == 0
    best, chance = max(float(t["val_acc"]) for t in trials), float(trials[0]["val_chance"])
    assert capsys.readouterr().out.splitlines() == [
        "2 complete, 0 stopped early by ASHA, 0 failed (2 of them finished before this "
        f"resume); every complete trial ended at chance level (val accuracy at most {best:.4f}; "
        f"always answering the most frequent class scores {chance:.4f}), so no best trial is "
        f"picked: give the trials more epochs -> {out}"
    ]


def test_enqueue_finalists_queues_each_untried_finalist_once() -> None:
    import optuna

    from autost.tune.record import enqueue_finalists
    from autost.tune.tuner import DefineByRun

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    define = DefineByRun(None, 3, (1e-4, 1e-2), (1e-4, 1e-1), None)
    first = study.ask()
    define(first)
    enqueue_finalists(study, 3)
    enqueue_finalists(study, 3)  # a resume queues nothing twice
    waiting = study.get_trials(states=[optuna.trial.TrialState.WAITING])
    others = sorted({0, 1, 2} - {first.params["arch"]})
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"arch": a} for a in others]
    asked = [study.ask() for _ in others]
    for trial in asked:
        define(trial)
    assert [t.params["arch"] for t in asked] == others
    assert all(1e-4 <= t.params["lr"] <= 1e-2 for t in asked)  # drawn by the sampler


def test_tune_prints_its_best_trial_in_lines_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from autost.cli import main
    from autost.tune import TrialRecord, TuneResult

    folder = finalists(tmp_path / "configs", GOOD, OTHER)
    out = tmp_path / "t"
    out.mkdir()
    (out / "tune.json").write_text(json.dumps({"finalists": [GOOD.to_dict(), OTHER.to_dict()]}))
    params = {"arch": 1, "lr": 0.0016051911, "weight_decay": 0.0043117}
    metrics = {"epoch": 3.0, "val_acc": 0.6481, "val_chance": 0.1037}
    best = TrialRecord("7e8f4cb1", "complete", params, OTHER, 3, metrics, number=4)
    low = TrialRecord("285567f0", "complete", {**params, "arch": 0}, GOOD, 3, {}, number=2)
    result = TuneResult(out, [best, low], [], [])
    monkeypatch.setattr(sys.modules["autost.tune"], "tune", lambda *a, **k: result)
    capsys.readouterr()
    assert main(["tune", "--from", str(folder), "--top", "2", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"2 complete, 0 stopped early by ASHA, 0 failed -> {out}",
        "best trial: 4, val accuracy 0.6481 after 3 epochs; finalist 2 of 2 (config 2 of "
        "--from by file name), lr 0.00161, weight decay 0.00431",
        "architecture: depth 1, dim 48, heads 2, mlp ratios 2, attention ssa, T 2; "
        f"{autost.count_params(OTHER):,} params",
        f"best config: {out / 'best.json'}",
    ]
