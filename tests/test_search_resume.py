"""Training-free search runs on disk: resume after SIGKILL, storages, refusing to overwrite."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from search_helpers import RECIPE, SMALL_EVO, flops_search, leaderboard
from testkit import ROOT, run_cli

import autost
from autost.search import EvolutionSettings, load_run, search


def completed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("select count(*) from trials where state='COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _kill_midway(args: list[str], out: Path, at: int) -> None:
    env = {**os.environ, "AUTOST_LIF_BACKEND": "eager"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autost", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while completed(out / "study.db") < at and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_sigkill_and_resume_equals_uninterrupted(tmp_path: Path, strategy: str) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    common = [
        "search",
        "--space",
        "digits",
        "--evaluator",
        str(recipe),
        "--strategy",
        strategy,
        "--budget",
        "24",
        "--seed",
        "5",
        "--quiet",
        *SMALL_EVO,
    ]
    full = tmp_path / "full"
    assert run_cli(*common, "--out", str(full)).returncode == 0
    cut = tmp_path / "cut"
    at = random.Random(strategy).randint(3, 15)
    _kill_midway([*common, "--out", str(cut)], cut, at)
    done_before = completed(cut / "study.db")
    total = completed(full / "study.db")  # 24 for random; evolution scores a config once
    assert 0 < done_before < total, "the run must be killed mid-way"
    resumed = run_cli(*common, "--out", str(cut), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert completed(cut / "study.db") == total  # nothing lost, nothing scored twice
    assert leaderboard(cut) == leaderboard(full)
    board = load_run(cut)
    assert len(board) == total
    assert len({c.key for c in board}) == len({c.config.to_json() for c in board}) == total


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "run"
    search("digits", "flops", strategy="random", budget=4, out=out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = flops_search(out, 4, "--strategy", "random")
    assert result.returncode == 2 and "--resume" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_corrupt_study_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    search("digits", "flops", strategy="random", budget=3, out=out, progress=False)
    (out / "study.db").write_bytes(b"this is not a database" * 100)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = flops_search(out, 6, "--strategy", "random", "--resume")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "study" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_postgresql_storage_resume_and_shared_database(tmp_path: Path) -> None:
    """A real PostgreSQL server (pgserver) holds the study: nothing is written to study.db, a
    resumed run equals an uninterrupted SQLite one, and a second run needs its own study name."""
    import optuna
    import pgserver

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    try:
        url = server.get_uri()
        assert url.startswith("postgresql://")
        common = {"strategy": "random", "seed": 5, "progress": False}
        first = search("digits", "flops", budget=4, out=tmp_path / "a", storage=url, **common)
        assert len(first.leaderboard) == 4 and not (tmp_path / "a" / "study.db").exists()
        resumed = search(
            "digits", "flops", budget=8, out=tmp_path / "a", storage=url, resume=True, **common
        )
        assert (resumed.resumed, resumed.evaluated) == (4, 4)
        local = search("digits", "flops", budget=8, out=tmp_path / "b", **common)
        assert [c.key for c in resumed.leaderboard] == [c.key for c in local.leaderboard]
        assert [c.scores for c in resumed.leaderboard] == [c.scores for c in local.leaderboard]
        assert [c.key for c in load_run(tmp_path / "a")] == [c.key for c in local.leaderboard]
        study = optuna.load_study(study_name="autost-search", storage=url)
        assert sum(t.state.name == "COMPLETE" for t in study.trials) == 8

        with pytest.raises(autost.AutostError, match="--study-name"):
            search("digits", "flops", budget=2, out=tmp_path / "c", storage=url, **common)
        assert not (tmp_path / "c" / "run.json").exists()
        other = search(
            "digits",
            "flops",
            budget=2,
            out=tmp_path / "d",
            storage=url,
            study_name="second",
            **common,
        )
        assert len(other.leaderboard) == 2
        names = {s.study_name for s in optuna.get_all_study_summaries(url)}
        assert names == {"autost-search", "second"}
    finally:
        server.cleanup()


def test_optuna_dashboard_opens_the_run(tmp_path: Path) -> None:
    """optuna-dashboard serves the run's study.db: the study and its completed trials."""
    import urllib.request

    from ray_cluster import free_port

    search("digits", "flops", budget=3, seed=1, out=tmp_path / "r", progress=False)
    port = free_port()
    url = f"sqlite:///{tmp_path / 'r' / 'study.db'}"
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen(
        [str(dashboard), url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    studies = json.load(r)["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no dashboard"
                time.sleep(0.5)
        assert [s["study_name"] for s in studies] == ["autost-search"]
        study_id = studies[0]["study_id"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id}") as r:
            trials = json.load(r)["trials"]
        assert [t["state"] for t in trials] == ["Complete"] * 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_journal_file_storage_and_resume(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'study.log'}"
    common = {"strategy": "evolution", "seed": 3, "progress": False}
    evo = EvolutionSettings(population=4, parents=2, mutations=2, crossovers=2, generations=3)
    part = search(
        "digits", "flops", budget=4, out=tmp_path / "j", storage=url, evolution=evo, **common
    )
    assert (tmp_path / "study.log").stat().st_size > 0 and not (
        tmp_path / "j" / "study.db"
    ).exists()
    done = search(
        "digits",
        "flops",
        budget=12,
        out=tmp_path / "j",
        storage=url,
        evolution=evo,
        resume=True,
        **common,
    )
    assert done.resumed == len(part.leaderboard)
    full = search("digits", "flops", budget=12, out=tmp_path / "s", evolution=evo, **common)
    assert [c.key for c in load_run(tmp_path / "j")] == [c.key for c in full.leaderboard]


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + b"\x00" * 200])
def test_non_study_db_on_resume_is_left_untouched(tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "run"
    search("digits", "flops", strategy="random", budget=2, out=out, progress=False)
    db = out / "study.db"
    db.write_bytes(content)
    before = _snapshot(db)
    flags = ["--evaluator", "flops", "--strategy", "random", "--budget", "4", "--quiet"]
    for result in (
        run_cli("search", *flags, "--out", str(out), "--resume"),
        run_cli("export", str(out)),
    ):
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "study" in result.stderr or "database" in result.stderr
        assert _snapshot(db) == before


def test_foreign_or_missing_storage_is_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table users (id integer)")
    conn.close()
    before = _snapshot(other)
    with pytest.raises(autost.AutostError, match="another application"):
        search("digits", "flops", budget=2, out=tmp_path / "a", storage=f"sqlite:///{other}")
    assert _snapshot(other) == before and not (tmp_path / "a").exists()
    missing = tmp_path / "none.db"
    with pytest.raises(autost.AutostError, match="does not exist"):
        search(
            "digits", "flops", budget=2, out=tmp_path / "b", storage=f"sqlite:///{missing}",
            resume=True,
        )  # fmt: skip
    journal = tmp_path / "none.log"
    with pytest.raises(autost.AutostError, match="does not exist"):
        search(
            "digits",
            "flops",
            budget=2,
            out=tmp_path / "c",
            storage=f"journal:{journal}",
            resume=True,
        )
    assert not missing.exists() and not journal.exists()
