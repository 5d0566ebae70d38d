"""What the training-free search tests share: a small evolution, a small recipe, the leaderboard."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from testkit import run_cli

SMALL_EVO = [
    "--population",
    "6",
    "--parents",
    "3",
    "--mutations",
    "3",
    "--crossovers",
    "3",
    "--generations",
    "5",
]


def leaderboard(path: Path) -> list[dict[str, str]]:
    with (path / "leaderboard.csv").open() as handle:
        return list(csv.DictReader(handle))


RECIPE = """
description = "small data ensemble for tests"
[proxies]
sahd = 1.0
flops = 1.0
[data]
dataset = "digits"
batch_size = 16
[reference]
size = 8
"""


def flops_search(out: Path, budget: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """``autost search --space digits --evaluator flops --budget BUDGET --out OUT --quiet
    EXTRA`` in a subprocess."""
    return run_cli(
        *["search", "--space", "digits", "--evaluator", "flops", "--budget", str(budget)],
        *["--out", str(out), "--quiet", *extra],
    )
