"""No dead-end search folders: checks before writing, a fresh start for a run that scored
nothing, and SIGKILL at every named point of a search followed by ``--resume``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from search_helpers import RECIPE, leaderboard
from testkit import ROOT, cli_env, run_cli

from autost.errors import AutostError
from autost.runtime.faults import KILL_ENV
from autost.search import search
from autost.search.folder import folder_state


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _search_args(recipe: Path, out: Path, *extra: str) -> list[str]:
    return [
        *["search", "--space", "digits", "--evaluator", str(recipe), "--strategy", "random"],
        *["--budget", "6", "--seed", "3", "--quiet", "--out", str(out), *extra],
    ]


@pytest.mark.parametrize(
    "case",
    [
        ["--root", "EMPTY"],  # digits ignores root, but a recipe reading mnist does not
        ["--dataset", "mnist", "--root", "EMPTY"],
        ["--dataset", "nosuchset"],
        ["--dataset", "mnist", "--root", "EMPTY", "--dataset-option", "image_size=8"],
        ["--workers", "0"],
        ["--budget", "0"],
        ["--space", "SPACE28"],  # a 28x28 space that the chosen dataset does not fit
    ],
)
def test_refused_search_writes_nothing(tmp_path: Path, case: list[str]) -> None:
    (tmp_path / "empty").mkdir()
    space = tmp_path / "space28.toml"
    space.write_text(
        (ROOT / "search_spaces" / "digits.toml")
        .read_text()
        .replace("image_size = 8", "image_size = 28")
    )
    args = [a.replace("EMPTY", str(tmp_path / "empty")) for a in case]
    args = [a.replace("SPACE28", str(space)) for a in args]
    out = tmp_path / "run"
    base = ["search", "--space", "digits", "--evaluator", "sahd", "--budget", "2", "--quiet"]
    if "--space" in args:
        base = base[:1] + base[3:] + ["--dataset", "digits"]
    result = run_cli(*base, *args, "--out", str(out))
    if case == ["--root", "EMPTY"]:  # digits needs no files: the run is fine
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_misfit_recipe_dataset_gets_a_standin_recorded_in_run_json(tmp_path: Path) -> None:
    space = tmp_path / "space28.toml"
    space.write_text(
        (ROOT / "search_spaces" / "digits.toml")
        .read_text()
        .replace("image_size = 8", "image_size = 28")
    )
    result = search(space, "sahd", strategy="random", budget=2, out=tmp_path / "r", progress=False)
    data = json.loads((tmp_path / "r" / "run.json").read_text())["settings"]["data"]
    assert data["standin"] is True and data["dataset"] == "digits"
    assert data["options"]["image_size"] == 28
    assert len(result.leaderboard) == 2


def test_user_named_misfit_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AutostError, match="pass --dataset with 3-channel images"):
        search("autost-tiny", "sahd", budget=1, dataset="digits", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_run_that_scored_nothing_starts_afresh(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert run_cli(*_search_args(recipe, full)).returncode == 0
    # a record and a study with no scored candidate, made with other settings
    assert run_cli(*_search_args(recipe, cut, "--budget", "1")).returncode == 0
    study = cut / "study.db"
    import sqlite3

    with sqlite3.connect(study) as conn:
        conn.execute("delete from trial_values")
        conn.execute("delete from trial_user_attributes")
        conn.execute("delete from trial_params")
        conn.execute("delete from trials")
    assert folder_state(cut, None, "autost-search").scored == 0
    (cut / "leaderboard.csv").unlink()
    (cut / "best.json").unlink()
    rerun = run_cli(*_search_args(recipe, cut, "--seed", "3"))  # no --resume needed
    assert rerun.returncode == 0, rerun.stderr
    assert leaderboard(cut) == leaderboard(full)
    record = json.loads((cut / "run.json").read_text())
    assert record["settings"]["budget"] == 6 and record["resumed"] == []


def test_resume_of_a_run_with_a_list_for_a_record_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "r"
    search("digits", "flops", strategy="random", budget=2, out=out, progress=False)
    (out / "run.json").write_text("[1, 2]\n")
    before = _files(out)
    result = run_cli("search", "--space", "digits", "--budget", "2", "--out", str(out), "--resume")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"autost: error: {out / 'run.json'}: not a run record (expected an object with a "
        "'settings' table, got list)"
    ]
    assert _files(out) == before


#: every named point of a search; ``@N`` is the N-th time it is reached
KILL_POINTS = [
    "search-record",
    "search-study",
    "search-reference",
    "search-reference-candidate@1",
    "search-reference-candidate@5",
    "search-scoring",
    "search-before-trial@1",
    "search-trial@1",
    "search-before-trial@4",
    "search-trial@4",
    "search-trial@6",
    "search-outputs",
]


@pytest.mark.slow
def test_sigkill_at_every_point_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    full = tmp_path / "full"
    assert run_cli(*_search_args(recipe, full)).returncode == 0
    expected = leaderboard(full)
    for point in KILL_POINTS:
        out = tmp_path / point.replace("@", "-")
        killed = subprocess.run(
            [sys.executable, "-m", "autost", *_search_args(recipe, out)],
            cwd=ROOT,
            # a cache of its own: the full run's cached pool would skip the pool's kill points
            env={**cli_env(), KILL_ENV: point, "AUTOST_CACHE": str(out) + "-cache"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr)
        resumed = run_cli(*_search_args(recipe, out, "--resume"))
        assert resumed.returncode == 0, (point, resumed.stderr)
        assert leaderboard(out) == expected, point
        rerun = run_cli(*_search_args(recipe, out))  # scored runs refuse a plain re-run
        assert rerun.returncode == 2 and "--resume" in rerun.stderr, point


def test_kill_env_is_unset_in_tests() -> None:
    assert KILL_ENV not in os.environ
