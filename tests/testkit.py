"""What several test files share: the repository root, a small digits architecture, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import autost

ROOT = Path(__file__).resolve().parents[1]
# from the digits space: T=2, embed 64, one SSA block with 2 heads and MLP ratio 2 (96k params)
DIGITS_ARCH = autost.ArchConfig(
    in_channels=1,
    image_size=8,
    num_classes=10,
    timesteps=2,
    stem="sps",
    stem_pooling="0011",
    embed_dim=64,
    depth=1,
    num_heads=(2,),
    mlp_ratios=(2,),
    attention=("ssa",),
)


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: the eager LIF op (reproducible), no Ray auth."""
    return {**os.environ, "AUTOST_LIF_BACKEND": "eager", "RAY_AUTH_MODE": "disabled"}


def cli_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``autost ARGS`` in this process (for input refused before any work starts): its exit
    status and what it printed on stderr."""
    from autost.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m autost ARGS`` from the repository root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "autost", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
    )


#: One model per stem, attention type, MLP, TIM and GAC, shrunk by each test module: (preset,
#: overrides); the gradient and memory tests add their own cases.
BLOCK_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sps-ssa": ("spikformer-4-384-cifar10", {}),
    "sps-tim": ("spikformer-4-384-cifar10", {"tim": True}),
    "sps-semm-emsp": ("spikformer-4-384-cifar10", {"attention": "semm", "mlp": "emsp"}),
    "sps-membrane-sdsa": ("sdt-2-512-cifar10", {}),
    "qk-cifar": ("qkformer-4-384-cifar10", {}),
    "qk-cifar-channel": (
        "qkformer-4-384-cifar10",
        {"attention": ("qk-channel", "qk-channel", "ssa", "ssa")},
    ),
    "qk-imagenet": (
        "qkformer-10-384-imagenet",
        {"depth": 3, "stages": (1, 1, 1), "attention": ("qk-token", "qk-token", "ssa")},
    ),
    "qk-dvs": ("qkformer-2-256-dvsgesture", {}),
    "gac": ("spikformer-4-384-cifar10", {"coding": "gac"}),
}
