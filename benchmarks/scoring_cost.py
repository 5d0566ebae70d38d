"""Cost against ranking quality of the default ``zero-cost`` evaluator's scoring batch (issue
item 21): its sahd member re-scored at batch 8, 16, 32 and 64, at fewer timesteps and at half
the input resolution, on the existing ground truths, and timed on ``autost-small``.

Run (each part resumable; every value is cached in ``OUT/scoring_cost_*.csv``)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/scoring_cost.py --parts ranking,spikenas
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/scoring_cost.py --parts cost --threads 1
    nice -n 10 python benchmarks/scoring_cost.py --parts cost --threads 2 --variants full
    nice -n 10 python benchmarks/scoring_cost.py --parts search --search-setting b32 --threads 2
    nice -n 10 python benchmarks/scoring_cost.py --parts search --search-setting b16-T2 --threads 2
    python benchmarks/scoring_cost.py --report-only

Nothing is trained: the ground truths are those of ``ranking.py`` (band pools and open pool,
digits at 8x8 and MNIST at 16x16, accuracies in ``results/ranking_accuracy*.csv``) and of
``spikenas.py`` (CIFAR-10 accuracies of SpikeNAS-Bench's cells). ``flops`` is analytic and
does not depend on the batch, so only ``sahd`` is scored again.

Settings: batch ``b`` in 8, 16, 32, 64 crossed with a variant: ``full`` (the candidate's own
timesteps and input, as the recipe scores today), ``T2``/``T1`` (sahd computed with the
candidate's timesteps capped at 2 or 1) and ``half`` (sahd computed on the candidate built for
half the input side, on the same data resized). FLOPs always comes from the candidate as it is.
The recipe sets ``batch_size`` and ``max_timesteps`` (the cap); ``half`` is a measurement.

1. Ranking pools: the default's score exactly as ``ranking.py`` computes it (mean percentile of
   sahd and FLOPs in a reference pool of 64 digits-space samples drawn with seed 0, that pool
   scored at the same setting), Kendall tau-b against the same ground truths (band pools: mean
   over seeds 0 and 1; open pool: seed 0) with ``rankstats.correlations`` (1,000 paired
   resamples): each setting's interval, its difference to today's setting (batch 64, full) and
   to FLOPs on the same resamples.
2. SpikeNAS-Bench: as ``spikenas.py`` scores it (width 16, T 5, eager LIF, weights seed 0,
   ``natural_batch(b)``), the rank ensemble of sahd and FLOPs over the sample itself, the whole
   sample and each FLOPs level of >= 40 cells; today's setting is batch 32 (full). Cells are
   scored in the order of the seeded sample, every setting for each, so a run cut short leaves
   a prefix of the sample scored at every setting (``--spikenas-n`` says how many are used).
3. Cost on ``autost-small`` (3x32x32, T 4; the stand-in ``natural`` data that
   ``autost search`` scores with when no data is named, ``choose_data``): ``Evaluator.score``
   of ``--cost-n`` seeded samples, wall and CPU seconds, settings interleaved per candidate,
   LIF kernel eager (what a search uses), ``--threads`` torch threads, with the load average.
4. ``--parts search``: ``autost.search.search(space="autost-small", evaluator=<zero-cost at
   --search-setting>, budget=--search-budget, strategy="random")`` twice with one empty
   ``$AUTOST_CACHE``: the first run scores and caches the reference pool, the second reuses it.

``OUT/scoring_cost.md`` and ``OUT/scoring_cost.json`` are written from the caches.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ranking_pools import BAND_POOLS, DATASETS, MNIST_ROOT, band_pool, pool, trained
from rankstats import _cell, _signed, correlations, machine
from spikenas import MIN_LEVEL, sample_ids
from spikenas_extract import OUT as SPIKENAS_TABLE
from spikenas_extract import read_table

import autost
from autost.io import atomic_write_text

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


# ---------------------------------------------------------------------------- statistics
GroundTruth = dict[str, Any]  # name, accs, columns (setting -> values), flops, quoted


def _quoted() -> dict[str, dict[str, Any]]:
    """Today's published figures of the default (``ranking.json``, ``spikenas.json``):
    ground truth name -> tau, its interval, the difference to FLOPs and its interval."""
    out: dict[str, dict[str, Any]] = {}
    r = json.loads((RESULTS / "ranking.json").read_text())
    entries = [(f"open pool, {d}", e) for d, e in r["datasets"].items()]
    entries += [
        (f"`{p}` band, {d}", e) for p, pe in r["pools"].items() for d, e in pe["datasets"].items()
    ]
    for name, e in entries:
        out[name] = {
            "tau": e["kendall_tau"]["ensemble"],
            "tau_ci": e["kendall_tau_ci95"]["ensemble"],
            "minus_flops": e["minus_flops_tau"]["ensemble"],
            "minus_flops_ci": e["minus_flops_tau_ci95"]["ensemble"],
        }
    s = json.loads((RESULTS / "spikenas.json").read_text())
    key = next(k for k in s["proxies"] if k.startswith("zero-cost"))
    p = s["proxies"][key]
    out["SpikeNAS-Bench, whole sample"] = {
        "tau": p["kendall_tau"], "tau_ci": p["kendall_tau_ci95"],
        "minus_flops": p["minus_flops_tau"], "minus_flops_ci": p["minus_flops_tau_ci95"],
    }  # fmt: skip
    for level, entry in s["flops_levels"].items():
        q = entry["proxies"][key]
        out[f"SpikeNAS-Bench, FLOPs level {level}"] = {
            "tau": q["kendall_tau"], "tau_ci": q["kendall_tau_ci95"],
            "minus_flops": q["kendall_tau"], "minus_flops_ci": q["kendall_tau_ci95"],
        }  # fmt: skip
    return out


def _values(cache: Cache, source: str, pool_name: str, dataset: str, archs: list[int],
            setting: Setting) -> tuple[list[float], list[float], list[float]] | None:  # fmt: skip
    rows = [cache.get(source, pool_name, dataset, a, *setting) for a in archs]
    if any(r is None for r in rows):
        return None
    return (
        [float(r["sahd"]) for r in rows],  # type: ignore[index]
        [float(r["flops"]) for r in rows],  # type: ignore[index]
        [float(r["seconds"]) for r in rows],  # type: ignore[index]
    )


def ranking_truths(cache: Cache) -> tuple[list[GroundTruth], dict[str, dict[str, float]]]:
    """The ranking benchmark's six ground truths with the default's score per setting, and
    the median CPU seconds per candidate of each setting per dataset."""
    from autost.proxies import ReferencePool
    from autost.proxies.ensemble import orient

    sources = ranking_sources()
    truths: list[GroundTruth] = []
    cost: dict[str, dict[str, float]] = {}
    for dataset in DATASETS:
        refs: dict[Setting, ReferencePool] = {}
        for s in SETTINGS:
            got = _values(cache, "ranking", "reference", dataset, list(range(64)), s)
            if got is not None:
                refs[s] = ReferencePool({"sahd": tuple(got[0]), "flops": tuple(got[1])})
        for pool_name in RANKING_POOLS:
            n = len(sources[pool_name])
            if pool_name == "open":
                done = trained(RESULTS / "ranking_accuracy.csv", EPOCHS)
                seeds = [0]
            else:
                done = trained(RESULTS / f"ranking_accuracy_{pool_name}.csv", EPOCHS)
                seeds = [0, 1]
            if not all((dataset, i, k) in done for i in range(n) for k in seeds):
                continue
            accs = np.mean([[done[(dataset, i, k)] for i in range(n)] for k in seeds], axis=0)
            columns: dict[Setting, list[float]] = {}
            flops: list[float] = []
            for s, ref in refs.items():
                got = _values(cache, "ranking", pool_name, dataset, list(range(n)), s)
                if got is None:
                    continue
                columns[s] = [
                    ref.score({"sahd": a, "flops": f}, WEIGHTS)
                    for a, f in zip(*got[:2], strict=True)
                ]
                flops = got[1]
                if pool_name == "open":  # the cost column: the open pool's candidates
                    cost.setdefault(f"ranking {dataset}", {})[label(s)] = float(np.median(got[2]))
            name = (
                f"open pool, {dataset}" if pool_name == "open" else f"`{pool_name}` band, {dataset}"
            )
            truths.append({
                "name": name, "accs": accs.tolist(), "columns": columns, "today": TODAY_RANKING,
                "flops": orient("flops", flops).tolist(),
                "inside_budget": pool_name != "open",
            })  # fmt: skip
    return truths, cost


def spikenas_truths(
    cache: Cache, n: int, settings: list[Setting] = SETTINGS
) -> tuple[list[GroundTruth], dict[str, float], int]:
    """SpikeNAS-Bench's whole sample and its FLOPs levels, over the longest prefix of the
    sample scored at every setting; the median CPU seconds per cell of each setting."""
    from autost.proxies.ensemble import orient, rank_aggregate

    table = {int(r["id"]): float(r["test_acc"]) for r in read_table(SPIKENAS_TABLE)}
    ids: list[int] = []
    for arch_id in sample_ids(n, SPIKENAS_SEED):
        if any(cache.get("spikenas", "sample", "natural", arch_id, *s) is None for s in settings):
            break
        ids.append(arch_id)
    if len(ids) < 3:
        return [], {}, 0
    raw = {s: _values(cache, "spikenas", "sample", "natural", ids, s) for s in settings}
    cost = {label(s): float(np.median(v[2])) for s, v in raw.items() if v is not None}
    flops = dict(zip(ids, raw[TODAY_SPIKENAS][1], strict=True))  # type: ignore[index]
    groups = [("SpikeNAS-Bench, whole sample", ids)]
    levels: dict[float, list[int]] = {}
    for i in ids:
        levels.setdefault(flops[i], []).append(i)
    for value, members in sorted(levels.items()):
        if len(members) >= MIN_LEVEL:
            groups.append((f"SpikeNAS-Bench, FLOPs level {value / 1e6:.1f}M", members))
    truths = []
    position = {i: k for k, i in enumerate(ids)}
    for name, members in groups:
        columns = {}
        for s, v in raw.items():
            assert v is not None
            sahd = [v[0][position[i]] for i in members]
            fl = [flops[i] for i in members]
            columns[s] = rank_aggregate({"sahd": sahd, "flops": fl}, WEIGHTS)
        truths.append({
            "name": name, "accs": [table[i] for i in members], "columns": columns,
            "today": TODAY_SPIKENAS, "flops": orient("flops", [flops[i] for i in members]).tolist(),
            "inside_budget": True, "n": len(members),
        })  # fmt: skip
    return truths, cost, len(ids)


def judge(truth: GroundTruth, rng: np.random.Generator) -> dict[str, Any]:
    """Per setting: tau-b with its interval, the paired difference to today's setting and to
    FLOPs (each on shared resamples: ``correlations`` pairs every column with ``flops``)."""
    today = truth["today"]
    cols = {label(s): v for s, v in truth["columns"].items()}
    vs_today = correlations({"flops": cols[label(today)], **cols}, truth["accs"], rng)
    vs_flops = correlations({"flops": truth["flops"], **cols}, truth["accs"], rng)
    out = {}
    for s in truth["columns"]:
        a, f = vs_today[label(s)], vs_flops[label(s)]
        if len(set(truth["flops"])) == 1:  # one FLOPs level: FLOPs ranks nothing (tau 0)
            f = {"minus_flops_tau": a["tau"], "minus_flops_tau_ci": a["tau_ci"]}
        out[label(s)] = {
            "tau": a["tau"], "tau_ci95": a["tau_ci"],
            "minus_today": a["minus_flops_tau"], "minus_today_ci95": a["minus_flops_tau_ci"],
            "minus_flops": f["minus_flops_tau"], "minus_flops_ci95": f["minus_flops_tau_ci"],
            "top1": a["top1"],
        }  # fmt: skip
    return out


def data_seed_check(
    cache: Cache, n: int, quoted: dict[str, dict[str, Any]], rng: np.random.Generator
) -> dict[str, Any]:
    """SpikeNAS-Bench at :data:`SEED_SETTINGS` (other data batches) beside the same settings
    on seed 0: per setting label and seed, tau per ground truth and those outside today's
    published interval."""
    base = sorted({(b, parse(v)[0], parse(v)[1]) for b, v in SEED_SETTINGS})
    names = {(b, cap, half): v for b, v in SETTINGS for cap, half in [VARIANTS[v]]}
    settings = [(b, names[(b, cap, half)]) for b, cap, half in base]
    settings = list(dict.fromkeys([TODAY_SPIKENAS, *settings, *SEED_SETTINGS]))
    truths, _, cells = spikenas_truths(cache, n, settings)
    if not truths:
        return {}
    out: dict[str, Any] = {"cells": cells, "seeds": [0, *SEEDS], "settings": {}}
    for truth in truths:
        for name, e in judge(truth, rng).items():
            entry = out["settings"].setdefault(name, {"tau": {}, "outside": []})
            entry["tau"][truth["name"]] = e["tau"]
            entry["tau_ci95"] = entry.get("tau_ci95", {}) | {truth["name"]: e["tau_ci95"]}
            if not inside(e["tau"], quoted[truth["name"]]["tau_ci"]):
                entry["outside"].append(truth["name"])
    return out


def shipped_setting() -> str:
    """The setting ``evaluators/zero-cost.toml`` scores at now (``b16-T2``, ...)."""
    from autost.search.evaluator import Evaluator

    e = Evaluator.load("zero-cost")
    cap = {0: "", 2: "-T2", 1: "-T1"}.get(e.max_timesteps, f"-T{e.max_timesteps}")
    return f"b{e.batch_size}{cap}"


def decide(result: dict[str, Any]) -> dict[str, Any]:
    """The cheapest setting the recipe can express (a batch, a timesteps cap) whose tau and
    gain over FLOPs stay inside today's published intervals on every ground truth and, on
    SpikeNAS-Bench, at every data seed scored; cost = median wall seconds per autost-small
    candidate at 2 threads (the target), else at 1."""
    total = len(result["kendall_tau"])
    seeds = result.get("data_seed_check", {}).get("settings", {})

    def qualifies(name: str) -> bool:
        v = result["verdict"][name]
        return (
            v["ground_truths"] == total
            and not v["tau_outside_todays_interval"]
            and not v["gain_over_flops_outside_todays_interval"]
        )

    def seed_robust(name: str) -> bool | None:
        runs = [v for k, v in seeds.items() if k.partition("@s")[0] == name]
        return None if len(runs) < 2 else all(not v["outside"] for v in runs)

    cost = result["autost_small_cost"]

    def seconds(name: str, threads: str) -> float | None:
        entry = cost.get(threads, {}).get(name)
        return None if entry is None else entry["wall_median"]

    threads = "2" if "2" in cost else "1"
    settable = [n for n in result["verdict"] if not n.endswith("-half")]
    ranked = sorted(
        (n for n in settable if qualifies(n) and seconds(n, threads) is not None),
        key=lambda n: seconds(n, threads) or math.inf,
    )
    robust = [n for n in ranked if seed_robust(n)]
    chosen = robust[0] if robust else None
    return {
        "ground_truths": total,
        "cost_threads": threads,
        "qualifying_settings_by_cost": [
            {
                "setting": n,
                "seed_robust": seed_robust(n),
                **{f"wall_s_{t}_threads": seconds(n, t) for t in cost},
            }
            for n in ranked
        ],
        "chosen": chosen,
        "chosen_seconds": {t: seconds(chosen, t) for t in cost} if chosen else {},
        "shipped": shipped_setting(),
        "target_seconds_2_threads": 2.0,
    }


def inside(value: float | None, interval: list[float]) -> bool:
    return value is not None and bool(interval) and interval[0] <= value <= interval[1]


# ---------------------------------------------------------------------------- report
def cost_summary(cache: Cache) -> dict[str, dict[str, Any]]:
    """threads -> setting -> median wall and CPU seconds per autost-small candidate."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in cache.rows.values():
        groups.setdefault((row["threads"], label((int(row["batch"]), row["variant"]))), []).append(
            row
        )
    out: dict[str, dict[str, Any]] = {}
    for (threads, name), rows in sorted(groups.items()):
        loads = [float(r["load1"]) for r in rows]
        out.setdefault(threads, {})[name] = {
            "n": len(rows),
            "wall_median": float(np.median([float(r["wall"]) for r in rows])),
            "wall_mean": float(np.mean([float(r["wall"]) for r in rows])),
            "cpu_median": float(np.median([float(r["cpu"]) for r in rows])),
            "load1_range": [min(loads), max(loads)],
        }
    return out


def stability(cache: Cache, n: int) -> dict[str, Any]:
    """On autost-small: Kendall tau between today's sahd (b64, full) and each setting's over
    the timed samples (does the cheaper setting order the same candidates alike?)."""
    from scipy.stats import kendalltau

    out: dict[str, Any] = {}
    threads = sorted({r["threads"] for r in cache.rows.values()})
    if not threads:
        return out
    t = threads[0]
    base = [cache.get(t, i, 64, "full") for i in range(n)]
    if any(r is None for r in base):
        return out
    x = [float(r["sahd"]) for r in base]  # type: ignore[index]
    for s in SETTINGS:
        rows = [cache.get(t, i, *s) for i in range(n)]
        if all(r is not None for r in rows):
            y = [float(r["sahd"]) for r in rows]  # type: ignore[index]
            out[label(s)] = float(kendalltau(x, y).statistic)
    return out


def report(args: argparse.Namespace, command: str) -> None:
    scores = Cache(RESULTS / "scoring_cost_scores.csv", SCORE_HEADER, 6)
    costs = Cache(RESULTS / "scoring_cost_autost_small.csv", COST_HEADER, 4)
    quoted = _quoted()
    rng = np.random.default_rng(0)
    truths, ranking_cost = ranking_truths(scores)
    sn_truths, sn_cost, sn_n = spikenas_truths(scores, args.spikenas_n)
    truths = [t for t in [*truths, *sn_truths] if t["today"] in t["columns"]]
    results = {t["name"]: judge(t, rng) for t in truths}
    sizes = {t["name"]: len(t["accs"]) for t in truths}
    today_label = {t["name"]: label(t["today"]) for t in truths}
    seed_check = data_seed_check(scores, args.spikenas_n, quoted, rng)
    cost = cost_summary(costs)
    searches = []
    search_path = RESULTS / "scoring_cost_search.json"
    if search_path.exists():
        searches = json.loads(search_path.read_text())
    # which settings keep tau (and the gain over FLOPs) inside today's published intervals
    verdict: dict[str, Any] = {}
    for s in SETTINGS:
        name = label(s)
        outside_tau = [
            g for g, r in results.items()
            if name in r and g in quoted and not inside(r[name]["tau"], quoted[g]["tau_ci"])
        ]  # fmt: skip
        outside_gain = [
            g for g, r in results.items()
            if name in r and g in quoted
            and not inside(r[name]["minus_flops"], quoted[g]["minus_flops_ci"])
        ]  # fmt: skip
        judged = [g for g, r in results.items() if name in r and g in quoted]
        verdict[name] = {
            "ground_truths": len(judged),
            "tau_outside_todays_interval": outside_tau,
            "gain_over_flops_outside_todays_interval": outside_gain,
        }
    result = {
        "command": command,
        "machine": machine(),
        "settings": {label(s): {"batch": s[0], "variant": s[1]} for s in SETTINGS},
        "variants": {
            "full": "the candidate's own timesteps and input (today's scoring)",
            "T2": "sahd with the candidate's timesteps capped at 2 (FLOPs at its own T)",
            "T1": "sahd at one timestep (FLOPs at its own T)",
            "half": "sahd on the candidate built for half the input side, the same data resized",
        },
        "today": {"ranking": label(TODAY_RANKING), "spikenas": label(TODAY_SPIKENAS)},
        "quoted": quoted,
        "ground_truth_sizes": sizes,
        "spikenas_cells": sn_n,
        "kendall_tau": results,
        "cpu_seconds_per_candidate": {**ranking_cost, "spikenas (width 16)": sn_cost},
        "autost_small_cost": cost,
        "autost_small_sahd_agreement_with_b64": stability(costs, args.cost_n),
        "search": searches,
        "verdict": verdict,
        "data_seed_check": seed_check,
    }
    result["decision"] = decide(result)
    path = RESULTS / "scoring_cost.md"
    # a hand-written "## Reading" section at the end of the file survives a new report
    tail = path.read_text().partition("\n## Reading")[2] if path.exists() else ""
    text = markdown(result, today_label) + (f"\n## Reading{tail}" if tail else "")
    atomic_write_text(path, text)
    atomic_write_text(
        RESULTS / "scoring_cost.json", json.dumps(result, indent=2, allow_nan=False) + "\n"
    )
    for name, v in verdict.items():
        gain = len(v["gain_over_flops_outside_todays_interval"])
        print(
            f"{name:10s} tau outside: {len(v['tau_outside_todays_interval'])} of "
            f"{v['ground_truths']}; gain outside: {gain}"
        )


def decision_lines(result: dict[str, Any]) -> list[str]:
    d = result["decision"]
    lines = [
        "Rule: the cheapest setting the recipe can express (`data.batch_size`, "
        "`data.max_timesteps`; not `-half`) whose Kendall tau and gain over FLOPs stay inside "
        f"today's published 95% intervals on all {d['ground_truths']} ground truths below, and "
        "on SpikeNAS-Bench at every data seed scored (the data-seed check); cost: median wall "
        f"seconds per autost-small candidate at {d['cost_threads']} thread(s).",
        "",
    ]
    shown = "; ".join(
        f"`{r['setting']}` "
        + ", ".join(
            f"{v:.2f} s ({k.split('_')[2]} thr.)"
            for k, v in r.items()
            if k.startswith("wall_s_") and v is not None
        )
        + {True: ", every seed inside", False: ", a seed outside", None: ", seeds not scored"}[
            r["seed_robust"]
        ]
        for r in d["qualifying_settings_by_cost"]
    )
    lines.append(f"- Settings inside on every ground truth, cheapest first: {shown or 'none'}.")
    chosen = d["chosen"]
    if chosen is None:
        lines.append("- No setting qualifies at every data seed: nothing to ship.")
    else:
        secs = ", ".join(f"{v:.2f} s at {t} thread(s)" for t, v in d["chosen_seconds"].items() if v)
        two = d["chosen_seconds"].get("2")
        met = "met" if two is not None and two <= d["target_seconds_2_threads"] else "NOT met"
        lines.append(
            f"- Chosen: `{chosen}` ({secs} per autost-small candidate, median wall): the "
            f"<= {d['target_seconds_2_threads']:g} s target on 2 cores is {met}."
        )
    lines.append(
        f"- `evaluators/zero-cost.toml` scores at `{d['shipped']}`"
        + (" (the chosen setting)." if d["shipped"] == chosen else f", NOT the chosen `{chosen}`.")
    )
    return lines


def markdown(result: dict[str, Any], today_label: dict[str, str]) -> str:
    """The tables of ``scoring_cost.md`` (its decision text is appended by hand below them)."""
    q, taus = result["quoted"], result["kendall_tau"]
    lines = [
        "# Scoring cost against ranking quality of the default `zero-cost` (issue item 21)",
        "",
        f"Written by `{result['command']}` ({result['machine']}); the scores came from the "
        "commands in the script's docstring (`benchmarks/scoring_cost.py`), cached in "
        "`scoring_cost_scores.csv`, `scoring_cost_autost_small.csv` and "
        "`scoring_cost_search.json`.",
        "",
        "Settings: `bN` = sahd on one batch of N (FLOPs is analytic and batch-free); "
        "`-T2`/`-T1` = sahd with the candidate's timesteps capped at 2/1; `-half` = sahd on "
        "the candidate built for half the input side (the same data resized). Today: "
        f"`{result['today']['ranking']}` (the recipe; ranking pools) and "
        f"`{result['today']['spikenas']}` (spikenas.py's batch). SpikeNAS-Bench: the first "
        f"{result['spikenas_cells']} cells of its seed-2026 sample.",
        "",
        "## Decision",
        "",
        *decision_lines(result),
        "",
        "## Kendall tau-b of the default at each batch (full timesteps and resolution)",
        "",
        "Each cell: tau [95% bootstrap interval]; below it, the paired difference to today's "
        "setting [paired 95% interval] (1,000 resamples, `rankstats.correlations`). "
        "`in` / `OUT`: the tau inside / outside today's published interval.",
        "",
        "| ground truth | n | published today: tau [95% CI] | "
        + " | ".join(f"b{b}" for b in BATCHES)
        + " |",
        "|---|---:|---|" + "---|" * len(BATCHES),
    ]
    for g, r in taus.items():
        cells = []
        for b in BATCHES:
            e = r.get(f"b{b}")
            if e is None:
                cells.append("n/a")
                continue
            mark = "in" if g in q and inside(e["tau"], q[g]["tau_ci"]) else "OUT"
            if today_label[g] == f"b{b}":
                cells.append(f"{_cell(e['tau'], e['tau_ci95'])} (today's setting)")
            else:
                cells.append(
                    f"{_cell(e['tau'], e['tau_ci95'])} {mark}<br>"
                    f"{_cell(e['minus_today'], e['minus_today_ci95'])}"
                )
        pub = _cell(q[g]["tau"], q[g]["tau_ci"]) if g in q else "n/a"
        lines.append(
            f"| {g} | {result['ground_truth_sizes'][g]} | {pub} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "## Gain over FLOPs at each batch (the figures the README quotes)",
        "",
        "Tau minus FLOPs' tau [paired 95% interval]; `in` / `OUT`: inside / outside today's "
        "published interval of that difference. Inside a SpikeNAS-Bench FLOPs level FLOPs "
        "ranks nothing, so the gain is the tau.",
        "",
        "| ground truth | published today | " + " | ".join(f"b{b}" for b in BATCHES) + " |",
        "|---|---|" + "---|" * len(BATCHES),
    ]
    for g, r in taus.items():
        cells = []
        for b in BATCHES:
            e = r.get(f"b{b}")
            if e is None:
                cells.append("n/a")
                continue
            mark = "in" if g in q and inside(e["minus_flops"], q[g]["minus_flops_ci"]) else "OUT"
            cells.append(f"{_cell(e['minus_flops'], e['minus_flops_ci95'])} {mark}")
        pub = _cell(q[g]["minus_flops"], q[g]["minus_flops_ci"]) if g in q else "n/a"
        lines.append(f"| {g} | {pub} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Every setting: tau on each ground truth",
        "",
        "Tau of the default; `*` marks a tau outside today's published interval.",
        "",
        "| setting | " + " | ".join(taus) + " |",
        "|---|" + "---:|" * len(taus),
    ]
    for s in SETTINGS:
        name = label(s)
        cells = []
        for g, r in taus.items():
            e = r.get(name)
            if e is None:
                cells.append("n/a")
            else:
                star = "" if g in q and inside(e["tau"], q[g]["tau_ci"]) else "*"
                cells.append(f"{_signed(e['tau'])}{star}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    check = result["data_seed_check"]
    if check:
        truths = list(next(iter(check["settings"].values()))["tau"])
        lines += [
            "",
            "## Data-seed check: SpikeNAS-Bench on other batches",
            "",
            f"The same settings scored on `natural_batch(b, seed)` for seeds "
            f"{', '.join(map(str, check['seeds']))} (seed 0 is the batch above), first "
            f"{check['cells']} cells: how much the draw of one batch moves the default's tau. "
            "`*`: outside today's published interval.",
            "",
            "| setting | " + " | ".join(truths) + " | outside |",
            "|---|" + "---:|" * len(truths) + "---:|",
        ]
        for name, entry in check["settings"].items():
            cells = []
            for g in truths:
                value = entry["tau"][g]
                star = "*" if g in entry["outside"] else ""
                cells.append(f"{_signed(value)}{star}")
            shown = name if "@s" in name else f"{name}@s0"
            lines.append(
                f"| {shown} | "
                + " | ".join(cells)
                + f" | {len(entry['outside'])} of {len(truths)} |"
            )
    cpu = result["cpu_seconds_per_candidate"]
    cost = result["autost_small_cost"]
    agree = result["autost_small_sahd_agreement_with_b64"]
    threads = sorted(cost)
    lines += [
        "",
        "## Cost per candidate",
        "",
        "Ground-truth pools: median CPU seconds (process time, one torch thread) of sahd and "
        "FLOPs per candidate, model build included (ranking: the open pool's 40 candidates). "
        "autost-small: `Evaluator.score` per "
        "candidate on the stand-in `natural` 3x32x32 batch (a variant: sahd on the reduced "
        "candidate plus FLOPs), median wall seconds over the timed samples at each thread "
        "count (with the 1-minute load average seen), and the CPU seconds at the first. "
        "Agreement: Kendall tau between that setting's sahd and today's (b64) over the same "
        "autost-small samples. Violations: ground truths whose tau falls outside today's "
        "published interval.",
        "",
        "| setting | "
        + " | ".join(f"{k} CPU s" for k in cpu)
        + " | "
        + " | ".join(f"autost-small wall s, {t} thread(s) [load]" for t in threads)
        + " | autost-small CPU s | agreement with b64 | tau outside today's interval |",
        "|---|" + "---:|" * (len(cpu) + len(threads) + 2) + "---|",
    ]
    for s in SETTINGS:
        name = label(s)
        cells = [f"{cpu[k][name]:.3f}" if name in cpu[k] else "n/a" for k in cpu]
        for t in threads:
            c = cost[t].get(name)
            cells.append(
                f"{c['wall_median']:.2f} (n {c['n']}) "
                f"[{c['load1_range'][0]:.1f}-{c['load1_range'][1]:.1f}]"
                if c
                else "n/a"
            )
        first = cost[threads[0]].get(name) if threads else None
        cells.append(f"{first['cpu_median']:.2f}" if first else "n/a")
        cells.append(f"{agree[name]:+.3f}" if name in agree else "n/a")
        v = result["verdict"][name]
        bad = v["tau_outside_todays_interval"]
        cells.append(f"{len(bad)} of {v['ground_truths']}" + (f": {'; '.join(bad)}" if bad else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result["search"]:
        lines += [
            "",
            "## Whole searches (autost-small, random, stand-in data)",
            "",
            "| setting | budget | threads | run | reference.json source | wall s | CPU s "
            "| s per candidate | load before / after |",
            "|---|---:|---:|---|---|---:|---:|---:|---|",
        ]
        for entry in result["search"]:
            for run in entry["runs"]:
                setting = entry.get("setting", f"b{entry['batch']}")
                lines.append(
                    f"| {setting} | {entry['budget']} | {entry['threads']} | {run['run']} | "
                    f"{run.get('reference_source')} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | "
                    f"{run['wall_s'] / entry['budget']:.2f} | "
                    f"{run['load1_before']:.2f} / {run['load1_after']:.2f} |"
                )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", default="ranking,spikenas", help="ranking,spikenas,seeds,cost,search"
    )
    parser.add_argument("--spikenas-n", type=int, default=1000, help="SpikeNAS-Bench cells")
    parser.add_argument("--cost-n", type=int, default=10, help="autost-small samples timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="cost part: variants")
    parser.add_argument("--search-setting", default="b16-T2", help="search part: bN[-T2|-T1]")
    parser.add_argument("--search-budget", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after (0: no limit)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--no-report", action="store_true", help="score only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("AUTOST_LIF_BACKEND", "eager")  # what a search scores with
    parts = [p for p in args.parts.split(",") if p]
    clock = Clock(args.minutes)
    if not args.report_only:
        scores = Cache(RESULTS / "scoring_cost_scores.csv", SCORE_HEADER, 6)
        if "ranking" in parts:
            score_ranking(scores, clock)
        if "spikenas" in parts:
            score_spikenas(scores, clock, args.spikenas_n)
        if "seeds" in parts:
            score_spikenas(scores, clock, args.spikenas_n, SEED_SETTINGS)
        if "cost" in parts:
            costs = Cache(RESULTS / "scoring_cost_autost_small.csv", COST_HEADER, 4)
            variants = [v for v in args.variants.split(",") if v]
            score_cost(costs, clock, args.cost_n, args.threads, variants)
        if "search" in parts:
            path = RESULTS / "scoring_cost_search.json"
            runs = json.loads(path.read_text()) if path.exists() else []
            runs.append(run_search(args.search_setting, args.search_budget, args.threads))
            atomic_write_text(path, json.dumps(runs, indent=2) + "\n")
    if args.no_report:
        return
    command = "python benchmarks/scoring_cost.py --report-only"
    if args.spikenas_n != 1000:
        command += f" --spikenas-n {args.spikenas_n}"
    report(args, command)


if __name__ == "__main__":
    main()
