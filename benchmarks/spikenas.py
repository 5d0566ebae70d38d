"""SpikeNAS-Bench as external ground truth: autost's proxies on its cells against CIFAR-10 accuracy.

Run: ``nice -n 19 python benchmarks/spikenas.py [--n 1000] [--proxies all|fast|a,b] [--minutes M]``
(resumable: ``(id, proxy)`` pairs already in the scores table are skipped; ``--report-only``
writes the report from the table without scoring).

1. Ground truth: ``benchmarks/data/spikenas_cifar10.csv`` (``spikenas_extract.py``): the test
   accuracy of each of SpikeNAS-Bench's 15,625 cells after 100 (690 cells: 200) epochs on
   CIFAR-10.
2. Sample: the first ``--n`` ids of a permutation of all ids drawn with ``--seed`` (2026), so a
   larger ``--n`` extends a smaller one.
3. Models: :func:`autost.model.spikenas.build_spikenas_model` (the benchmark's cell, macro network,
   T = 5 and neurons) at ``--width`` channels in the first cell (the benchmark: 128; default 16,
   see "Cost" below), weights seeded with ``--model-seed`` (0); LIF on the eager kernel.
4. Batch: :func:`autost.data.natural.natural_batch` (``--batch`` 32 crops of scikit-learn's
   two sample photographs, normalised like CIFAR-10, seed 0): natural images, *not* CIFAR-10.
5. Proxies: every registered proxy that runs on a model without an autost config
   (:func:`autost.proxies.score`), or ``--proxies fast`` (those of the shared forward pass,
   the analytic ones, synflow and grad_norm) or a comma-separated list. Raw values and seconds
   per proxy are appended to ``OUT/spikenas_scores.csv`` after every architecture.
6. Report: Kendall tau-b and Spearman rho of each proxy's oriented score against test accuracy
   with 95% bootstrap intervals (1,000 resamples of architectures, ``benchmarks/rankstats.py``'s
   :func:`correlations`, shared with ``benchmarks/ranking.py``), and the test accuracy of each
   proxy's top-1 pick relative to the best scored cell; ``OUT/spikenas.json`` and
   ``OUT/spikenas.md``.

Cost: at the benchmark's width (128) one all-conv cell needs ~300 GMAC per forward pass of 32
images x 5 steps, up to minutes per gradient proxy on a small CPU; width 16 keeps every
operation, threshold, step and the macro structure and costs ~1/64 of the convolutions.
Another ``--width`` scores into ``OUT/spikenas_scores_w<width>.csv`` (report
``spikenas_w<width>.md/json``); every report compares its proxies, over the ids both scored,
with those of the other widths' tables in ``OUT`` (the width check).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autost.data.natural import natural_batch
from autost.io import atomic_write_text
from autost.model.spikenas import NUM_ARCHITECTURES, TIMESTEPS, build_spikenas_model, decode
from autost.proxies import ConfigRequiredError, get_proxy, list_proxies
from autost.proxies import score as score_model
from autost.proxies.ensemble import rank_aggregate

sys.path.insert(0, str(Path(__file__).parent))
from rankstats import _number, _signed, correlations, machine
from spikenas_extract import OUT as TABLE
from spikenas_extract import read_table, source_commit
from spikenas_report import CHANCE, markdown

RESULTS = Path(__file__).parent / "results"
FAST = (
    "firing_rate",
    "sahd",
    "naswot_hd",
    "sops",
    "energy",
    "params",
    "flops",
    "synflow",
    "grad_norm",
)
DEFAULT_WIDTH = 16
#: FLOPs levels (cells with the same number of conv edges) reported as budget bands need as
#: many cells as a ranking benchmark's band pool.
MIN_LEVEL = 40
SETTINGS = ("width", "batch", "timesteps", "model_seed", "batch_seed")
HEADER = ["id", "proxy", "raw", "seconds", "arch_seconds", *SETTINGS]


def sample_ids(n: int, seed: int) -> list[int]:
    """The first ``n`` ids of a seeded permutation of all ids (prefix-stable in ``n``)."""
    return [int(i) for i in np.random.default_rng(seed).permutation(NUM_ARCHITECTURES)[:n]]


def build(arch_id: int, settings: dict[str, int], backend: str) -> torch.nn.Module:
    """The scored model: weights seeded by ``model_seed`` in a forked RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["model_seed"])
        return build_spikenas_model(arch_id, width=settings["width"], backend=backend)


def foreign_proxies(batch: tuple[torch.Tensor, torch.Tensor]) -> list[str]:
    """Registered proxies that run on a model without an autost config (probed on a 4-channel
    cell: those raising :class:`ConfigRequiredError` are left out)."""
    model = build_spikenas_model(NUM_ARCHITECTURES - 1, width=4, backend="eager")
    small = (batch[0][:4], batch[1][:4])
    names = []
    for name in list_proxies():
        try:
            score_model(model, small, [name])
        except ConfigRequiredError:
            continue
        names.append(name)
    return names


def read_scores(path: Path, settings: dict[str, int]) -> dict[tuple[int, str], float]:
    """Raw values already in the table, keyed by ``(id, proxy)``; a table of other settings is
    refused (another ``--out`` for another setting)."""
    if not path.exists():
        return {}
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        other = {k: int(row[k]) for k in SETTINGS}
        if other != settings:
            raise SystemExit(f"{path} holds scores with {other}, not {settings}: use another --out")
    return {(int(r["id"]), r["proxy"]): float(r["raw"]) for r in rows}


def score_missing(
    path: Path,
    ids: list[int],
    names: list[str],
    settings: dict[str, int],
    backend: str,
    minutes: float,
) -> None:
    """Score every ``(id, proxy)`` not yet in the table, appending one architecture at a time
    (flushed and synced); stops starting new architectures after ``minutes``."""
    done = read_scores(path, settings)
    todo = [(i, [n for n in names if (i, n) not in done]) for i in ids]
    todo = [(i, missing) for i, missing in todo if missing]
    batch = natural_batch(settings["batch"], settings["batch_seed"])
    start = time.perf_counter()
    new_file = not path.exists() or not path.stat().st_size
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"{len(todo)} architectures to score ({len(ids) - len(todo)} done)", flush=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, HEADER, lineterminator="\n")
        if new_file:
            writer.writeheader()
        for k, (arch_id, missing) in enumerate(todo):
            if minutes and time.perf_counter() - start > 60 * minutes:
                print(f"stopping after {minutes:g} minutes; run again to resume", flush=True)
                break
            began = time.perf_counter()
            scores = score_model(build(arch_id, settings, backend), batch, missing)
            arch_seconds = time.perf_counter() - began
            for name in missing:
                writer.writerow(
                    {
                        "id": arch_id,
                        "proxy": name,
                        "raw": repr(float(scores.raw[name])),
                        "seconds": f"{scores.seconds.get(name, 0.0):.3f}",
                        "arch_seconds": f"{arch_seconds:.3f}",
                        **settings,
                    }
                )
            handle.flush()
            os.fsync(handle.fileno())
            elapsed = time.perf_counter() - start
            eta = elapsed / (k + 1) * (len(todo) - k - 1)
            print(
                f"[{k + 1}/{len(todo)}] id {arch_id} {'|'.join(decode(arch_id))}: "
                f"{arch_seconds:.1f} s; elapsed {elapsed / 60:.1f} min, "
                f"remaining ~{eta / 60:.1f} min",
                flush=True,
            )


def timing(path: Path) -> dict[str, Any]:
    """Seconds per architecture (median, mean: every scoring call of an id summed) and per
    proxy (median) from the table."""
    calls: set[tuple[int, float]] = set()  # one call scores several proxies: count it once
    per_proxy: dict[str, list[float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            calls.add((int(row["id"]), float(row["arch_seconds"])))
            per_proxy.setdefault(row["proxy"], []).append(float(row["seconds"]))
    per_arch: dict[int, float] = {}
    for arch, seconds in calls:
        per_arch[arch] = per_arch.get(arch, 0.0) + seconds
    values = list(per_arch.values())
    return {
        "architectures": len(values),
        "seconds_per_architecture_median": float(np.median(values)) if values else None,
        "seconds_per_architecture_mean": float(np.mean(values)) if values else None,
        "seconds_per_proxy_median": {n: float(np.median(v)) for n, v in per_proxy.items()},
    }


def report(
    path: Path,
    names: list[str],
    table: dict[int, dict[str, str]],
    seed: int,
    ensembles: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """Correlations with test accuracy of every proxy and of every ``ensembles`` entry (label ->
    weights: the rank ensemble over the sample itself), over the ids every proxy scored and over
    those of them above chance level. All columns share the bootstrap resamples, so each has a
    paired interval of its tau minus FLOPs'."""
    scores: dict[str, dict[int, float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            scores.setdefault(row["proxy"], {})[int(row["id"])] = float(row["raw"])
    present = [n for n in names if n in scores]
    ids = sorted(set.intersection(*(set(scores[n]) for n in present))) if present else []
    rng = np.random.default_rng(0)

    def judge(ids: list[int]) -> dict[str, Any]:
        accs = [float(table[i]["test_acc"]) for i in ids]
        columns = {n: [get_proxy(n).oriented(scores[n][i]) for i in ids] for n in present}
        for label, weights in ensembles.items():
            if set(weights) <= set(present):
                raw = {m: [scores[m][i] for i in ids] for m in weights}
                columns[label] = rank_aggregate(raw, weights)
        stats = correlations(columns, accs, rng)
        out: dict[str, Any] = {}
        for name, s in stats.items():
            pick = ids[int(np.argmax(np.nan_to_num(columns[name], nan=-np.inf)))]
            out[name] = {
                "n": len(ids),
                "kendall_tau": s["tau"],
                "kendall_tau_ci95": s["tau_ci"],
                "minus_flops_tau": s.get("minus_flops_tau"),
                "minus_flops_tau_ci95": s.get("minus_flops_tau_ci", []),
                "spearman_rho": s["rho"],
                "spearman_rho_ci95": s["rho_ci"],
                "top1_relative_accuracy": s["top1"],
                "top1_id": pick,
                "top1_test_acc": float(table[pick]["test_acc"]),
                "top5_regret": s["top5_regret"],
                "non_finite": int(sum(not math.isfinite(v) for v in columns[name])),
            }
        return out

    stats = judge(ids) if len(ids) > 2 else {}
    trainable = [i for i in ids if float(table[i]["test_acc"]) > CHANCE]
    above = judge(trainable) if len(trainable) > 2 else {}
    # inside a budget: the cells of one FLOPs level (the number of conv edges fixes it), where
    # FLOPs and params are constant and so rank nothing (tau 0: the gain over FLOPs is the tau)
    levels: dict[float, list[int]] = {}
    for i in ids if "flops" in scores else []:
        levels.setdefault(scores["flops"][i], []).append(i)
    bands = {}
    for flops, members in sorted(levels.items()):
        if len(members) >= MIN_LEVEL:
            accs = [float(table[i]["test_acc"]) for i in members]
            bands[f"{flops / 1e6:.1f}M"] = {
                "flops": flops,
                "n": len(members),
                "best_test_acc": max(accs),
                "test_acc_range": [min(accs), max(accs)],
                "proxies": {
                    n: e for n, e in judge(members).items() if n not in ("flops", "params")
                },
            }
    # the benchmark's own noise: how well its last-epoch validation accuracy ranks the test one
    ceiling = None
    if len(ids) > 2:
        val = {"val_acc": [float(table[i]["val_acc"]) for i in ids]}
        c = correlations(val, [float(table[i]["test_acc"]) for i in ids], rng)["val_acc"]
        ceiling = {
            "n": len(ids),
            "kendall_tau": c["tau"],
            "kendall_tau_ci95": c["tau_ci"],
            "spearman_rho": c["rho"],
            "spearman_rho_ci95": c["rho_ci"],
        }
    accs = [float(table[i]["test_acc"]) for i in ids]
    return {
        "proxies": stats,
        "proxies_above_chance": above,
        "flops_levels": bands,
        "ensembles": {label: dict(w) for label, w in ensembles.items()},
        "val_acc_vs_test_acc": ceiling,
        "scored_architectures": len(ids),
        "best_test_acc_scored": max(accs) if accs else None,
        "chance_level_cells_scored": int(sum(a <= CHANCE for a in accs)),
        "sample_seed": seed,
    }


def ensembles(recipes: str) -> dict[str, dict[str, float]]:
    """Label -> proxy weights of each entry of ``recipes`` (comma-separated): an evaluator
    recipe that combines several proxies, or members joined by '+' (equal weights)."""
    from autost.search.evaluator import Evaluator

    out: dict[str, dict[str, float]] = {}
    for name in [r.strip() for r in recipes.split(",") if r.strip()]:
        if "+" in name:
            out[name] = {m: 1.0 for m in name.split("+")}
            continue
        evaluator = Evaluator.load(name)
        if len(evaluator.weights) > 1:
            out[f"{name} ({'+'.join(evaluator.weights)})"] = dict(evaluator.weights)
    return out


def _raw_scores(path: Path) -> tuple[int, dict[str, dict[int, float]]]:
    """The width of a scores table and its raw values by proxy and id."""
    width = 0
    scores: dict[str, dict[int, float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            width = int(row["width"])
            scores.setdefault(row["proxy"], {})[int(row["id"])] = float(row["raw"])
    return width, scores


def width_check(path: Path, table: dict[int, dict[str, str]]) -> dict[str, Any]:
    """Against every other ``spikenas_scores*.csv`` beside ``path`` (another width), per proxy
    over the ids both scored: Spearman rho between the two widths' raw values, and Kendall tau
    against test accuracy at each width. Keyed by the other width."""
    from scipy.stats import kendalltau, spearmanr

    width, mine = _raw_scores(path)
    checks: dict[str, Any] = {}
    for other_path in sorted(path.parent.glob("spikenas_scores*.csv")):
        if other_path == path:
            continue
        other_width, other = _raw_scores(other_path)
        per: dict[str, Any] = {}
        for name in sorted(set(mine) & set(other)):
            ids = sorted(set(mine[name]) & set(other[name]))
            if len(ids) < 3:
                continue
            sign = get_proxy(name).sign
            a = np.array([mine[name][i] for i in ids])
            b = np.array([other[name][i] for i in ids])
            y = [float(table[i]["test_acc"]) for i in ids]
            per[name] = {
                "n": len(ids),
                "rho_between_widths": _number(spearmanr(a, b).statistic),
                f"tau_vs_acc_width_{width}": _number(kendalltau(sign * a, y).statistic),
                f"tau_vs_acc_width_{other_width}": _number(kendalltau(sign * b, y).statistic),
            }
        if per:
            checks[str(other_width)] = {
                "width": width,
                "scores": other_path.name,
                "seconds_per_architecture_median": timing(other_path)[
                    "seconds_per_architecture_median"
                ],
                "proxies": per,
            }
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="architectures in the sample")
    parser.add_argument("--seed", type=int, default=2026, help="sample seed")
    parser.add_argument("--proxies", default="all", help="all | fast | comma-separated names")
    parser.add_argument(
        "--width", type=int, default=DEFAULT_WIDTH, help="first cell's channels (bench: 128)"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--backend", default="eager", help="LIF kernel backend")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after (0: no limit)")
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--ensembles",
        default="zero-cost,sahd+grad_norm+flops,sahd+flops+jacob_cov",
        help="rank ensembles reported (over the sample): comma-separated evaluator recipes or "
        "members joined by '+' (equal weights)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {
        "width": args.width,
        "batch": args.batch,
        "timesteps": TIMESTEPS,
        "model_seed": args.model_seed,
        "batch_seed": 0,
    }
    batch = natural_batch(args.batch, 0)
    supported = foreign_proxies(batch)
    if args.proxies == "all":
        names = supported
    elif args.proxies == "fast":
        names = [n for n in FAST if n in supported]
    else:
        names = [n.strip() for n in args.proxies.split(",") if n.strip()]
        unsupported = sorted(set(names) - set(supported))
        if unsupported:
            parser.error(f"not runnable on a foreign model: {', '.join(unsupported)}")
    suffix = "" if args.width == DEFAULT_WIDTH else f"_w{args.width}"
    scores_path = args.out / f"spikenas_scores{suffix}.csv"
    ids = sample_ids(args.n, args.seed)
    if not args.report_only:
        score_missing(scores_path, ids, names, settings, args.backend, args.minutes)
    if not scores_path.exists():
        raise SystemExit(f"no scores yet in {scores_path}")
    table = {int(r["id"]): r for r in read_table(args.table)}
    result: dict[str, Any] = {
        "machine": machine(),
        "ground_truth": "SpikeNAS-Bench (Sun et al., IEEE TAI 2025; github.com/tju-sun-lab/"
        f"SpikeNAS-Bench at {source_commit(args.table)}), CIFAR-10 test accuracy after 100 epochs "
        "(690 cells: 200), benchmarks/data/spikenas_cifar10.csv",
        "models": f"autost.model.spikenas (the benchmark's cells, macro network, T {TIMESTEPS}, "
        f"LIF tau 4/3, ATan) at width {args.width} (benchmark: 128), weights seed "
        f"{args.model_seed}, {args.threads} torch thread(s), LIF backend {args.backend}",
        "batch": f"{args.batch} crops of scikit-learn's sample photographs "
        "(autost.data.natural.natural_batch, seed 0), normalised like CIFAR-10: NOT CIFAR-10",
        "sample": f"the first {args.n} ids of a permutation of all {NUM_ARCHITECTURES} drawn "
        f"with seed {args.seed}",
        "settings": settings,
        "proxies_runnable_on_foreign_models": supported,
        "timing": timing(scores_path),
        "sample_size": args.n,
        **report(scores_path, supported, table, args.seed, ensembles(args.ensembles)),
        "width_check": width_check(scores_path, table),
    }
    mean = result["timing"]["seconds_per_architecture_mean"]
    result["projected_minutes"] = None if mean is None else mean * args.n / 60
    command = "python benchmarks/spikenas.py " + " ".join(sys.argv[1:])
    result["command"] = command.strip()
    atomic_write_text(
        args.out / f"spikenas{suffix}.json", json.dumps(result, indent=2, allow_nan=False) + "\n"
    )
    atomic_write_text(args.out / f"spikenas{suffix}.md", markdown(result, command.strip()))
    for name, p in result["proxies"].items():
        print(
            f"{name:12s} n {p['n']:5d} tau {_signed(p['kendall_tau'])} "
            f"rho {_signed(p['spearman_rho'])} top-1 {p['top1_relative_accuracy']:.3f}"
        )


if __name__ == "__main__":
    main()
