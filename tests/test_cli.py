"""The command line: listing presets, help, and one-line errors with exit status 2."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import run_cli

import autost
from autost.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_models_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in autost.list_models():
        assert name in out
    assert "9.32M" in out  # spikformer-4-384-cifar10


def test_models_json_and_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "qkformer-*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(autost.list_models("qkformer-*"))
    assert all(r["params"] == autost.count_params(r["name"]) for r in rows)


def test_no_match_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "resnet*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("autost: error:")


def test_module_entry_point_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autost", "models", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert "presets" in result.stdout


def test_out_that_is_a_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autost.cli import main  # in process: the same code as the console script, no start-up

    run = tmp_path / "run"
    search = ["search", "--evaluator", "flops", "--strategy", "random", "--budget", "3"]
    assert main([*search, "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    blocker = tmp_path / "file"
    blocker.write_text("keep me\n")
    stamp = blocker.stat().st_mtime_ns
    cases = [
        ([*search, "--quiet", "--out", str(blocker)], f"--out {blocker} is a file, not a folder"),
        ([*search, "--quiet", "--out", str(blocker / "sub")], f"{blocker} is a file"),
        (["train", "spikformer-4-384-cifar10", "--quiet", "--out", str(blocker)], "is a file"),
        (["export", str(run), "--top", "2", "-o", str(blocker)], "is a file, not a folder"),
        (["export", str(run), "--top", "2", "--out", str(blocker)], "is a file, not a folder"),
        (["export", str(run), "-o", str(blocker / "best.json")], f"{blocker} is a file"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert "Traceback" not in err
        assert blocker.read_text() == "keep me\n" and blocker.stat().st_mtime_ns == stamp


SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


@pytest.mark.parametrize("command", ["search", "train", "tune", "run"])
def test_every_dataset_command_takes_root_and_dataset_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--root ROOT" in text and "--dataset-option KEY=VALUE" in text and "source=test" in text


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist is absent")
def test_search_scores_on_local_mnist_files_with_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autost.search.evaluator import Evaluator

    args = ["search", "--space", "digits", "--evaluator", "sahd", "--strategy", "random"]
    args += ["--budget", "2", "--dataset", "mnist", "--workers", "2", "--quiet"]  # processes
    options = ["--dataset-option", "source=test", "--dataset-option", "image_size=8"]
    result = run_cli(*args, "--root", str(SHARED_MNIST), *options, "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    best = json.loads((tmp_path / "a" / "best.json").read_text())
    # the stored score is sahd on a batch of the real t10k images, scaled to 8x8
    monkeypatch.setenv("AUTOST_LIF_BACKEND", "eager")
    evaluator = Evaluator.load("sahd").with_dataset(
        "mnist", str(SHARED_MNIST), source="test", image_size=8
    )
    expected = evaluator.score(autost.ArchConfig.from_dict(best["config"]))["score"]
    assert best["scores"]["score"] == pytest.approx(expected, rel=1e-6)
    settings = json.loads((tmp_path / "a" / "run.json").read_text())["settings"]
    assert settings["root"] == str(SHARED_MNIST)
    assert settings["dataset_options"] == {"source": "test", "image_size": 8}

    # the root is what is read: an empty folder is a one-line error naming the missing file
    nowhere = tmp_path / "empty"
    nowhere.mkdir()
    empty = run_cli(*args, "--root", str(nowhere), *options, "--out", str(tmp_path / "b"))
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1, empty.stderr
    assert "missing MNIST file t10k-images-idx3-ubyte" in empty.stderr


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist is absent")
def test_train_reads_mnist_t10k_files_with_dataset_options(tmp_path: Path) -> None:
    from testkit import DIGITS_ARCH

    config = tmp_path / "arch.json"
    DIGITS_ARCH.to_json(config)
    args = ["train", str(config), "--dataset", "mnist", "--root", str(SHARED_MNIST), "--quiet"]
    args += ["--epochs", "1", "--batch-size", "512", "--dataset-option", "source=test"]
    result = run_cli(*args, "--dataset-option", "image_size=8", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    status = json.loads((tmp_path / "run" / "train.json").read_text())
    assert status["settings"]["dataset_options"] == {"source": "test", "image_size": 8}
    assert status["status"] == "completed"  # on the t10k files alone: no train files there
    bad = run_cli(*args, "--dataset-option", "sorce=test", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "has no option 'sorce' (options: image_size, seed, source)" in bad.stderr


def test_train_refuses_a_config_file_of_an_unknown_outer_schema_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from testkit import DIGITS_ARCH, cli_in_process

    bundle = DIGITS_ARCH.to_dict()
    config = tmp_path / "config.json"  # as a bundle holds it: the config under "config"
    config.write_text(json.dumps({"schema_version": 99, "config": bundle, "provenance": None}))
    args = ["train", str(config), "--dataset", "digits", "--epochs", "1", "--quiet"]
    code, err = cli_in_process(capsys, *args, "--out", str(tmp_path / "run"))
    assert code == 2 and err.count("\n") == 1, err
    assert f"{config}: unsupported schema_version 99 of the file around the config" in err
    assert not (tmp_path / "run").exists()


def test_proxies_table_fits_every_name_and_shows_whole_first_paragraphs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from autost.proxies import list_proxies

    assert main(["proxies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1 : 1 + len(list_proxies())]
    start = header.index("description")
    for name, row in zip(list_proxies(), rows, strict=True):
        assert row.startswith(f"{name} ") and row[start - 2 : start] == "  ", row
        assert row[start] != " ", row  # every description starts under the header's
    fisher = next(row for row in rows if row.startswith("fisher "))
    assert fisher.endswith(
        "(Theis et al. 2018; Turner et al., ICLR 2020), as zero-cost-nas's ``fisher`` "
        "(Abdelfattah et al., ICLR 2021)."
    )


def test_run_help_gives_every_option_a_text_and_its_default() -> None:
    from autost.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = sub.choices["run"]
    for action in run._actions:
        assert action.help, action.option_strings
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert "default: %(default)s)" in action.help, action.option_strings
    text = run.format_help()
    for flag, default in [
        ("--dataset", "digits"),
        ("--evaluator", "zero-cost"),
        ("--strategy", "evolution"),
        ("--budget", "200"),
        ("--top", "3"),
        ("--trials", "6"),
        ("--tune-epochs", "3"),
        ("--epochs", "30"),
        ("--seed", "0"),
        ("--out", "runs/run"),
    ]:
        entry = text.split(f"\n  {flag} ", 1)[1].split("\n  --", 1)[0]
        assert f"default: {default})" in " ".join(entry.split()), (flag, entry)


def test_readme_run_usage_names_every_option_and_out_is_optional() -> None:
    from autost.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    bullet = readme.split("- `autost run ", 1)[1].split("` — ", 1)[0]
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {f for a in sub.choices["run"]._actions for f in a.option_strings if f != "-h"}
    assert flags - {"--help"} == set(re.findall(r"--[a-z-]+", bullet))
    assert "[--out DIR]" in bullet and "--space NAME|PATH" in bullet
    # the first command's file list names every file the zero-cost search writes
    assert "`run.json`, and\n`reference.json`, the reference pool the ensemble ranks against" in (
        readme
    )


def test_readme_states_how_the_per_candidate_cost_was_measured() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "0.04 CPU seconds per digits candidate, against" not in readme  # the bare claim
    assert (
        "a median 0.024 CPU seconds per candidate (process time, one torch thread) of the "
        "ranking benchmark's open digits pool" in readme
    )
    command = "`OMP_NUM_THREADS=1 /usr/bin/time autost search --space digits --evaluator zero-cost"
    assert f"{command} --budget 200` with an empty `$AUTOST_CACHE` took 23.0 s (median of 3" in (
        readme
    )


def _tpe_search_and_tune_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, list[str]]:
    """A TPE search (Optuna's experimental ``group``) and a tune run of its top config,
    recorded (tune.json, study.db) and stopped before Ray starts."""
    import autost.tune.tuner

    search = tmp_path / "search"
    args = ["search", "--evaluator", "flops", "--strategy", "tpe", "--budget", "3", "--quiet"]
    assert main([*args, "--out", str(search)]) == 0
    real_open = autost.tune.tuner._open_study

    def open_then_stop(out: Path, record: dict[str, object], create: bool) -> object:
        real_open(out, record, create)
        raise KeyboardInterrupt  # the run is recorded: stop before Ray

    monkeypatch.setattr(autost.tune.tuner, "_open_study", open_then_stop)
    tune = ["tune", "--from", str(search), "--top", "1", "--trials", "1", "--epochs", "1"]
    tune += ["--quiet", "--out", str(tmp_path / "tune")]
    assert main(tune) == 130
    monkeypatch.undo()
    capsys.readouterr()
    return search, tmp_path / "tune", [*tune, "--resume"]


def test_optuna_warnings_never_reach_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil
    import sqlite3
    import warnings

    search, tune, resume = _tpe_search_and_tune_run(tmp_path, monkeypatch, capsys)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["export", str(search), "-o", str(tmp_path / "best.json")]) == 0
    assert [str(w.message) for w in seen] == []  # TPE's ExperimentalWarning included
    assert capsys.readouterr().err == ""

    # a truncated study.db, and one whose trials pages are damaged (its schema reads fine)
    for damage in ("truncated", "trials-page"):
        run = tmp_path / damage
        shutil.copytree(tune, run)
        db = run / "study.db"
        data = bytearray(db.read_bytes())
        if damage == "truncated":
            data = data[:100]
        else:
            with sqlite3.connect(db) as conn:  # the table and its indexes: whichever is read
                page = conn.execute("pragma page_size").fetchone()[0]
                roots = conn.execute(
                    "select rootpage from sqlite_master where tbl_name = 'trials'"
                ).fetchall()
            conn.close()
            for (root,) in roots:
                data[(root - 1) * page : root * page] = bytes(page)
        db.write_bytes(bytes(data))
        result = run_cli(*resume[:-3], "--out", str(run), "--resume")
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr  # our line only: no Optuna lines
        assert result.stderr.startswith("autost: error: "), result.stderr
        assert "nothing was changed" in result.stderr
        assert db.read_bytes() == bytes(data)


def test_dev_extras_cannot_move_the_torch_the_readme_pins() -> None:
    import tomllib
    from packaging.requirements import Requirement

    readme = (ROOT / "README.md").read_text()
    second = next(line for line in readme.splitlines() if "-e '.[dev]'" in line)
    pinned = re.search(r"torch==((\d+)\.(\d+)\.\d+) ", second)
    assert pinned is not None, second
    major, minor = int(pinned[2]), int(pinned[3])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = {r.name: r for r in map(Requirement, project["optional-dependencies"]["dev"])}
    # torchvision 0.N pairs with torch 2.(N - 15); 0.29 needs torch >= 2.14 (a CUDA build on PyPI)
    vision = dev["torchvision"].specifier
    assert vision.contains(f"0.{minor + 15}.0") and not vision.contains(f"0.{minor + 16}.0")
    assert not dev["torchaudio"].specifier.contains(f"{major}.{minor + 1}.0")

    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci.splitlines()  # the README's second command, verbatim
    check = ci.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    assert ci.index(second) < ci.index(check) and "torch.__version__" in check
    import torch

    def run_check(before: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", check, before]
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)

    moved = run_check(f"{torch.__version__.split('+')[0]}+another-build")
    assert moved.returncode != 0 and "replaced torch" in moved.stderr, moved
    if torch.__version__.split("+")[0] == pinned[1]:  # this environment has the pinned torch
        kept = run_check(torch.__version__)
        assert kept.returncode == 0 and torch.__version__ in kept.stdout, kept


def test_fast_tier_is_documented_and_the_full_run_keeps_every_test() -> None:
    import tomllib

    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    options = pytest_ini["ini_options"]
    assert any(m.startswith("slow:") for m in options["markers"])
    assert "-m" not in options.get("addopts", "").split()  # plain pytest runs the slow tests
    readme = (ROOT / "README.md").read_text()
    assert "python -m pip install torch==2.13.0 -e '.[dev]' && python -m pytest\n" in readme
    development = readme.split("\n## Development\n", 1)[1].split("\n## ", 1)[0]
    assert 'python -m pytest -m "not slow"' in development
    ci = (ROOT / ".ci" / "run").read_text()
    assert "not slow" not in ci and "-m pytest\n" in ci


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """``autost models | head -1``: the pipe closes before autost writes; no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "autost", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the import is done and the table printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
