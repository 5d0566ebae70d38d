"""Statistics part of ``scoring_cost.py``: the ground truths from the cached scores, Kendall
tau with paired intervals per setting, the data-seed check and the decision rule."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ranking_pools import DATASETS, trained
from rankstats import correlations
from scoring_cost_scores import (
    EPOCHS,
    RANKING_POOLS,
    RESULTS,
    SEED_SETTINGS,
    SEEDS,
    SETTINGS,
    SPIKENAS_SEED,
    TODAY_RANKING,
    TODAY_SPIKENAS,
    VARIANTS,
    WEIGHTS,
    Cache,
    Setting,
    label,
    parse,
    ranking_sources,
)
from spikenas import MIN_LEVEL, sample_ids
from spikenas_extract import OUT as SPIKENAS_TABLE
from spikenas_extract import read_table

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
