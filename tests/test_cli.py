"""The command line: listing presets, help, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
