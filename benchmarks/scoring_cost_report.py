"""Report part of ``scoring_cost.py``: ``results/scoring_cost.md`` and ``.json`` from the
caches and the statistics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from rankstats import _cell, _signed, machine
from scoring_cost_scores import (
    BATCHES,
    COST_HEADER,
    RESULTS,
    SCORE_HEADER,
    SETTINGS,
    TODAY_RANKING,
    TODAY_SPIKENAS,
    Cache,
    label,
)
from scoring_cost_stats import (
    _quoted,
    data_seed_check,
    decide,
    inside,
    judge,
    ranking_truths,
    spikenas_truths,
)

from autost.io import atomic_write_text


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
