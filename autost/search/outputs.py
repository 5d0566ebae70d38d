"""Run-directory files (leaderboard.csv, best.json, run.json), progress, loading a run, export."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.runtime.faults import kill_point
from autost.search.study import (
    STUDY_NAME,
    Candidate,
    open_study,
    rank_leaderboard,
    stored_candidates,
)


def blocking_file(path: Path) -> Path | None:
    """The existing file that ``path`` is, or lies under; ``None`` when it can be a folder."""
    for part in (path, *path.parents):
        if part.exists():
            return None if part.is_dir() else part
    return None


def check_out_folder(path: Path, flag: str = "--out") -> None:
    """Refuse, before anything is written, a folder path that is or lies under a file."""
    blocker = blocking_file(path)
    if blocker is not None:
        where = "" if blocker == path else f": {blocker}"
        raise AutostError(f"{flag} {path}{where} is a file, not a folder")


def leaderboard_rows(board: Sequence[Candidate]) -> list[dict[str, Any]]:
    """Flat rows of the leaderboard (as written to ``leaderboard.csv``)."""
    rows = []
    for rank, cand in enumerate(board, 1):
        cfg = cand.config
        row: dict[str, Any] = {"rank": rank, "key": cand.key, "score": cand.score}
        row.update({f"proxy_{k}": v for k, v in sorted(cand.scores.items()) if k != "score"})
        row.update(cand.metrics)
        row.update(
            {
                "depth": cfg.depth,
                "embed_dim": cfg.embed_dim,
                "timesteps": cfg.timesteps,
                "num_heads": " ".join(map(str, cfg.num_heads)),
                "mlp_ratios": " ".join(f"{r:g}" for r in cfg.mlp_ratios),
                "attention": " ".join(cfg.attention),
                "config": json.dumps(cfg.to_dict(), separators=(",", ":")),
            }
        )
        rows.append(row)
    return rows


def write_outputs(out: Path, board: Sequence[Candidate], score_meaning: str = "") -> None:
    """Write ``leaderboard.csv`` and ``best.json`` (which says what ``score`` means)."""
    rows = leaderboard_rows(board)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "leaderboard.csv", buffer.getvalue())
    kill_point("search-outputs")
    best = board[0]
    atomic_write_text(
        out / "best.json",
        json.dumps(
            {
                "schema_version": 1,
                "key": best.key,
                "score_meaning": score_meaning,
                "scores": best.scores,
                "metrics": best.metrics,
                "config": best.config.to_dict(),
            },
            indent=2,
        )
        + "\n",
    )


def write_run_json(path: Path, settings: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Write the run record ``run.json`` (atomically): ``settings``, when the run started and
    was resumed; ``previous`` is the record a resumed run continues (``None``: a fresh start)."""
    import optuna
    import torch

    from autost.version import __version__

    started = previous is None
    previous = previous or {}
    data = {
        "schema_version": 1,
        "settings": settings,
        "started": previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "resumed": [
            *previous.get("resumed", []),
            *([] if started else [time.strftime("%Y-%m-%dT%H:%M:%S%z")]),
        ],
        "versions": {
            "autost": __version__,
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def progress_bar(total: int, done: int, enabled: bool) -> Any:
    """The search's bar on stderr (log lines when stderr is no terminal)."""
    from autost.training.progress import progress_bar as bar

    return bar(total, desc="search", unit="cand", initial=min(done, total), enabled=enabled)


def load_run(out: str | Path) -> list[Candidate]:
    """The leaderboard of a finished or interrupted run directory (best first)."""
    out = Path(out)
    run_file = out / "run.json"
    if not run_file.exists():
        raise AutostError(f"{out}: not a search run directory (run.json is missing)")
    from autost.search.folder import read_record

    settings = read_record(run_file)["settings"]
    storage = settings.get("storage")
    study = open_study(
        out,
        None if storage == "study.db" else storage,
        settings["strategy"],
        settings["seed"],
        resume=True,
        study_name=settings.get("study_name", STUDY_NAME),
    )
    recipe = settings.get("evaluator_recipe")
    weights = recipe.get("proxies") if isinstance(recipe, dict) else None
    return rank_leaderboard(
        stored_candidates(study), weights if isinstance(weights, dict) else None
    )


def export(out: str | Path, top: int = 1, target: str | Path | None = None) -> list[Path]:
    """Write the ``top`` configs of run ``out``: one JSON file when ``top == 1``, else a folder
    of ``rank-NN.json`` files; each rebuilds with ``autost.create_model(path)``."""
    board = load_run(out)
    if not board:
        raise AutostError(f"{out}: the run has no scored candidate yet")
    if top < 1:
        raise AutostError(f"--top must be >= 1, got {top}")
    picked = board[:top]
    target = (
        Path(target)
        if target is not None
        else Path(out) / ("best-export.json" if top == 1 else "export")
    )
    written = []
    if top == 1:
        blocker = blocking_file(target.parent)
        if blocker is not None:
            raise AutostError(f"--output {target}: {blocker} is a file, not a folder")
        files = [(target, picked[0])]
    else:
        if target.suffix == ".json":
            raise AutostError(f"--top {top} writes several files: give a folder, not {target}")
        check_out_folder(target, "--output")
        files = [(target / f"rank-{i:02d}.json", c) for i, c in enumerate(picked, 1)]
    for path, cand in files:
        payload = {
            "schema_version": 1,
            "source": str(out),
            "key": cand.key,
            "scores": cand.scores,
            "metrics": cand.metrics,
            "config": cand.config.to_dict(),
        }
        if path.exists():
            raise AutostError(f"{path} exists; not overwriting it")
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
        written.append(path)
    return written
