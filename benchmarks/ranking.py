"""Ranking quality of every proxy against trained accuracy on a fixed pool of architectures.

Run: ``python benchmarks/ranking.py [--datasets digits,mnist] [--n 40] [--epochs 10]``
(resumable: finished trainings are read back from the table and skipped). On CPU the MNIST
trainings take hours; ``--device cuda --jobs 12`` runs them side by side on one GPU (about 4
minutes on an H200), ``--train-only`` fills the tables without the report. ``--tiny`` (4
architectures, 1 epoch, digits) is the CI smoke run.

1. The pool: ``--n`` architectures sampled from the shipped ``digits`` space with seed 2026,
   persisted to ``OUT/ranking_pool.json`` (re-used when present, so the pool is fixed).
   MNIST trains the same architectures at 16x16 input (``image_size=16`` of the loader: the
   t10k IDX files of ../shared/data/mnist, split 70/15/15 stratified).
2. Ground truth: each architecture trained by ``autost.train`` with one fixed short recipe
   (``--epochs`` epochs, lr 5e-3, batch 64, seed 0, fp32); validation accuracy appended to
   ``OUT/ranking_accuracy.csv`` after every training (a diverged training counts 0).
3. Proxies: every registered proxy on the evaluator's fixed batch of the same dataset, and the
   ``zero-cost`` ensemble (sahd + grad_norm + flops, equal weights fixed a priori; percentiles
   against its own reference pool, ``--reference`` (64) candidates of the space drawn with seed
   0, not the evaluation pool).
4. ``OUT/ranking.json``: per dataset, ``n_architectures``, ``kendall_tau`` (tau-b) and
   ``spearman_rho`` per proxy with 95% bootstrap intervals (1,000 resamples of architectures),
   the ensemble against FLOPs alone, and the accuracy of each proxy's top-1 pick relative to
   the best in the pool.
5. Seed-to-seed ceiling: the ``--noise-datasets`` (digits, MNIST) trained again with
   ``--noise-seeds`` more seeds (``OUT/ranking_seeds.csv``); their tau against seed 0 is how
   well one training ranks the pool against another (the reliability of the ground truth), and
   every proxy is also ranked against the mean accuracy over the seeds.
``OUT/ranking.md`` is the same in tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import platform
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
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
        configs = [autost.ArchConfig.from_dict(c) for c in json.loads(path.read_text())]
        if len(configs) != n:
            raise SystemExit(
                f"{path} holds {len(configs)} architectures, not --n {n}: "
                "give another --out for another pool"
            )
        return configs
    space = SearchSpace.load("digits")
    rng = np.random.default_rng(2026)
    configs = [space.sample(rng) for _ in range(n)]
    path.write_text(json.dumps([c.to_dict() for c in configs], indent=1) + "\n")
    return configs


def trained(path: Path, epochs: int) -> dict[tuple[str, int, int], float]:
    """Accuracies already in a table, keyed by (dataset, arch, seed); seed 0 when unrecorded.

    Every row must come from the same recipe: a table of another epoch count is refused."""
    if not path.exists():
        return {}
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    other = {int(r["epochs"]) for r in rows} - {epochs}
    if other:
        raise SystemExit(
            f"{path} holds trainings of {sorted(other)} epochs, not --epochs {epochs}: "
            "give another --out for another recipe"
        )
    return {
        (r["dataset"], int(r["arch"]), int(r.get("seed") or 0)): float(r["val_acc"]) for r in rows
    }


HEADER = ["dataset", "arch", "params", "epochs", "seed", "device", "val_acc"]


def devices(*paths: Path) -> dict[str, dict[str, int]]:
    """How many trainings of each dataset ran on each device, from the tables."""
    counts: dict[str, dict[str, int]] = {}
    for path in paths:
        if path.exists():
            with path.open() as handle:
                for row in csv.DictReader(handle):
                    per = counts.setdefault(row["dataset"], {})
                    device = row.get("device") or "unrecorded"
                    per[device] = per.get(device, 0) + 1
    return counts


def train_missing(
    path: Path,
    configs: list[autost.ArchConfig],
    datasets: list[str],
    seeds: list[int],
    settings: dict[str, Any],
    jobs: int = 1,
) -> dict[tuple[str, int, int], float]:
    """Train every (dataset, arch, seed) not yet in the table at ``path``, ``jobs`` at a time,
    appending each result (flushed and synced) as soon as it is known; returns the whole table."""
    done = trained(path, settings["epochs"])
    todo = [
        (dataset, i, seed)
        for dataset in datasets
        for seed in seeds
        for i in range(len(configs))
        if (dataset, i, seed) not in done
    ]
    new_file = not path.exists() or not path.stat().st_size
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, HEADER)
        if new_file:
            writer.writeheader()

        def record(key: tuple[str, int, int], acc: float, device: str) -> None:
            dataset, i, seed = key
            params = autost.count_params(configs[i])
            row = {"dataset": dataset, "arch": i, "params": params, "seed": seed}
            writer.writerow(
                {**row, "epochs": settings["epochs"], "device": device, "val_acc": f"{acc:.6f}"}
            )
            handle.flush()
            os.fsync(handle.fileno())
            done[key] = acc
            print(f"{dataset} arch {i} seed {seed}: val acc {acc:.4f} ({device})", flush=True)

        if jobs <= 1:
            for key in todo:
                record(key, *train_one(configs[key[1]], key[0], key[2], settings))
            return done
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, context, _worker_init, (threads,)) as pool:
            futures = {pool.submit(train_one, configs[k[1]], k[0], k[2], settings): k for k in todo}
            for future in as_completed(futures):
                record(futures[future], *future.result())
    return done


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def train_one(
    cfg: autost.ArchConfig, dataset: str, seed: int, settings: dict[str, Any]
) -> tuple[float, str]:
    """One training with the fixed recipe; its validation accuracy and the device it ran on."""
    spec = DATASETS[dataset]
    root = settings["mnist_root"] if dataset == "mnist" else None
    with tempfile.TemporaryDirectory() as work:
        result = autost.train(
            cfg.replace(image_size=spec["image_size"]),
            dataset,
            out=Path(work) / "run",
            epochs=settings["epochs"],
            lr=5e-3,
            batch_size=64,
            seed=seed,
            amp="off",
            device=settings["device"],
            root=root,
            dataset_options=spec["options"],
            progress=False,
        )
        device = json.loads((Path(work) / "run" / "train.json").read_text())["device"]
    acc = float(result.final["val_acc"]) if result.status == "completed" else 0.0
    return acc, device


def proxy_scores(
    configs: list[autost.ArchConfig], dataset: str, reference: int, mnist_root: str
) -> list[dict[str, float]]:
    from autost.search.scoring import load_evaluator

    spec = DATASETS[dataset]
    evaluator = load_evaluator("zero-cost", None)
    if dataset != "digits":
        evaluator = evaluator.with_dataset(dataset, mnist_root, **spec["options"])
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
    done: dict[tuple[str, int, int], float],
    report: dict[str, Any],
    command: str,
) -> str:
    """``ranking.md``: the accuracy table and, per dataset, the correlation table."""
    datasets = list(report["datasets"])
    columns = [f"{d} seed 0" for d in datasets]
    replays = []  # accuracies of the seed-to-seed retrainings, one list per column
    for d in datasets:
        for name, r in report["datasets"][d].get("seed_to_seed", {}).items():
            columns.append(f"{d} {name}")
            replays.append(r["accuracies"])
    lines = [
        "# Ranking benchmark: proxies against trained accuracy",
        "",
        f"Written by `{command}` ({report['machine']}).",
        f"Recipe: {report['recipe']}.",
        "Trainings per device: "
        + "; ".join(
            f"{d}: " + ", ".join(f"{n} on {dev}" for dev, n in per.items())
            for d, per in report["training_devices"].items()
        )
        + ".",
        f"Ensemble: {report['ensemble_weights']}.",
        "",
        "## Trained accuracy (validation)",
        "",
        "| arch | architecture | params | FLOPs (digits) | " + " | ".join(columns) + " |",
        "|---:|---|---:|---:|" + "---:|" * len(columns),
    ]
    for i, cfg in enumerate(configs):
        accs = " | ".join(
            [f"{done[(d, i, 0)]:.4f}" for d in datasets] + [f"{r[i]:.4f}" for r in replays]
        )
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
            tau = _cell(result["kendall_tau"][n], result["kendall_tau_ci95"][n])
            rho = _cell(result["spearman_rho"][n], result["spearman_rho_ci95"][n])
            lines.append(f"| {n} | {tau} | {rho} | {result['top1_relative_accuracy'][n]:.3f} |")
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
        for name, r in result.get("seed_to_seed", {}).items():
            lines += [
                "",
                "Seed-to-seed agreement (the reliability of the ground truth): the same recipe "
                f"with {name} against seed 0 ranks the pool with tau "
                f"{_cell(r['kendall_tau'], r['kendall_tau_ci95'])}, rho "
                f"{_cell(r['spearman_rho'], r['spearman_rho_ci95'])}. A proxy is not itself "
                "noisy, so it can exceed this against one training.",
            ]
        pooled = result.get("against_mean_of_seeds")
        if pooled:
            seeds = ", ".join(str(k) for k in pooled["seeds"])
            lines += [
                "",
                f"Against the mean accuracy over seeds {seeds}:",
                "",
                "| proxy | Kendall tau-b [95% CI] | Spearman rho [95% CI] |",
                "|---|---|---|",
            ]
            for n in sorted(
                pooled["kendall_tau"], key=lambda n: -_or(pooled["kendall_tau"][n], -2)
            ):
                tau = _cell(pooled["kendall_tau"][n], pooled["kendall_tau_ci95"][n])
                rho = _cell(pooled["spearman_rho"][n], pooled["spearman_rho_ci95"][n])
                lines.append(f"| {n} | {tau} | {rho} |")
    return "\n".join(lines) + "\n"


def _cell(value: float | None, interval: list[float]) -> str:
    return f"{_signed(value)} [{_span(interval)}]"


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
    parser.add_argument(
        "--noise-seeds", type=int, default=1, help="extra seeds per architecture (seed-to-seed)"
    )
    parser.add_argument(
        "--noise-datasets", default="digits,mnist", help="datasets retrained with them"
    )
    parser.add_argument("--device", default="auto", help="training device (auto: CUDA if any)")
    parser.add_argument("--jobs", type=int, default=1, help="trainings run at once (processes)")
    parser.add_argument("--mnist-root", default=str(MNIST_ROOT), help="folder of the IDX files")
    parser.add_argument(
        "--train-only", action="store_true", help="fill the tables, skip the proxies and report"
    )
    parser.add_argument("--tiny", action="store_true", help="CI smoke run: 4 archs, 1 epoch")
    args = parser.parse_args()
    if args.tiny:
        args.n, args.epochs, args.datasets, args.reference = 4, 1, "digits", 8
    datasets = args.datasets.split(",")
    noise_names = [d for d in args.noise_datasets.split(",") if d]
    unknown = sorted(set(datasets + noise_names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = pool(out, args.n)
    settings = {"epochs": args.epochs, "device": args.device, "mnist_root": args.mnist_root}
    table = out / "ranking_accuracy.csv"
    done = train_missing(table, configs, datasets, [0], settings, args.jobs)
    noise_datasets = [d for d in noise_names if d in datasets]
    extra_seeds = list(range(1, args.noise_seeds + 1))
    seeds_table = out / "ranking_seeds.csv"
    noise = train_missing(seeds_table, configs, noise_datasets, extra_seeds, settings, args.jobs)
    if args.train_only:
        return
    report: dict[str, Any] = {
        "machine": machine(),
        "recipe": f"autost.train, {args.epochs} epochs, lr 5e-3, batch 64, seed 0, fp32; digits "
        "at 8x8, MNIST (t10k, 70/15/15 stratified) at 16x16; validation accuracy of the last "
        "epoch; the device of each training is in the tables",
        "ensemble_weights": "fixed a priori (sahd, grad_norm, flops, equal weights); reference "
        f"pool: {args.reference} digits-space samples drawn with seed 0, separate from the "
        "evaluation pool (seed 2026)",
        "training_devices": devices(table, seeds_table),
        "datasets": {},
    }
    rng = np.random.default_rng(0)
    for dataset in args.datasets.split(","):
        accs = [done[(dataset, i, 0)] for i in range(len(configs))]
        rows = proxy_scores(configs, dataset, args.reference, args.mnist_root)
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
        if dataset in noise_datasets:
            # the reliability of the ground truth: how well one training ranks against another
            again = {
                f"seed {k}": [noise[(dataset, i, k)] for i in range(len(configs))]
                for k in extra_seeds
            }
            replay = correlations(again, accs, rng)
            report["datasets"][dataset]["seed_to_seed"] = {
                name: {
                    "kendall_tau": r["tau"],
                    "kendall_tau_ci95": r["tau_ci"],
                    "spearman_rho": r["rho"],
                    "spearman_rho_ci95": r["rho_ci"],
                    "accuracies": again[name],
                }
                for name, r in replay.items()
            }
            for name, r in replay.items():
                print(
                    f"{dataset:7s} {name} vs seed 0: tau {_signed(r['tau'])} [{_span(r['tau_ci'])}]"
                )
            # every proxy against the mean over seeds, a less noisy ground truth
            mean = np.mean([accs, *again.values()], axis=0).tolist()
            pooled = correlations({n: [r[n] for r in rows] for n in names}, mean, rng)
            report["datasets"][dataset]["against_mean_of_seeds"] = {
                "seeds": [0, *extra_seeds],
                "kendall_tau": {n: s["tau"] for n, s in pooled.items()},
                "kendall_tau_ci95": {n: s["tau_ci"] for n, s in pooled.items()},
                "spearman_rho": {n: s["rho"] for n, s in pooled.items()},
                "spearman_rho_ci95": {n: s["rho_ci"] for n, s in pooled.items()},
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
        top1_relative_accuracy=first["top1_relative_accuracy"],
        ensemble_minus_flops_tau=first["ensemble_minus_flops_tau"],
        ensemble_minus_flops_tau_ci95=first["ensemble_minus_flops_tau_ci95"],
    )
    command = "python benchmarks/ranking.py " + " ".join(sys.argv[1:])
    (out / "ranking.md").write_text(markdown(configs, done, report, command.strip()))
    (out / "ranking.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
