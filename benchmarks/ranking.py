"""Ranking quality of every proxy against trained accuracy on fixed pools of architectures.

Run: ``python benchmarks/ranking.py [--datasets digits,mnist] [--n 40] [--epochs 10]``
(resumable: finished trainings and scores are read back from their tables and skipped). On
CPU the MNIST trainings take hours; ``--device cuda --jobs 12`` runs them side by side on one
GPU (about 4 minutes on an H200 for 80), ``--train-only`` fills the tables without the
report, ``--score-only`` fills the score cache, ``--no-train`` reports what is trained.
``--tiny`` (4 architectures per pool, 1 epoch of 4 batches, baselines of 4 steps, digits, the
open pool and ``params-200k``) is the CI smoke run.

1. The open pool: ``--n`` architectures sampled from the shipped ``digits`` space with seed
   2026, persisted to ``OUT/ranking_pool.json`` (re-used when present, so the pool is fixed).
   MNIST trains the same architectures at 16x16 input (``image_size=16`` of the loader: the
   t10k IDX files of ../shared/data/mnist, split 70/15/15 stratified).
2. Budget-band pools (``--pools``, :data:`BAND_POOLS`): ``--pool-n`` distinct architectures
   of the same space whose analytic parameter count (``params-200k``) or FLOPs
   (``flops-10m``) at the space's 8x8 input lies within 10% of a target in the middle of the
   space's range, drawn with their own seeds and persisted to ``OUT/ranking_pool_<name>.json``.
   Capacity barely varies inside a band, so they ask whether a proxy ranks beyond capacity.
   Trained on ``--band-datasets`` with ``--pool-seeds`` seeds (``OUT/ranking_accuracy_<name>.csv``);
   their ground truth is the mean accuracy over the seeds.
3. Ground truth: each architecture trained by ``autost.train`` with one fixed short recipe
   (``--epochs`` epochs, lr 5e-3, batch 64, seed 0, fp32); validation accuracy appended to
   the pool's table after every training, with its device (a diverged training counts 0).
4. Scores (``OUT/ranking_scores.csv``, a cache; ``--rescore`` after a proxy changed): every
   registered proxy on the evaluator's fixed batch of the same dataset (one that fails is NaN,
   ranked last, and listed), the ``zero-cost`` ensemble (sahd + grad_norm + flops, equal
   weights fixed a priori; percentiles against its own reference pool, ``--reference`` (64)
   candidates of the space drawn with seed 0, not an evaluation pool), and the low-fidelity
   baselines ``short-1epoch`` and ``loss-drop`` (short-training evaluator recipes), each with
   its wall seconds per candidate.
5. ``OUT/ranking.json``: per dataset of the open pool (``datasets``) and per band pool and
   dataset (``pools``), ``kendall_tau`` (tau-b) and ``spearman_rho`` per proxy with 95%
   bootstrap intervals (1,000 resamples of architectures), the accuracy of each proxy's top-1
   pick relative to the best in the pool, the top-5 regret (the pool's best accuracy minus the
   best among the proxy's 5 highest) and the median seconds per candidate; for the open pool
   also the ensemble against FLOPs alone.
6. Seed-to-seed ceiling: the open pool's ``--noise-datasets`` (digits, MNIST) trained again
   with ``--noise-seeds`` more seeds (``OUT/ranking_seeds.csv``), the band pools with their
   second seed; tau between seeds is how well one training ranks the pool against another
   (the reliability of the ground truth).
``OUT/ranking.md`` is the same in tables.

The pools and their training tables live in ``ranking_pools.py``, the score cache in
``ranking_scores.py``, the statistics (:func:`correlations`, shared with ``spikenas.py``) in
``rankstats.py``, the writing of ``ranking.md`` in ``ranking_report.py``; their names are
imported back here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import autost
from autost.io import atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))
# The pools, the report and the statistics live in their own modules; names imported back.
from ranking_pools import (
    BAND_POOLS,
    DATASETS,
    MNIST_ROOT,
    OPEN_POOL_SEED,
    POOLS,
    band_pool,
    budget_of,
    devices,
    pool,
    train_missing,
    trained,
)
from ranking_report import (
    Band,
    _print,
    _summary,
    markdown,
    spikenas_summary,
)
from ranking_report import (
    _band_markdown as _band_markdown,
)
from ranking_report import (
    _spikenas_markdown as _spikenas_markdown,
)
from ranking_report import (
    _table as _table,
)
from ranking_report import (
    describe as describe,
)
from ranking_report import (
    target_line as target_line,
)
from ranking_scores import EXTRA_ENSEMBLES, TINY_BATCHES, Scores
from ranking_verdict import verdict
from rankstats import (
    RESAMPLES,
    _signed,
    _span,
    correlations,
    machine,
)
from rankstats import (
    _cell as _cell,
)
from rankstats import (
    _number as _number,
)
from rankstats import (
    _or as _or,
)


def band_report(
    name: str,
    band: Band,
    datasets: list[str],
    seeds: list[int],
    scorers: dict[str, Scores],
    rng: np.random.Generator,
    out: Path,
    resamples: int = RESAMPLES,
) -> tuple[dict[str, Any], list[str]]:
    """``ranking.json``'s entry of band pool ``name`` (datasets not fully trained are listed
    under ``incomplete``) and its failures."""
    configs, done = band
    spec = BAND_POOLS[name]
    n = len(configs)
    draws = json.loads((out / f"ranking_pool_{name}.json").read_text())["draws"]
    entry: dict[str, Any] = {
        "definition": {**spec, "space": "digits", "input": "8x8", "draws": draws},
        "n_architectures": n,
        "seeds": seeds,
        "budget_range": {
            b: [min(budget_of(c, b) for c in configs), max(budget_of(c, b) for c in configs)]
            for b in ("params", "flops")
        },
        "datasets": {},
        "incomplete": {},
    }
    failures: list[str] = []
    for dataset in datasets:
        have = sum((dataset, i, k) in done for i in range(n) for k in seeds)
        if have < n * len(seeds):
            entry["incomplete"][dataset] = f"{have} of {n * len(seeds)} trainings"
            continue
        per_seed = {k: [done[(dataset, i, k)] for i in range(n)] for k in seeds}
        mean = np.mean(list(per_seed.values()), axis=0).tolist()
        values, seconds, failed = scorers[dataset].table(name, n)
        failures += failed
        stats = correlations(values, mean, rng, resamples)
        result: dict[str, Any] = {
            "n_architectures": n,
            "ground_truth": f"mean validation accuracy over seeds {', '.join(map(str, seeds))}",
            **_summary(stats, seconds),
            "best_accuracy": max(mean),
            "accuracy_range": [min(mean), max(mean)],
        }
        if len(seeds) > 1:
            replay = correlations({"seed": per_seed[seeds[1]]}, per_seed[seeds[0]], rng, resamples)[
                "seed"
            ]
            result["seed_to_seed"] = {
                "seeds": seeds[:2],
                "kendall_tau": replay["tau"],
                "kendall_tau_ci95": replay["tau_ci"],
                "spearman_rho": replay["rho"],
                "spearman_rho_ci95": replay["rho_ci"],
            }
        entry["datasets"][dataset] = result
        _print(f"{name} {dataset}", stats, seconds)
    return entry, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist", help="datasets of the open pool")
    parser.add_argument("--n", type=int, default=40, help="architectures of the open pool")
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
        "--pools",
        help=f"pools to run (default: all of {', '.join(POOLS)}; --tiny: open and "
        f"{next(iter(BAND_POOLS))})",
    )
    parser.add_argument("--pool-n", type=int, default=40, help="architectures per budget band")
    parser.add_argument("--pool-seeds", type=int, default=2, help="training seeds per band pool")
    parser.add_argument(
        "--band-datasets", default="digits,mnist", help="datasets the band pools run on"
    )
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument(
        "--train-only", action="store_true", help="fill the tables, skip the proxies and report"
    )
    stage.add_argument(
        "--score-only", action="store_true", help="no training, no report: fill the score cache"
    )
    stage.add_argument(
        "--no-train",
        action="store_true",
        help="score and report what is trained (band datasets not fully trained are left out)",
    )
    parser.add_argument(
        "--ensembles",
        default=",".join(EXTRA_ENSEMBLES),
        help="more equal-weight ensembles to report beside zero-cost: comma-separated, each "
        "its members joined by '+'",
    )
    parser.add_argument(
        "--resamples", type=int, default=RESAMPLES, help="bootstrap resamples per interval"
    )
    parser.add_argument(
        "--rescore", action="store_true", help="recompute cached scores (after a proxy changed)"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="CI smoke run: 4 archs per pool, 1 epoch of 4 batches, digits; baselines 4 steps",
    )
    args = parser.parse_args()
    if args.tiny:
        args.n, args.epochs, args.datasets, args.reference = 4, 1, "digits", 8
        args.pool_n, args.band_datasets, args.resamples = 4, "digits", 100
        args.pools = args.pools or f"open,{next(iter(BAND_POOLS))}"
    # The proxies score one batch per candidate: compiling the LIF kernel would not pay there.
    # Trainings use their dataset's kernel (ranking_pools.DATASETS) unless this is set.
    lif_backend = os.environ.get("AUTOST_LIF_BACKEND")
    os.environ.setdefault("AUTOST_LIF_BACKEND", "eager")
    datasets = [d for d in args.datasets.split(",") if d]
    band_datasets = [d for d in args.band_datasets.split(",") if d]
    noise_names = [d for d in args.noise_datasets.split(",") if d]
    unknown = sorted(set(datasets + noise_names + band_datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    pools = [p for p in (args.pools or ",".join(POOLS)).split(",") if p]
    if sorted(set(pools) - set(POOLS)):
        parser.error(f"unknown pool in {args.pools!r}; choose from {', '.join(POOLS)}")
    if "open" not in pools and not (args.train_only or args.score_only):
        parser.error("the report needs the open pool: add 'open' to --pools")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = not (args.score_only or args.no_train)
    settings = {"epochs": args.epochs, "device": args.device, "mnist_root": args.mnist_root}
    settings["lif_backend"] = lif_backend
    settings["limit_train_batches"] = TINY_BATCHES if args.tiny else 0
    seeds = list(range(args.pool_seeds))

    def fill(
        path: Path, members: list[autost.ArchConfig], names: list[str], keys: list[int]
    ) -> Any:
        if train:
            return train_missing(path, members, names, keys, settings, args.jobs)
        return trained(path, args.epochs)

    bands: dict[str, Band] = {}
    for name in (p for p in pools if p != "open"):
        members = band_pool(out, name, args.pool_n)
        table = out / f"ranking_accuracy_{name}.csv"
        bands[name] = (members, fill(table, members, band_datasets, seeds))
    configs: list[autost.ArchConfig] = []
    done: dict[tuple[str, int, int], float] = {}
    noise: dict[tuple[str, int, int], float] = {}
    noise_datasets = [d for d in noise_names if d in datasets]
    extra_seeds = list(range(1, args.noise_seeds + 1))
    table = out / "ranking_accuracy.csv"
    seeds_table = out / "ranking_seeds.csv"
    if "open" in pools:
        configs = pool(out, args.n)
        done = fill(table, configs, datasets, [0])
        noise = fill(seeds_table, configs, noise_datasets, extra_seeds)
    if args.train_only:
        return
    # one thread: CPU seconds then measure the work (idle OpenMP threads spin on a busy machine)
    torch.set_num_threads(1)
    extra = [e for e in args.ensembles.split(",") if e]
    scorers = {
        d: Scores(out, d, args.reference, args.mnist_root, extra, args.tiny) for d in DATASETS
    }
    if args.rescore:
        for scorer in scorers.values():
            scorer.forget()
    if configs:
        for dataset in datasets:
            scorers[dataset].fill("open", configs)
    for name, (members, accs) in bands.items():
        for dataset in band_datasets:
            trained_all = all((dataset, i, k) in accs for i in range(len(members)) for k in seeds)
            if trained_all or args.score_only:  # --no-train scores only what it can report
                scorers[dataset].fill(name, members)
    if args.score_only:
        return
    for dataset in datasets:
        missing = sum((dataset, i, 0) not in done for i in range(len(configs)))
        if missing:
            raise SystemExit(f"open pool: {missing} trainings of {dataset} missing; train first")
    report: dict[str, Any] = {
        "machine": machine(),
        "recipe": f"autost.train, {args.epochs} epochs, lr 5e-3, batch 64, seed 0, fp32; digits "
        "at 8x8, MNIST (t10k, 70/15/15 stratified) at 16x16; validation accuracy of the last "
        "epoch; the device of each training is in the tables",
        "ensemble_weights": "`ensemble` is the shipped zero-cost recipe ("
        + ", ".join(f"{m} {w:g}" for m, w in scorers["digits"].ensemble.weights.items())
        + "; evaluators/zero-cost.toml says how they were chosen); "
        + "".join(f"`{e}`, " for e in extra)
        + "equal weights (one with the shipped recipe's members is reported once, as "
        f"`ensemble`); reference pool of every ensemble: {args.reference} digits-space "
        f"samples drawn with seed 0, separate from the evaluation pools (seed {OPEN_POOL_SEED} "
        "and the bands' seeds)",
        "low_fidelity": "short-1epoch (validation accuracy after one epoch of training) and "
        "loss-drop (training-loss drop over 20 steps), the evaluator recipes of that name, "
        "AdamW lr 5e-3, batch 64, seed 0, marked '(training)' in the tables",
        "cost": "median CPU seconds per candidate (process time, one torch thread) on the "
        "machine above, each proxy run alone on one batch of 64 as its own evaluator would "
        "(model build and forward passes included), the ensemble as the zero-cost recipe runs "
        f"it, the baselines' whole short training; LIF backend {os.environ['AUTOST_LIF_BACKEND']}",
        "training_devices": devices(
            table, seeds_table, *(out / f"ranking_accuracy_{b}.csv" for b in bands)
        ),
        "datasets": {},
        "pools": {},
        "proxy_failures": [],
    }
    rng = np.random.default_rng(0)
    for dataset in datasets:
        accs = [done[(dataset, i, 0)] for i in range(len(configs))]
        values, seconds, failures = scorers[dataset].table("open", len(configs))
        report["proxy_failures"] += failures
        stats = correlations(values, accs, rng, args.resamples)
        ensemble = stats["ensemble"]
        report["datasets"][dataset] = {
            "n_architectures": len(configs),
            "epochs": args.epochs,
            **_summary(stats, seconds),
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
            replay = correlations(again, accs, rng, args.resamples)
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
            pooled = correlations(values, mean, rng, args.resamples)
            report["datasets"][dataset]["against_mean_of_seeds"] = {
                "seeds": [0, *extra_seeds],
                "kendall_tau": {n: s["tau"] for n, s in pooled.items()},
                "kendall_tau_ci95": {n: s["tau_ci"] for n, s in pooled.items()},
                "spearman_rho": {n: s["rho"] for n, s in pooled.items()},
                "spearman_rho_ci95": {n: s["rho_ci"] for n, s in pooled.items()},
            }
        _print(f"open {dataset:7s}", stats, seconds)
    for name, band in bands.items():
        entry, failures = band_report(
            name, band, band_datasets, seeds, scorers, rng, out, args.resamples
        )
        report["pools"][name] = entry
        report["proxy_failures"] += failures
    first = report["datasets"][datasets[0]]
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
    report["spikenas"] = spikenas_summary(out / "spikenas.json")
    report["verdict"] = verdict(report)
    command = "python benchmarks/ranking.py " + " ".join(sys.argv[1:])
    text = markdown(configs, done, report, command.strip(), bands)
    atomic_write_text(out / "ranking.md", text)
    atomic_write_text(out / "ranking.json", json.dumps(report, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
