"""The pools of ``ranking.py`` and their ground truth: the open pool and the budget-band pools
(drawn once, persisted, re-used), and the resumable training tables (one fixed recipe per
architecture, dataset and seed, each result appended and synced as soon as it is known)."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch

import autost
from autost.io import atomic_write_text
from autost.neurons.backend import backend_env
from autost.search.space import SearchSpace

MNIST_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
#: Per dataset: the loader's options, the input size, and the LIF kernel its trainings use
#: unless ``$AUTOST_LIF_BACKEND`` was set. A digits training (about 7 s) would not repay
#: compiling the kernel; an MNIST one (1,100 steps at 16x16) does: ``auto`` compiles it once
#: per worker and timestep count (about 4 s), then steps in 0.81-0.97x the eager kernel's time
#: (median 0.90 over 12 band architectures: ``benchmarks/train_step.py``).
DATASETS: dict[str, dict[str, Any]] = {
    "digits": {"options": {}, "image_size": 8, "lif_backend": "eager"},
    "mnist": {
        "options": {"source": "test", "image_size": 16},
        "image_size": 16,
        "lif_backend": "auto",
    },
}
OPEN_POOL_SEED = 2026
#: Budget-band pools: architectures of the ``digits`` space whose analytic ``budget`` (at the
#: space's own 8x8 input) lies within ``tolerance`` of ``target``, drawn with ``seed``.
BAND_POOLS: dict[str, dict[str, Any]] = {
    "params-200k": {"budget": "params", "target": 200_000, "tolerance": 0.10, "seed": 2027},
    "flops-10m": {"budget": "flops", "target": 10_000_000, "tolerance": 0.10, "seed": 2028},
}
POOLS = ("open", *BAND_POOLS)
MAX_DRAWS = 200_000


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
    rng = np.random.default_rng(OPEN_POOL_SEED)
    configs = [space.sample(rng) for _ in range(n)]
    path.write_text(json.dumps([c.to_dict() for c in configs], indent=1) + "\n")
    return configs


def budget_of(cfg: autost.ArchConfig, budget: str) -> float:
    """The analytic budget of ``cfg``: its parameter count or its FLOPs."""
    return float(
        autost.count_params(cfg) if budget == "params" else autost.estimate_cost(cfg).flops
    )


def band_pool(out: Path, name: str, n: int) -> list[autost.ArchConfig]:
    """Pool ``name`` of :data:`BAND_POOLS`: the first ``n`` distinct samples of the ``digits``
    space (drawn with the pool's seed) inside its budget band, persisted to
    ``OUT/ranking_pool_<name>.json`` with its definition and re-used when present."""
    spec = BAND_POOLS[name]
    path = out / f"ranking_pool_{name}.json"
    if path.exists():
        data = json.loads(path.read_text())
        stored = {k: data.get(k) for k in spec}
        if stored != spec or len(data["configs"]) != n:
            raise SystemExit(
                f"{path} holds {len(data['configs'])} architectures of {stored}, not "
                f"--pool-n {n} of {spec}: give another --out for another pool"
            )
        return [autost.ArchConfig.from_dict(c) for c in data["configs"]]
    space = SearchSpace.load("digits")
    rng = np.random.default_rng(spec["seed"])
    configs: list[autost.ArchConfig] = []
    seen: set[str] = set()
    draws = 0
    while len(configs) < n:
        if draws == MAX_DRAWS:
            raise SystemExit(f"pool {name}: {MAX_DRAWS} draws gave {len(configs)} of {n}")
        draws += 1
        cfg = space.sample(rng)
        key = cfg.to_json()
        if key in seen:
            continue
        seen.add(key)
        if abs(budget_of(cfg, spec["budget"]) / spec["target"] - 1) <= spec["tolerance"]:
            configs.append(cfg)
    data = {**spec, "space": "digits", "draws": draws, "configs": [c.to_dict() for c in configs]}
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
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
            text = f"{acc:.6f}"
            writer.writerow(
                {**row, "epochs": settings["epochs"], "device": device, "val_acc": text}
            )
            handle.flush()
            os.fsync(handle.fileno())
            done[key] = float(text)  # as a resumed run reads it back: the report is the same
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

    torch.set_num_threads(threads)


def train_one(
    cfg: autost.ArchConfig, dataset: str, seed: int, settings: dict[str, Any]
) -> tuple[float, str]:
    """One training with the fixed recipe; its validation accuracy and the device it ran on."""
    spec = DATASETS[dataset]
    root = settings["mnist_root"] if dataset == "mnist" else None
    size, options = spec["image_size"], spec["options"]
    if dataset == "mnist" and settings.get("mnist_size"):  # mnist_size.py's other input sizes
        size = settings["mnist_size"]
        options = {**options, "image_size": size}
    backend = settings.get("lif_backend") or spec["lif_backend"]
    with backend_env(backend), tempfile.TemporaryDirectory() as work:
        result = autost.train(
            cfg.replace(image_size=size),
            dataset,
            out=Path(work) / "run",
            epochs=settings["epochs"],
            lr=5e-3,
            batch_size=64,
            seed=seed,
            amp="off",
            device=settings["device"],
            root=root,
            dataset_options=options,
            progress=False,
            limit_train_batches=settings.get("limit_train_batches", 0),
        )
        device = json.loads((Path(work) / "run" / "train.json").read_text())["device"]
    acc = float(result.final["val_acc"]) if result.status == "completed" else 0.0
    return acc, device
