"""Scoring part of ``scoring_cost.py``: its settings, the resumable CSV caches, and the
scoring of the ranking pools, SpikeNAS-Bench, autost-small's cost and whole searches."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ranking_pools import BAND_POOLS, DATASETS, MNIST_ROOT, band_pool, pool
from spikenas import sample_ids

import autost

RESULTS = Path(__file__).parent / "results"
BATCHES = (8, 16, 32, 64)
#: variant -> (timesteps cap, 0 = the candidate's own; half the input side)
VARIANTS: dict[str, tuple[int, bool]] = {
    "full": (0, False),
    "T2": (2, False),
    "T1": (1, False),
    "half": (0, True),
}
Setting = tuple[int, str]
SETTINGS: list[Setting] = [(b, v) for b in BATCHES for v in VARIANTS]
#: SpikeNAS-Bench settings scored again on other data seeds (``natural_batch(b, seed)``):
#: how much one batch's draw moves the figures; variant ``"<variant>@s<seed>"``.
SEEDS = (1, 2)
SEED_SETTINGS: list[Setting] = [
    (b, f"{v}@s{k}")
    for k in SEEDS
    for b, v in ((8, "full"), (16, "full"), (16, "T2"), (16, "T1"), (32, "full"), (32, "T1"))
]
TODAY_RANKING: Setting = (64, "full")  # evaluators/zero-cost.toml before this benchmark
TODAY_SPIKENAS: Setting = (32, "full")  # benchmarks/spikenas.py
WEIGHTS = {"sahd": 1.0, "flops": 1.0}
EPOCHS = 10
RANKING_POOLS = ("open", *BAND_POOLS)
SPIKENAS_WIDTH, SPIKENAS_T, SPIKENAS_SEED = 16, 5, 2026
SCORE_HEADER = ["source", "pool", "dataset", "arch", "batch", "variant", "sahd", "flops", "seconds"]
COST_HEADER = ["threads", "arch", "batch", "variant", "wall", "cpu", "load1", "sahd", "flops"]


def parse(variant: str) -> tuple[int, bool, int]:
    """``(timesteps cap, half, data seed)`` of ``variant`` (``"T1"``, ``"full@s1"``, ...)."""
    name, _, seed = variant.partition("@s")
    cap, half = VARIANTS[name]
    return cap, half, int(seed or 0)


def label(setting: Setting) -> str:
    b, variant = setting
    name, _, seed = variant.partition("@s")
    return (f"b{b}" if name == "full" else f"b{b}-{name}") + (f"@s{seed}" if seed else "")


def reduced(cfg: autost.ArchConfig, variant: str) -> autost.ArchConfig:
    """The config sahd is computed on for ``variant``."""
    cap, half = VARIANTS[variant]
    if cap and cfg.timesteps > cap:
        cfg = cfg.replace(timesteps=cap)
    if half:
        cfg = cfg.replace(image_size=cfg.image_size // 2)
    return cfg


# ---------------------------------------------------------------------------- caches
class Cache:
    """Rows of a CSV keyed by the first ``key`` columns, appended and synced one at a time."""

    def __init__(self, path: Path, header: list[str], key: int) -> None:
        self.path, self.header, self.key = path, header, key
        self.rows: dict[tuple[str, ...], dict[str, str]] = {}
        if path.exists():
            with path.open() as handle:
                for row in csv.DictReader(handle):
                    self.rows[tuple(row[h] for h in header[:key])] = row

    def get(self, *key: Any) -> dict[str, str] | None:
        return self.rows.get(tuple(str(k) for k in key))

    def add(self, row: dict[str, Any]) -> None:
        new = not self.path.exists() or not self.path.stat().st_size
        text = {h: (repr(v) if isinstance(v, float) else str(v)) for h, v in row.items()}
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, self.header, lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow(text)
            handle.flush()
            os.fsync(handle.fileno())
        self.rows[tuple(text[h] for h in self.header[: self.key])] = text


class Clock:
    """Stops starting new work after ``minutes`` (0: never)."""

    def __init__(self, minutes: float) -> None:
        self.minutes, self.start = minutes, time.perf_counter()

    def out(self) -> bool:
        return bool(self.minutes) and time.perf_counter() - self.start > 60 * self.minutes


# ---------------------------------------------------------------------------- scoring
def ranking_sources() -> dict[str, list[autost.ArchConfig]]:
    """The ranking benchmark's pools (persisted) and the ensemble's reference pool (64
    digits-space samples drawn with seed 0, as ``ranking_scores.Scores._reference``)."""
    from autost.search.space import SearchSpace

    pools = {"open": pool(RESULTS, 40), **{n: band_pool(RESULTS, n, 40) for n in BAND_POOLS}}
    rng = np.random.default_rng(0)
    space = SearchSpace.load("digits")
    pools["reference"] = [space.sample(rng) for _ in range(64)]
    return pools


def recipe_at(batch: int, cap: int = 0) -> dict[str, Any]:
    """The shipped zero-cost recipe (members, weights, seeds, pool) scored on a batch of
    ``batch`` with the data proxies' timesteps capped at ``cap`` (0: the candidate's own)."""
    from autost.search.evaluator import Evaluator

    data = Evaluator.load("zero-cost").to_dict()
    data["data"]["batch_size"] = batch
    data["data"].pop("max_timesteps", None)
    if cap:
        data["data"]["max_timesteps"] = cap
    return data


def evaluator(dataset: str, batch: int, half: bool) -> Any:
    """The shipped zero-cost recipe at ``batch`` on ``dataset`` (``ranking.py``'s options), the
    input side halved for ``half``."""
    from autost.search.evaluator import Evaluator

    e = Evaluator.from_dict(recipe_at(batch), "evaluators/zero-cost.toml")
    spec = DATASETS[dataset]
    options = dict(spec["options"])
    if half:
        options["image_size"] = spec["image_size"] // 2
    if dataset != "digits" or half:
        root = str(MNIST_ROOT) if dataset == "mnist" else None
        e = e.with_dataset(dataset, root, **options)
    return e


def score_ranking(cache: Cache, clock: Clock) -> None:
    """sahd (and FLOPs) of every ranking pool and the reference pool, at every setting."""
    from autost.proxies import score_all

    sources = ranking_sources()
    evaluators: dict[tuple[str, int, bool], Any] = {}
    for dataset in DATASETS:
        size = DATASETS[dataset]["image_size"]
        for pool_name, configs in sources.items():
            for i, cfg in enumerate(configs):
                if clock.out():
                    print("ranking: time is up; run again to resume", flush=True)
                    return
                cfg = cfg.replace(image_size=size)
                todo = [s for s in SETTINGS if not cache.get("ranking", pool_name, dataset, i, *s)]
                for b, variant in todo:
                    half = VARIANTS[variant][1]
                    key = (dataset, b, half)
                    if key not in evaluators:
                        evaluators[key] = evaluator(dataset, b, half)
                    e = evaluators[key]
                    small = reduced(cfg, variant)
                    batch = e.batch(small)  # loaded (and cached) outside the timing
                    start = time.process_time()
                    sahd = score_all(small, ["sahd"], batch=batch, seed=e.seed)["sahd"]
                    flops = score_all(cfg, ["flops"], seed=e.seed)["flops"]
                    seconds = time.process_time() - start
                    cache.add(dict(source="ranking", pool=pool_name, dataset=dataset, arch=i,
                                   batch=b, variant=variant, sahd=float(sahd),
                                   flops=float(flops), seconds=round(seconds, 4)))  # fmt: skip
                if todo:
                    print(f"ranking {dataset} {pool_name} {i}: {len(todo)} settings", flush=True)


def spikenas_flops() -> dict[int, float]:
    """FLOPs (analytic) of every cell ``spikenas.py`` scored, from its table."""
    with (RESULTS / "spikenas_scores.csv").open() as handle:
        return {
            int(r["id"]): float(r["raw"]) for r in csv.DictReader(handle) if r["proxy"] == "flops"
        }


def score_spikenas(cache: Cache, clock: Clock, n: int, settings: list[Setting] = SETTINGS) -> None:
    """sahd of the first ``n`` sample cells at every setting, as ``spikenas.py`` scores them."""
    from autost.data.natural import natural_batch
    from autost.model.spikenas import build_spikenas_model
    from autost.proxies import score as score_model

    flops = spikenas_flops()
    batches: dict[tuple[int, int, int], Any] = {}
    for k, arch_id in enumerate(sample_ids(n, SPIKENAS_SEED)):
        todo = [s for s in settings if not cache.get("spikenas", "sample", "natural", arch_id, *s)]
        if not todo:
            continue
        if clock.out():
            print(f"spikenas: time is up after {k} cells; run again to resume", flush=True)
            return
        for b, variant in todo:
            cap, half, seed = parse(variant)
            steps = min(SPIKENAS_T, cap) if cap else SPIKENAS_T
            size = 16 if half else 32
            if (b, size, seed) not in batches:
                batches[(b, size, seed)] = natural_batch(b, seed, size=size)
            start = time.process_time()
            with torch.random.fork_rng(devices=[]):  # as spikenas.build: weights seed 0
                torch.manual_seed(0)
                model = build_spikenas_model(arch_id, width=SPIKENAS_WIDTH, backend="eager",
                                             timesteps=steps, image_size=size)  # fmt: skip
            sahd = score_model(model, batches[(b, size, seed)], ["sahd"]).raw["sahd"]
            seconds = time.process_time() - start
            cache.add(dict(source="spikenas", pool="sample", dataset="natural", arch=arch_id,
                           batch=b, variant=variant, sahd=float(sahd), flops=flops[arch_id],
                           seconds=round(seconds, 4)))  # fmt: skip
        print(f"spikenas [{k + 1}/{n}] id {arch_id}: {len(todo)} settings", flush=True)


def cost_configs(n: int) -> list[autost.ArchConfig]:
    from autost.search.space import SearchSpace

    space = SearchSpace.load("autost-small")
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(n)]


def score_cost(cache: Cache, clock: Clock, n: int, threads: int, variants: list[str]) -> None:
    """``Evaluator.score`` of ``n`` autost-small samples at every batch and variant, on the
    stand-in data a search scores with; settings interleaved per candidate."""
    from autost.proxies import ReferencePool, score_all
    from autost.search.evaluator import Evaluator
    from autost.search.inputs import choose_data

    configs = cost_configs(n)
    placeholder = ReferencePool.from_rows([{"sahd": 0.0, "flops": 0.0}], ["sahd", "flops"])
    scorers: dict[Setting, Any] = {}
    for b in BATCHES:
        e, _ = choose_data(
            Evaluator.from_dict(recipe_at(b), "zero-cost"), "autost-small", configs[0], False
        )
        e.set_reference(placeholder)  # the percentile lookup costs nothing; the pool is cached
        for variant in variants:
            if VARIANTS[variant][1]:
                half = e.with_dataset(e.dataset, None, **{**e.options, "image_size": 16})
                scorers[(b, variant)] = half
            else:
                scorers[(b, variant)] = e
    for i, cfg in enumerate(configs):
        for b, variant in [(b, v) for b in BATCHES for v in variants]:
            if cache.get(threads, i, b, variant):
                continue
            if clock.out():
                print("cost: time is up; run again to resume", flush=True)
                return
            e = scorers[(b, variant)]
            small = reduced(cfg, variant)
            e.batch(small)  # the one fixed batch, loaded once per search: not timed
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            if variant == "full":
                out = e.score(cfg)  # what a search calls per candidate
            else:
                out = score_all(small, ["sahd"], batch=e.batch(small), seed=e.seed)
                out.update(score_all(cfg, ["flops"], seed=e.seed))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            cache.add(dict(threads=threads, arch=i, batch=b, variant=variant, wall=round(wall, 3),
                           cpu=round(cpu, 3), load1=round(load, 2), sahd=float(out["sahd"]),
                           flops=float(out["flops"])))  # fmt: skip
            print(f"cost t{threads} arch {i} {label((b, variant))}: {wall:.2f} s wall, "
                  f"{cpu:.2f} s CPU, load {load:.2f}", flush=True)  # fmt: skip


def run_search(setting: str, budget: int, threads: int) -> dict[str, Any]:
    """Two identical random searches of autost-small with one empty ``$AUTOST_CACHE``, the
    recipe scoring at ``setting`` (``b32``, ``b16-T2``, ...: what the recipe can set)."""
    from autost.search import search

    batch_text, _, variant = setting.partition("-")
    batch, (cap, half) = int(batch_text.lstrip("b")), VARIANTS[variant or "full"]
    if half:
        raise SystemExit("--search-setting: the recipe cannot halve the input side")
    data = recipe_at(batch, cap)
    runs = []
    with tempfile.TemporaryDirectory(prefix="scoring_cost_") as tmp:
        recipe = Path(tmp) / f"zero-cost-{setting}.json"
        recipe.write_text(json.dumps(data))
        os.environ["AUTOST_CACHE"] = str(Path(tmp) / "cache")
        for k in range(2):
            load = os.getloadavg()[0]
            start = time.perf_counter()
            cpu = time.process_time()
            search(space="autost-small", evaluator=recipe, budget=budget, strategy="random",
                   out=Path(tmp) / f"run{k}", progress=False)  # fmt: skip
            run = {
                "run": "reference pool scored and cached" if k == 0 else "reference pool cached",
                "wall_s": round(time.perf_counter() - start, 2),
                "cpu_s": round(time.process_time() - cpu, 2),
                "load1_before": round(load, 2),
                "load1_after": round(os.getloadavg()[0], 2),
            }
            meta = json.loads((Path(tmp) / f"run{k}" / "reference.json").read_text())["meta"]
            run["reference_source"] = meta.get("source")
            runs.append(run)
            print(f"search {setting}: {run}", flush=True)
    return {"setting": setting, "batch": batch, "budget": budget, "threads": threads,
            "runs": runs}  # fmt: skip
