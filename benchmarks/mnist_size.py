"""Does a larger MNIST input spread a budget band's accuracies? (issue 16: "raise the MNIST
input to 28x28 if the accuracies saturate").

Run: ``python benchmarks/mnist_size.py [--pool params-200k] [--n 4] [--size 28]``
(resumable). Trains the first ``--n`` architectures of a band pool of ``ranking.py`` on MNIST
at ``--size`` x ``--size`` input with the ranking recipe otherwise unchanged (10 epochs, lr
5e-3, batch 64, seed 0, fp32, the t10k files split 70/15/15) into
``OUT/mnist_size_<pool>_<size>.csv``, and sets them beside the same architectures' 16x16
trainings of ``OUT/ranking_accuracy_<pool>.csv`` (seed 0) and their digits accuracy (mean of
the seeds): per size the accuracy range and standard deviation over the architectures, and
Kendall's tau between the sizes. Writes ``OUT/mnist_size.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

import torch
from ranking_pools import BAND_POOLS, MNIST_ROOT, band_pool, train_missing, trained
from rankstats import machine
from scipy.stats import kendalltau

import autost.data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="params-200k", choices=sorted(BAND_POOLS))
    parser.add_argument("--n", type=int, default=4, help="first architectures of the pool")
    parser.add_argument("--size", type=int, default=28, help="MNIST input size to compare")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--mnist-root", default=str(MNIST_ROOT))
    parser.add_argument("--report-only", action="store_true", help="train nothing")
    args = parser.parse_args()
    os.environ.setdefault("AUTOST_LIF_BACKEND", "eager")
    torch.set_num_threads(1)
    out = Path(args.out)
    stored = json.loads((out / f"ranking_pool_{args.pool}.json").read_text())
    configs = band_pool(out, args.pool, len(stored["configs"]))[: args.n]
    path = out / f"mnist_size_{args.pool}_{args.size}.csv"
    settings = {"epochs": args.epochs, "device": "cpu", "mnist_root": args.mnist_root}
    settings["mnist_size"] = args.size
    settings["lif_backend"] = os.environ["AUTOST_LIF_BACKEND"]  # as its 28x28 table was trained
    if args.report_only:
        larger = trained(path, args.epochs)
    else:
        larger = train_missing(path, configs, ["mnist"], [0], settings)
    base = trained(out / f"ranking_accuracy_{args.pool}.csv", args.epochs)
    archs = [i for i in range(len(configs)) if ("mnist", i, 0) in larger.keys() & base.keys()]
    if len(archs) < 2:
        raise SystemExit(f"{len(archs)} architectures trained at both sizes: nothing to compare")
    digits = [
        statistics.mean(v for (d, a, _), v in base.items() if d == "digits" and a == i)
        for i in archs
    ]
    columns_digits = "digits 8x8 (mean of seeds)"
    columns = {
        columns_digits: digits,
        "mnist 16x16": [base[("mnist", i, 0)] for i in archs],
        f"mnist {args.size}x{args.size}": [larger[("mnist", i, 0)] for i in archs],
    }
    n_val = len(autost.data.load_dataset("mnist", args.mnist_root, "val", source="test"))
    command = " ".join(["python", "benchmarks/mnist_size.py", *sys.argv[1:]])
    lines = [
        f"# MNIST input size against a budget band's spread (`{args.pool}`)",
        "",
        f"Written by `{command}` ({machine()}).",
        f"Architectures 0-{archs[-1]} of `{args.pool}` ({len(archs)} trained at both sizes), "
        f"the ranking recipe ({args.epochs} epochs, lr 5e-3, batch 64, seed 0, fp32) on MNIST "
        "t10k (70/15/15) at two input sizes; validation accuracy of the last epoch. Noise of "
        "one accuracy: the binomial standard error sqrt(p(1-p)/n) at the column's mean "
        f"accuracy p and the {n_val} validation images; a spread over architectures near it "
        "cannot rank them.",
        "",
        "| arch | " + " | ".join(columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for row, i in enumerate(archs):
        lines.append(f"| {i} | " + " | ".join(f"{c[row]:.4f}" for c in columns.values()) + " |")
    lines += [
        "",
        "| input | range | max - min | std over architectures | noise of one accuracy "
        "| tau with 16x16 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, values in columns.items():
        tau = kendalltau(values, columns["mnist 16x16"]).statistic
        against = "" if name == "mnist 16x16" else f"{tau:+.3f}"
        mean = statistics.mean(values)
        noise = f"{math.sqrt(mean * (1 - mean) / n_val):.4f}" if name != columns_digits else ""
        lines.append(
            f"| {name} | {min(values):.4f}-{max(values):.4f} | {max(values) - min(values):.4f} | "
            f"{statistics.stdev(values):.4f} | {noise} | {against} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "mnist_size.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
