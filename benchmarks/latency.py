"""Predicted against measured latency per search space (issue 28, items 2 and 5).

For each space: ``profile_space`` builds its latency table on this CPU (the cost of profiling
is timed; a space with too many block kinds to enumerate is profiled on demand, each kind
timed when a prediction first needs it, which the profiling time then leaves out). Then
``--n`` candidates drawn with seed 1 are predicted from the table and measured whole with
``autost.measure_latency`` (batch 1, ``--threads`` torch threads, 10 timed forwards after 3
warm-up ones, no cache). Reported per space: Spearman rho and the median absolute percentage
error (MdAPE) of the prediction, and Spearman rho between analytic FLOPs and the measured
latency (where they disagree, a FLOPs budget is not a latency budget).

Run::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/latency.py --spaces digits,autost-tiny --n 50

``results/latency.md`` and ``results/latency.json`` gain one section per space (a space run
again replaces its own). GPU: not measured here (no GPU on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from rankstats import machine

import autost
from autost.io import atomic_write_text
from autost.search.latency_table import block_kinds, profile_space
from autost.search.space import SearchSpace

RESULTS = Path(__file__).parent / "results"


def run_space(name: str, n: int, threads: int, fit: int) -> dict[str, Any]:
    space = SearchSpace.load(name)
    start = time.perf_counter()
    try:
        count = len(block_kinds(space))
    except autost.AutostError:
        count = 0  # too many to enumerate: timed on demand, during the predictions below
    table = profile_space(space, threads=threads, fit=fit, progress=True, on_demand=True)
    profile_s = time.perf_counter() - start
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        cfg = space.sample(rng)
        predicted = table.predict(cfg)
        measured = autost.measure_latency(cfg, threads=threads, cache=False)
        flops = autost.estimate_cost(cfg).flops
        rows.append({"predicted_ms": predicted, "measured_ms": measured.median_ms,
                     "spread_ms": [measured.p10_ms, measured.p90_ms], "flops": flops,
                     "load1": os.getloadavg()[0]})  # fmt: skip
        print(f"{name} {i + 1}/{n}: predicted {predicted:.2f} ms, measured "
              f"{measured.median_ms:.2f} ms", flush=True)  # fmt: skip
    pred = np.array([r["predicted_ms"] for r in rows])
    meas = np.array([r["measured_ms"] for r in rows])
    flops = np.array([r["flops"] for r in rows])
    return {
        "space": name,
        "block_kinds": count,
        "kinds_timed": len(table.blocks),
        "profile_s": round(profile_s, 1),
        "constant_ms": table.constant_ms,
        "n": n,
        "spearman_rho": float(spearmanr(pred, meas).statistic),
        "mdape": float(np.median(np.abs(pred - meas) / meas)),
        "flops_latency_rho": float(spearmanr(flops, meas).statistic),
        "measured_ms_range": [float(meas.min()), float(meas.max())],
        "load1_range": [min(r["load1"] for r in rows), max(r["load1"] for r in rows)],
        "rows": rows,
    }


def write(results: dict[str, Any], threads: int) -> None:
    lines = [
        "# Latency table: predicted against measured latency",
        "",
        "Written by `benchmarks/latency.py` (its docstring has the command); "
        f"{machine()}, {threads} torch thread(s), batch 1, CPU. GPU: not measured (no GPU "
        "was lent). Target: Spearman rho >= 0.95 and MdAPE <= 10% on CPU.",
        "",
        "| space | block kinds | profiling s | candidates | measured ms | Spearman rho | MdAPE "
        "| target met | FLOPs-latency rho | load |",
        "|---|---:|---:|---:|---|---:|---:|---|---:|---|",
    ]
    for r in results.values():
        met = "yes" if r["spearman_rho"] >= 0.95 and r["mdape"] <= 0.10 else "no"
        lo, hi = r["measured_ms_range"]
        lines.append(
            f"| {r['space']} | {r['block_kinds'] or 'too many: on demand'} | "
            f"{r['profile_s']:.1f} | {r['n']} | "
            f"{lo:.1f}-{hi:.1f} | {r['spearman_rho']:.3f} | {100 * r['mdape']:.1f}% | {met} | "
            f"{r['flops_latency_rho']:.3f} | {r['load1_range'][0]:.1f}-{r['load1_range'][1]:.1f} |"
        )
    atomic_write_text(RESULTS / "latency.md", "\n".join(lines) + "\n")
    atomic_write_text(RESULTS / "latency.json", json.dumps(results, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="digits", help="comma-separated space names")
    parser.add_argument("--n", type=int, default=50, help="candidates validated per space")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fit", type=int, default=5, help="candidates the constant is fit on")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("AUTOST_LIF_BACKEND", "eager")
    path = RESULTS / "latency.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    with tempfile.TemporaryDirectory(prefix="latency_") as tmp:
        os.environ["AUTOST_CACHE"] = tmp  # the whole-candidate measurements are not cached
        for name in [s for s in args.spaces.split(",") if s]:
            results[name] = run_space(name, args.n, args.threads, args.fit)
            write(results, args.threads)


if __name__ == "__main__":
    main()
