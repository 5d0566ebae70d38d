"""The command line: listing presets, help, and one-line errors with exit status 2."""

from __future__ import annotations

import json
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


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist is absent")
def test_search_scores_on_local_mnist_files_with_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autost.evaluator import Evaluator

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
