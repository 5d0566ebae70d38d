"""Extract SpikeNAS-Bench's CIFAR-10 table into ``benchmarks/data/spikenas_cifar10.csv``.

Run: ``python benchmarks/spikenas_extract.py [--mirror PATH] [--out CSV]``.

Source: SpikeNAS-Bench (Sun et al., "SpikeNAS-Bench: Benchmarking NAS Algorithms for Spiking
Neural Network Architecture", IEEE Transactions on Artificial Intelligence, 2025,
ieeexplore.ieee.org/abstract/document/10855683), github.com/tju-sun-lab/SpikeNAS-Bench. Each
of its 5^6 = 15,625 cells was trained on CIFAR-10 (100 epochs; 690 cells 200 epochs);
``data/CIFAR10/<id>/train_process.txt`` holds the architecture id, the parameter count, one
line per epoch (``epoch, train_acc, train_loss, val_acc, val_loss``), ``test accuracy: X``,
the firing rates and the training time. The id is decoded into its six edge operations by
:func:`autost.model.spikenas.decode` (the repository's ``get_cntmat_3``) and stored as the
benchmark's operation indices (0 zero, 1 skip, 2/3/4 conv after a LIF of threshold
0.5/1.0/1.5); every recorded parameter count is checked against
:func:`autost.model.spikenas.spikenas_param_count`. The logs are read from the bare git mirror with
one ``git cat-file --batch``. Only the CIFAR-10 table is used: the others (CIFAR-100,
Tiny-ImageNet, a few hundred cells each) are left for an independent check.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from autost.model.spikenas import EDGES, NUM_ARCHITECTURES, OPS, decode, spikenas_param_count

REPO = "tju-sun-lab/SpikeNAS-Bench"
MIRROR = Path("/work/.mirror/tju-sun-lab+SpikeNAS-Bench/repo")
OUT = Path(__file__).parent / "data" / "spikenas_cifar10.csv"
EDGE_COLUMNS = [f"edge_{i}{j}" for i, j in EDGES]
COLUMNS = [
    "id",
    *EDGE_COLUMNS,
    "params",
    "epochs",
    "train_acc",
    "val_acc",
    "test_acc",
    "train_seconds",
]


def parse_log(text: str) -> dict[str, Any]:
    """The facts of one ``train_process.txt``: id, params, last-epoch train/val accuracy, test
    accuracy (all in percent) and training seconds. Raises ``ValueError`` on a malformed log."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    arch = int(_field(lines[0], "architecture id:"))
    params = int(_field(lines[1], "model parameters:"))
    epochs = [
        [float(v) for v in line.split(",")] for line in lines[3:] if re.match(r"^\d+\.\d+,", line)
    ]
    if not epochs or [int(e[0]) for e in epochs] != list(range(len(epochs))):
        raise ValueError(f"architecture {arch}: epoch lines are not 0, 1, 2, ...")
    test = [line for line in lines if line.startswith("test accuracy:")]
    if len(test) != 1:
        raise ValueError(f"architecture {arch}: no single 'test accuracy:' line")
    hms = re.findall(r"[\d.]+", next(line for line in lines if line.startswith("Elapsed time")))
    _, train_acc, _, val_acc, _ = epochs[-1]
    return {
        "id": arch,
        "params": params,
        "epochs": len(epochs),
        "train_acc": train_acc,
        "val_acc": val_acc,
        "test_acc": float(_field(test[0], "test accuracy:")),
        "train_seconds": round(float(hms[0]) * 3600 + float(hms[1]) * 60 + float(hms[2]), 1),
    }


def _field(line: str, prefix: str) -> str:
    if not line.startswith(prefix):
        raise ValueError(f"expected a line starting {prefix!r}, got {line!r}")
    return line[len(prefix) :].strip()


def read_logs(mirror: Path) -> tuple[str, list[str]]:
    """The mirror's HEAD commit and the 15,625 CIFAR-10 logs, in id order (one git process)."""
    commit = subprocess.run(
        ["git", "-C", str(mirror), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    request = "".join(
        f"{commit}:data/CIFAR10/{i}/train_process.txt\n" for i in range(NUM_ARCHITECTURES)
    )
    raw = subprocess.run(
        ["git", "-C", str(mirror), "cat-file", "--batch"],
        input=request.encode(),
        check=True,
        capture_output=True,
    ).stdout
    texts, pos = [], 0
    for i in range(NUM_ARCHITECTURES):
        end = raw.index(b"\n", pos)
        header = raw[pos:end].decode().split()
        if header[-1] == "missing":
            raise SystemExit(f"{mirror}: no log for architecture {i}")
        size = int(header[2])
        texts.append(raw[end + 1 : end + 1 + size].decode("utf-8"))
        pos = end + 1 + size + 1  # content, then a newline
    return commit, texts


def header(commit: str) -> list[str]:
    """The ``#`` comment lines at the top of the CSV (skip them with :func:`read_table`)."""
    ops = ", ".join(f"{k} {op}" for k, op in enumerate(OPS))
    return [
        "SpikeNAS-Bench CIFAR-10 table (Sun et al., IEEE Trans. Artificial Intelligence 2025)",
        f"source: github.com/{REPO} commit {commit}, data/CIFAR10/<id>/train_process.txt",
        "regenerate: python benchmarks/spikenas_extract.py; model: autost.model.spikenas",
        "edge_ij: operation index on the edge from node i to node j of the 4-node cell: "
        f"{ops} (zero: x * 0; skip: identity; conv_tXY: LIF of threshold X.Y -> conv3x3 -> BN); "
        "id = sum_k edge_k * 5**k over edges 01, 02, 03, 12, 13, 23",
        "params: parameter count recorded by the benchmark; epochs: epochs trained (100; 690 "
        "cells 200); train_acc/val_acc: last epoch (train/val halves of the CIFAR-10 training "
        "set); test_acc: CIFAR-10 test set; all in percent; train_seconds: recorded training time",
    ]


def read_table(path: Path = OUT) -> list[dict[str, str]]:
    """The rows of the CSV at ``path`` (its ``#`` header lines skipped)."""
    with Path(path).open() as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def source_commit(path: Path = OUT) -> str:
    """The SpikeNAS-Bench commit named in the CSV's header (``unknown`` if none)."""
    with Path(path).open() as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            found = re.search(r"commit ([0-9a-f]{40})", line)
            if found:
                return found.group(1)
    return "unknown"


def extract(mirror: Path, out: Path) -> int:
    """Write the CSV atomically; the number of rows written."""
    commit, texts = read_logs(mirror)
    rows = []
    for i, text in enumerate(texts):
        row = parse_log(text)
        if row["id"] != i:
            raise SystemExit(f"data/CIFAR10/{i}: the log names architecture {row['id']}")
        expected = spikenas_param_count(i)
        if row["params"] != expected:
            raise SystemExit(f"architecture {i}: {row['params']} parameters, model has {expected}")
        codes = [OPS.index(op) for op in decode(i)]
        rows.append({**row, **dict(zip(EDGE_COLUMNS, codes, strict=True))})
    buffer = io.StringIO()
    buffer.writelines(f"# {line}\n" for line in header(commit))
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(buffer.getvalue())
    os.replace(tmp.name, out)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=MIRROR, help="bare git mirror of the repo")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    n = extract(args.mirror, args.out)
    print(f"{n} architectures -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
