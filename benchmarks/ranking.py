"""Ranking quality of every proxy against trained accuracy on a fixed pool of architectures.

Run: ``python benchmarks/ranking.py [--datasets digits,mnist] [--n 40] [--epochs 10]``
(resumable: finished trainings are read back from the table and skipped). ``--tiny`` (4
architectures, 1 epoch, digits) is the CI smoke run.

1. The pool: ``--n`` architectures sampled from the shipped ``digits`` space with seed 2026,
   persisted to ``OUT/ranking_pool.json`` (re-used when present, so the pool is fixed).
   MNIST trains the same architectures at 16x16 input (``image_size=16`` of the loader: the
   t10k IDX files of ../shared/data/mnist, split 70/15/15 stratified).
2. Ground truth: each architecture trained by ``autost.train`` with one fixed short recipe
   (``--epochs`` epochs, lr 5e-3, batch 64, seed 0); validation accuracy appended to
   ``OUT/ranking_accuracy.csv`` after every training.
3. Proxies: every registered proxy on the evaluator's fixed batch of the same dataset, and the
   ``zero-cost`` ensemble (sahd + grad_norm + flops, equal weights fixed a priori; percentiles
   against its own reference pool, ``--reference`` (64) candidates of the space drawn with seed
   0, not the evaluation pool).
4. ``OUT/ranking.json``: per dataset, ``n_architectures``, ``kendall_tau`` (tau-b) and
   ``spearman_rho`` per proxy with 95% bootstrap intervals (1,000 resamples of architectures),
   the ensemble against FLOPs alone, and the accuracy of each proxy's top-1 pick relative to
   the best in the pool.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import autost
from autost.proxies import list_proxies, score_all
from autost.space import SearchSpace

MNIST_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
DATASETS: dict[str, dict[str, Any]] = {
    "digits": {"options": {}, "image_size": 8},
    "mnist": {"options": {"source": "test", "image_size": 16}, "image_size": 16},
}


def machine() -> str:
    """Where the figures came from: CPU, thread count, torch and Python versions."""
    import torch

    return (
        f"{platform.machine()} {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def pool(out: Path, n: int) -> list[autost.ArchConfig]:
    path = out / "ranking_pool.json"
    if path.exists():
        return [autost.ArchConfig.from_dict(c) for c in json.loads(path.read_text())]
    space = SearchSpace.load("digits")
    rng = np.random.default_rng(2026)
    configs = [space.sample(rng) for _ in range(n)]
    path.write_text(json.dumps([c.to_dict() for c in configs], indent=1) + "\n")
    return configs


def trained(out: Path) -> dict[tuple[str, int], float]:
    path = out / "ranking_accuracy.csv"
    if not path.exists():
        return {}
    with path.open() as handle:
        return {(r["dataset"], int(r["arch"])): float(r["val_acc"]) for r in csv.DictReader(handle)}


def train_one(cfg: autost.ArchConfig, dataset: str, epochs: int, work: Path) -> float:
    spec = DATASETS[dataset]
    root = str(MNIST_ROOT) if dataset == "mnist" else None
    result = autost.train(
        cfg.replace(image_size=spec["image_size"]),
        dataset,
        out=work,
        epochs=epochs,
        lr=5e-3,
        batch_size=64,
        seed=0,
        root=root,
        dataset_options=spec["options"],
        progress=False,
    )
    return float(result.final["val_acc"]) if result.status == "completed" else 0.0


def proxy_scores(
    configs: list[autost.ArchConfig], dataset: str, reference: int
) -> list[dict[str, float]]:
    from autost.search.scoring import load_evaluator

    spec = DATASETS[dataset]
    evaluator = load_evaluator("zero-cost", None)
    if dataset != "digits":
        evaluator = evaluator.with_dataset(dataset, str(MNIST_ROOT), **spec["options"])
    space = SearchSpace.load("digits")
    rng = np.random.default_rng(0)
    evaluator.fit_reference(
        [space.sample(rng).replace(image_size=spec["image_size"]) for _ in range(reference)]
    )
    names = list_proxies()
    rows = []
    for cfg in configs:
        cfg = cfg.replace(image_size=spec["image_size"])
        raw = score_all(cfg, names, batch=evaluator.batch(cfg), seed=0)
        oriented = {n: autost.proxies.get_proxy(n).oriented(v) for n, v in raw.items()}
        oriented["ensemble"] = evaluator.combine(raw)
        rows.append(oriented)
    return rows


def correlations(
    table: dict[str, list[float]], accs: list[float], rng: np.random.Generator
) -> dict[str, dict[str, Any]]:
    """Tau-b, rho, their 95% bootstrap intervals and the top-1 pick of every column of ``table``.

    Every proxy is judged on the same 1,000 resamples of architectures, so that the paired
    difference ``ensemble - flops`` has its own interval.
    """
    from scipy.stats import kendalltau, spearmanr

    y = np.asarray(accs, dtype=float)
    xs = {n: np.nan_to_num(np.asarray(v, dtype=float), nan=-1e300) for n, v in table.items()}
    samples: dict[str, dict[str, list[float]]] = {n: {"tau": [], "rho": []} for n in xs}
    for _ in range(1000):
        idx = rng.integers(0, len(y), len(y))
        if len(set(y[idx])) < 2:
            continue
        for n, x in xs.items():
            varied = len(set(x[idx])) > 1
            samples[n]["tau"].append(kendalltau(x[idx], y[idx]).statistic if varied else math.nan)
            samples[n]["rho"].append(spearmanr(x[idx], y[idx]).statistic if varied else math.nan)

    def interval(values: list[float] | np.ndarray) -> list[float]:
        clean = [float(v) for v in values if not math.isnan(v)]
        return (
            [float(np.percentile(clean, 2.5)), float(np.percentile(clean, 97.5))] if clean else []
        )

    stats: dict[str, dict[str, Any]] = {}
    for n, x in xs.items():
        stats[n] = {
            "tau": _number(kendalltau(x, y).statistic),
            "rho": _number(spearmanr(x, y).statistic),
            "tau_ci": interval(samples[n]["tau"]),
            "rho_ci": interval(samples[n]["rho"]),
            "top1": float(y[int(np.argmax(x))] / y.max()) if y.max() > 0 else 0.0,
        }
    if "ensemble" in xs and "flops" in xs:
        for key in ("tau", "rho"):
            diff = np.asarray(samples["ensemble"][key]) - np.asarray(samples["flops"][key])
            both = (stats["ensemble"][key], stats["flops"][key])
            stats["ensemble"][f"minus_flops_{key}"] = (
                None if both[0] is None or both[1] is None else both[0] - both[1]
            )
            stats["ensemble"][f"minus_flops_{key}_ci"] = interval(diff)
    return stats


def describe(cfg: autost.ArchConfig) -> str:
    """A one-cell summary of an architecture: depth x width, heads, MLP ratios, T, attention."""
    heads = "/".join(str(h) for h in cfg.num_heads)
    mlp = "/".join(f"{r:g}" for r in cfg.mlp_ratios)
    attention = "/".join(cfg.attention)
    return f"{cfg.depth}x{cfg.embed_dim} h{heads} m{mlp} T{cfg.timesteps} {attention}"


def markdown(
    configs: list[autost.ArchConfig],
    done: dict[tuple[str, int], float],
    report: dict[str, Any],
    command: str,
) -> str:
    """``ranking.md``: the accuracy table and, per dataset, the correlation table."""
    datasets = list(report["datasets"])
    lines = [
        "# Ranking benchmark: proxies against trained accuracy",
        "",
        f"Written by `{command}` ({report['machine']}).",
        f"Recipe: {report['recipe']}.",
        f"Ensemble: {report['ensemble_weights']}.",
        "",
        "## Trained accuracy (validation)",
        "",
        "| arch | architecture | params | FLOPs (digits) | " + " | ".join(datasets) + " |",
        "|---:|---|---:|---:|" + "---:|" * len(datasets),
    ]
    for i, cfg in enumerate(configs):
        accs = " | ".join(f"{done[(d, i)]:.4f}" for d in datasets)
        params, flops = autost.count_params(cfg), autost.estimate_cost(cfg).flops
        lines.append(f"| {i} | {describe(cfg)} | {params:,} | {flops / 1e6:.2f} M | {accs} |")
    for dataset, result in report["datasets"].items():
        lines += [
            "",
            f"## {dataset}: {result['n_architectures']} architectures, best accuracy "
            f"{result['best_accuracy']:.4f}",
            "",
            "| proxy | Kendall tau-b [95% CI] | Spearman rho [95% CI] | top-1 pick / best |",
            "|---|---|---|---:|",
        ]
        order = sorted(result["kendall_tau"], key=lambda n: -_or(result["kendall_tau"][n], -2.0))
        for n in order:
            tau, rho = result["kendall_tau"][n], result["spearman_rho"][n]
            tci, rci = result["kendall_tau_ci95"][n], result["spearman_rho_ci95"][n]
            lines.append(
                f"| {n} | {_signed(tau)} [{_span(tci)}] | {_signed(rho)} [{_span(rci)}] "
                f"| {result['top1_relative_accuracy'][n]:.3f} |"
            )
        lines += [
            "",
            "Ensemble minus FLOPs (paired bootstrap): "
            + ", ".join(
                f"{key} {_signed(result[f'ensemble_minus_flops_{key}'])} "
                f"[{_span(result[f'ensemble_minus_flops_{key}_ci95'])}]"
                for key in ("tau", "rho")
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _span(interval: list[float]) -> str:
    return f"{interval[0]:+.3f}, {interval[1]:+.3f}" if interval else "n/a"


def _number(value: float) -> float | None:
    """A correlation for JSON: None where it is undefined (a constant proxy)."""
    return None if math.isnan(value) else float(value)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--reference", type=int, default=64, help="ensemble reference pool size")
    parser.add_argument("--tiny", action="store_true", help="CI smoke run: 4 archs, 1 epoch")
    args = parser.parse_args()
    if args.tiny:
        args.n, args.epochs, args.datasets, args.reference = 4, 1, "digits", 8
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = pool(out, args.n)
    done = trained(out)
    table = out / "ranking_accuracy.csv"
    new_file = not table.exists()
    with table.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new_file:
            writer.writerow(["dataset", "arch", "params", "epochs", "val_acc"])
        for dataset in args.datasets.split(","):
            for i, cfg in enumerate(configs):
                if (dataset, i) in done:
                    continue
                with tempfile.TemporaryDirectory() as work:
                    acc = train_one(cfg, dataset, args.epochs, Path(work) / "run")
                writer.writerow([dataset, i, autost.count_params(cfg), args.epochs, f"{acc:.6f}"])
                handle.flush()
                os.fsync(handle.fileno())
                done[(dataset, i)] = acc
                print(f"{dataset} arch {i}: val acc {acc:.4f}", flush=True)
    report: dict[str, Any] = {
        "machine": machine(),
        "recipe": f"autost.train, {args.epochs} epochs, lr 5e-3, batch 64, seed 0; digits at "
        "8x8, MNIST (t10k, 70/15/15 stratified) at 16x16; validation accuracy of the last epoch",
        "ensemble_weights": "fixed a priori (sahd, grad_norm, flops, equal weights); reference "
        f"pool: {args.reference} digits-space samples drawn with seed 0, separate from the "
        "evaluation pool (seed 2026)",
        "datasets": {},
    }
    rng = np.random.default_rng(0)
    for dataset in args.datasets.split(","):
        accs = [done[(dataset, i)] for i in range(len(configs))]
        rows = proxy_scores(configs, dataset, args.reference)
        names = list(rows[0])
        stats = correlations({n: [r[n] for r in rows] for n in names}, accs, rng)
        ensemble = stats["ensemble"]
        report["datasets"][dataset] = {
            "n_architectures": len(configs),
            "epochs": args.epochs,
            "kendall_tau": {n: s["tau"] for n, s in stats.items()},
            "spearman_rho": {n: s["rho"] for n, s in stats.items()},
            "kendall_tau_ci95": {n: s["tau_ci"] for n, s in stats.items()},
            "spearman_rho_ci95": {n: s["rho_ci"] for n, s in stats.items()},
            "top1_relative_accuracy": {n: s["top1"] for n, s in stats.items()},
            "ensemble_minus_flops_tau": ensemble["minus_flops_tau"],
            "ensemble_minus_flops_tau_ci95": ensemble["minus_flops_tau_ci"],
            "ensemble_minus_flops_rho": ensemble["minus_flops_rho"],
            "ensemble_minus_flops_rho_ci95": ensemble["minus_flops_rho_ci"],
            "best_accuracy": max(accs),
        }
        for n in names:
            s = stats[n]
            print(
                f"{dataset:7s} {n:12s} tau {_signed(s['tau'])} [{_span(s['tau_ci'])}]"
                f"  rho {_signed(s['rho'])}  top-1 {s['top1']:.3f}"
            )
    first = report["datasets"][args.datasets.split(",")[0]]
    report.update(  # the first dataset's figures at the top level, as the issue names them
        n_architectures=first["n_architectures"],
        kendall_tau=first["kendall_tau"],
        spearman_rho=first["spearman_rho"],
        kendall_tau_ci95=first["kendall_tau_ci95"],
        spearman_rho_ci95=first["spearman_rho_ci95"],
    )
    command = "python benchmarks/ranking.py " + " ".join(sys.argv[1:])
    (out / "ranking.md").write_text(markdown(configs, done, report, command.strip()))
    (out / "ranking.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
