"""Hostile inputs to the CLI: each must be refused with one line on stderr, exit status 2,
and no file created, changed or removed in the working folder.

``python tests/hostile_inputs.py`` runs every row and writes ``tests/hostile_inputs.md``
(the table); ``tests/test_hostile_inputs.py`` runs the same rows and asserts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def _space28(work: Path) -> None:
    text = (ROOT / "search_spaces" / "digits.toml").read_text()
    (work / "space28.toml").write_text(text.replace("image_size = 8", "image_size = 28"))


def _mnist_recipe(work: Path) -> None:
    (work / "empty").mkdir()
    (work / "mnist.toml").write_text(
        '[proxies]\nsahd = 1.0\n[data]\ndataset = "mnist"\n'
        f'root = "{(work / "empty").as_posix()}"\noptions = {{image_size = 8}}\n'
    )


def _empty(work: Path) -> None:
    (work / "empty").mkdir()


def _file(work: Path) -> None:
    (work / "afile").write_text("not a folder\n")


def _list_run(work: Path) -> None:
    run = work / "run"
    run.mkdir()
    (run / "run.json").write_text("[1, 2]\n")
    (run / "study.db").write_bytes(b"")


def _broken_space(work: Path) -> None:
    (work / "broken.toml").write_text("[space\nname = \n")


def _truncated_tune(work: Path) -> None:
    import sqlite3

    tune = work / "tune"
    tune.mkdir()
    with sqlite3.connect(tune / "study.db") as conn:
        conn.execute("create table t (x)")
        conn.executemany("insert into t values (?)", [(str(i) * 200,) for i in range(200)])
    data = (tune / "study.db").read_bytes()
    (tune / "study.db").write_bytes(data[: len(data) // 3])
    (tune / "tune.json").write_text('{"schema_version": 1, "settings": {}}\n')


def _small_config(attention: str) -> dict[str, object]:
    import autost

    return autost.ArchConfig(
        in_channels=1,
        image_size=8,
        num_classes=10,
        timesteps=2,
        embed_dim=32,
        depth=1,
        num_heads=(2,),
        mlp_ratios=(2,),
        attention=(attention,),
        stem="sps",
        stem_pooling="0011",
    ).to_dict()


def _outer_schema(work: Path) -> None:
    import json

    from_dict = _small_config("ssa")
    (work / "config.json").write_text(json.dumps({**from_dict, "schema_version": 99}))
    (work / "best.json").write_text(json.dumps({"schema_version": 99, "config": from_dict}))


def _pickle(work: Path) -> None:
    import pickle

    (work / "plain.pkl").write_bytes(pickle.dumps({"a": [1, 2, 3]}))


def _family(work: Path) -> None:
    import json

    config = _small_config("sdsa")
    config["ssa_flat_proj_lif"] = True
    (work / "flat.json").write_text(json.dumps(config))
    config["ssa_flat_proj_lif"] = False
    config["attention"] = ["ssa"]
    config["sdsa_dvs_pool"] = True
    (work / "dvspool.json").write_text(json.dumps(config))


@dataclass(frozen=True)
class Row:
    """One hostile input: what the issue calls it, the CLI arguments, what to set up first."""

    item: str
    args: tuple[str, ...]
    setup: Callable[[Path], None] | None = None


_SEARCH = ("search", "--evaluator", "sahd", "--budget", "2", "--quiet")
_RUN = ("run", "--space", "digits", "--budget", "2", "--quiet")

ROWS = [
    Row(
        "2 search: 28x28 space, --dataset digits",
        (*_SEARCH, "--space", "space28.toml", "--dataset", "digits", "--out", "run"),
        _space28,
    ),
    Row(
        "3 search: --root an empty folder",
        (
            *_SEARCH,
            "--space",
            "digits",
            "--dataset",
            "mnist",
            "--root",
            "empty",
            "--dataset-option",
            "image_size=8",
            "--out",
            "run",
        ),
        _empty,
    ),
    Row(
        "3 search: a recipe reading missing MNIST files",
        (
            "search",
            "--space",
            "digits",
            "--evaluator",
            "mnist.toml",
            "--budget",
            "2",
            "--out",
            "run",
        ),
        _mnist_recipe,
    ),
    Row("search: --workers 0", (*_SEARCH, "--space", "digits", "--workers", "0", "--out", "run")),
    Row(
        "search: --constraint 'latency<=20 parsecs'",
        (*_SEARCH, "--space", "digits", "--constraint", "latency<=20 parsecs", "--out", "run"),
    ),
    Row("4 run: --budget -1", ("run", "--space", "digits", "--budget", "-1", "--out", "run")),
    Row("4 run: --dataset nosuchset", (*_RUN, "--dataset", "nosuchset", "--out", "run")),
    Row(
        "4 run: --space broken.toml",
        ("run", "--space", "broken.toml", "--out", "run"),
        _broken_space,
    ),
    Row("4 run: 3x32x32 space, digits", ("run", "--space", "autost-tiny", "--out", "run")),
    Row(
        "5 tune: --dataset nosuchset",
        (
            "tune",
            "--space",
            "digits",
            "--dataset",
            "nosuchset",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--out",
            "tune",
        ),
    ),
    Row(
        "5 tune: --root an empty folder",
        (
            "tune",
            "--space",
            "digits",
            "--dataset",
            "mnist",
            "--root",
            "empty",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--out",
            "tune",
        ),
        _empty,
    ),
    Row("6 run: --out an existing file", (*_RUN, "--out", "afile"), _file),
    Row(
        "7 search --resume: run.json a JSON list",
        (*_SEARCH, "--space", "digits", "--out", "run", "--resume"),
        _list_run,
    ),
    Row(
        "8 train: config.json with schema_version 99",
        ("train", "config.json", "--dataset", "digits", "--epochs", "1", "--out", "train"),
        _outer_schema,
    ),
    Row(
        "8 train: best.json with outer schema_version 99",
        ("train", "best.json", "--dataset", "digits", "--epochs", "1", "--out", "train"),
        _outer_schema,
    ),
    Row(
        "9 convert: a plain pickle",
        ("convert", "plain.pkl", "--preset", "spikformer-4-384-cifar10", "-o", "bundle"),
        _pickle,
    ),
    Row(
        "10 tune --resume: a truncated study.db",
        (
            "tune",
            "--space",
            "digits",
            "--dataset",
            "digits",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--out",
            "tune",
            "--resume",
        ),
        _truncated_tune,
    ),
    Row(
        "11 convert: --set an unknown key",
        (
            "convert",
            "plain.pkl",
            "--preset",
            "qkformer-4-384-cifar10",
            "--set",
            "nosuchkey=1",
            "-o",
            "bundle",
        ),
        _pickle,
    ),
    Row(
        "12 train: ssa_flat_proj_lif without SSA",
        ("train", "flat.json", "--dataset", "digits", "--epochs", "1", "--out", "train"),
        _family,
    ),
    Row(
        "12 train: sdsa_dvs_pool without SDSA",
        ("train", "dvspool.json", "--dataset", "digits", "--epochs", "1", "--out", "train"),
        _family,
    ),
]


@dataclass(frozen=True)
class Outcome:
    """What a row did: exit status, stderr lines, whether the folder is unchanged."""

    code: int
    stderr: list[str]
    unchanged: bool

    @property
    def ok(self) -> bool:
        return self.code == 2 and len(self.stderr) == 1 and self.unchanged


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run_row(row: Row, work: Path) -> Outcome:
    """Set ``row`` up in the empty folder ``work``, run it there, compare the folder."""
    if row.setup is not None:
        row.setup(work)
    before = _snapshot(work)
    dirs = sorted(str(p) for p in work.rglob("*") if p.is_dir())
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "AUTOST_CACHE": str(work.parent / "c")}
    result = subprocess.run(
        [sys.executable, "-m", "autost", *row.args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    unchanged = _snapshot(work) == before and dirs == sorted(
        str(p) for p in work.rglob("*") if p.is_dir()
    )
    return Outcome(result.returncode, result.stderr.strip().splitlines(), unchanged)


def main() -> int:
    lines = [
        "# Hostile inputs",
        "",
        "Generated by `python tests/hostile_inputs.py` (asserted by tests/test_hostile_inputs.py).",
        "Each row runs `autost ARGS` in a fresh folder; `unchanged`: no file or folder there was",
        "created, changed or removed.",
        "",
        "| item | autost ARGS | exit | stderr lines | unchanged | stderr |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    failed = 0
    for index, row in enumerate(ROWS):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / f"row{index}"
            work.mkdir()
            outcome = run_row(row, work)
        failed += not outcome.ok
        message = " / ".join(outcome.stderr).replace(str(work), ".").replace("|", "\\|")
        lines.append(
            f"| {row.item} | `{' '.join(row.args)}` | {outcome.code} | {len(outcome.stderr)} "
            f"| {'yes' if outcome.unchanged else 'NO'} | {message} |"
        )
        print(lines[-1], flush=True)
    lines += ["", f"{len(ROWS) - failed} of {len(ROWS)} rows refused as required.", ""]
    (HERE / "hostile_inputs.md").write_text("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
