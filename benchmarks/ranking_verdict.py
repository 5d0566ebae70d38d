"""The verdict at the top of ``ranking.md``: the shipped default against the ranking target on
every ground truth, and which proxy ranks best where the ground truth can rank inside a budget.

:func:`verdict` builds it from ``ranking.json``'s figures (it is stored there under
``verdict``); :func:`verdict_markdown` writes its section. The target, per ground truth: the
default's Kendall tau at least 0.10 above FLOPs' with the paired-bootstrap interval of the
difference above zero, and its top-1 pick within 1% of the best (:func:`rankstats.target_verdict`).
"""

from __future__ import annotations

from typing import Any

from rankstats import _cell, _or, _signed, target_verdict

#: The shipped default's key in the pools' tables.
DEFAULT = "ensemble"
#: The dataset the default's members were chosen on (evaluators/zero-cost.toml): its columns
#: are not held out.
SELECTION_DATASET = "digits"


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """Every ground truth's row for the default, and the per-proxy tau over the budgeted ground
    truths that can rank (bands whose seed-to-seed interval lies above zero, SpikeNAS-Bench's
    whole sample, and the mean over its FLOPs levels), with the mean over the held-out ones (not
    ``SELECTION_DATASET``): point estimates, no interval."""
    rows: list[dict[str, Any]] = []
    columns: dict[str, dict[str, float | None]] = {}
    meets: dict[str, dict[str, bool]] = {}  # column -> proxy -> both halves of the target met
    held_out: list[str] = []
    for ds, result in report["datasets"].items():
        if DEFAULT not in result["kendall_tau"]:
            continue
        seeds = next(iter(result.get("seed_to_seed", {}).values()), None)
        rows.append(_band_row(f"open pool, {ds}", False, result, seeds))
    for pool, entry in report["pools"].items():
        for ds, result in entry["datasets"].items():
            if DEFAULT not in result["kendall_tau"]:
                continue
            label = f"`{pool}` band, {ds}"
            row = _band_row(label, True, result, result.get("seed_to_seed"))
            rows.append(row)
            if row["reliable"]:
                columns[label] = dict(result["kendall_tau"])
                meets[label] = {
                    n: _meets(
                        result["minus_flops_tau"].get(n),
                        result["minus_flops_tau_ci95"].get(n, []),
                        top1,
                    )
                    for n, top1 in result["top1_relative_accuracy"].items()
                }
                if ds != SELECTION_DATASET:
                    held_out.append(label)
    spikenas = report.get("spikenas")
    if spikenas and spikenas.get("default") in spikenas.get("whole_sample", {}):
        name = spikenas["default"]

        def ours(named: dict[str, Any]) -> dict[str, Any]:  # its default under our key
            return {(DEFAULT if n == name else n): v for n, v in named.items()}

        whole = ours(spikenas["whole_sample"])
        label = f"SpikeNAS-Bench, {whole[DEFAULT]['n']:,} cells (CIFAR-10)"
        p = whole[DEFAULT]
        rows.append(_row(label, p, p["minus_flops_tau"], p["minus_flops_tau_ci95"], seeds=None))
        columns[label] = {n: p["kendall_tau"] for n, p in whole.items()}
        meets[label] = {
            n: _meets(p["minus_flops_tau"], p["minus_flops_tau_ci95"], p["top1_relative_accuracy"])
            for n, p in whole.items()
        }
        held_out.append(label)
        levels = spikenas["flops_levels"]
        for level, band in levels.items():
            if band["default"]:
                label = f"SpikeNAS-Bench, FLOPs level {level} ({band['n']} cells)"
                # FLOPs is one value per level and ranks nothing: the gain is the default's tau
                p = band["default"]
                rows.append(_row(label, p, p["kendall_tau"], p["kendall_tau_ci95"], seeds=None))
        if levels and all(band.get("proxies") for band in levels.values()):
            label = f"SpikeNAS-Bench, inside its FLOPs levels (mean over {len(levels)})"
            inside = ours(_inside_levels(levels))
            columns[label] = {n: t for n, (t, _) in inside.items()}
            meets[label] = {n: m for n, (_, m) in inside.items()}
            held_out.append(label)
    names = sorted({n for taus in columns.values() for n in taus})
    table = {
        n: {
            "kendall_tau": {c: columns[c].get(n) for c in columns},
            "held_out_mean_tau": _mean([columns[c].get(n) for c in held_out]),
            "mean_tau": _mean([columns[c].get(n) for c in columns]),
        }
        for n in names
    }
    weighed = [r for r in rows if r["budgeted"] and r["reliable"]]  # nothing to weigh: not met
    met_on = [r["ground_truth"] for r in weighed if r["tau_target"] == r["top1_target"] == "met"]
    # the exceptions: per held-out column, the proxies whose tau is above the default's
    above_default = {
        c: {
            n: t
            for n in names
            if (t := columns[c].get(n)) is not None
            and (mine := columns[c].get(DEFAULT)) is not None
            and t > mine
        }
        for c in held_out
    }
    ranked = [n for n in names if table[n]["held_out_mean_tau"] is not None]
    best = max(ranked, key=lambda n: table[n]["held_out_mean_tau"], default=None)
    # those not scored everywhere: is the default above them on each held-out column they share?
    partial = {}
    for n in names:
        shared = [c for c in held_out if table[n]["kendall_tau"][c] is not None]
        if n in ranked or n == DEFAULT or not shared:
            continue
        partial[n] = all(
            _or(columns[c].get(DEFAULT), -2.0) > _or(columns[c][n], -2.0) for c in shared
        )
    return {
        "default": DEFAULT,
        "rows": rows,
        "weighed": len(weighed),
        "met_on": met_on,
        "met": bool(weighed) and len(met_on) == len(weighed),
        "columns": list(columns),
        "held_out": held_out,
        "proxies": table,
        "best_held_out": best,
        # the proxies that meet both halves of the target on every column (none: the table says so)
        "meet_target_everywhere": [n for n in names if all(meets[c].get(n) for c in columns)],
        "meet_target": {c: sorted(n for n, ok in meets[c].items() if ok) for c in columns},
        "default_above_partial": partial,
        "above_default": above_default,
    }


def _band_row(
    label: str, budgeted: bool, result: dict[str, Any], seeds: dict[str, Any] | None
) -> dict[str, Any]:
    """One pool and dataset of the benchmark's own trainings."""
    figures = {k: result[k][DEFAULT] for k in ("kendall_tau", "kendall_tau_ci95")}
    figures["top1_relative_accuracy"] = result["top1_relative_accuracy"][DEFAULT]
    gain = result["minus_flops_tau"].get(DEFAULT)
    interval = result["minus_flops_tau_ci95"].get(DEFAULT, [])
    return _row(label, figures, gain, interval, seeds, budgeted)


def _row(
    label: str,
    p: dict[str, Any],
    gain: float | None,
    interval: list[float],
    seeds: dict[str, Any] | None,
    budgeted: bool = True,
) -> dict[str, Any]:
    """The default on one ground truth: its tau, gain over FLOPs and top-1 (``p``), and the
    seed-to-seed agreement of the ground truth, None where there is no second seed (SpikeNAS-
    Bench publishes one training per cell): no evidence against it, so it counts as reliable."""
    tau_met, top1_met = target_verdict(gain, interval, p["top1_relative_accuracy"])
    seeds_ci = seeds["kendall_tau_ci95"] if seeds else []
    return {
        "ground_truth": label,
        "budgeted": budgeted,
        "seeds_tau": seeds["kendall_tau"] if seeds else None,
        "seeds_tau_ci95": seeds_ci,
        "reliable": not seeds_ci or seeds_ci[0] > 0,
        "tau": p["kendall_tau"],
        "tau_ci95": p["kendall_tau_ci95"],
        "minus_flops_tau": gain,
        "minus_flops_tau_ci95": interval,
        "top1_relative_accuracy": p["top1_relative_accuracy"],
        "tau_target": tau_met,
        "top1_target": top1_met,
    }


def _inside_levels(levels: dict[str, Any]) -> dict[str, tuple[float | None, bool]]:
    """Per proxy, its mean tau over the FLOPs levels (None unless scored in every one) and
    whether it meets the target in every level. FLOPs and params are one value per level: they
    rank nothing there (tau 0), so a proxy's gain over FLOPs is its own tau."""
    names = set.intersection(*(set(band["proxies"]) for band in levels.values()))
    out: dict[str, tuple[float | None, bool]] = {n: (0.0, False) for n in ("flops", "params")}
    for n in sorted(names):
        per = [band["proxies"][n] for band in levels.values()]
        mean = _mean([p["kendall_tau"] for p in per])
        met = all(
            _meets(p["kendall_tau"], p["kendall_tau_ci95"], p["top1_relative_accuracy"])
            for p in per
        )
        out[n] = (mean, met)
    return out


def _meets(gain: float | None, interval: list[float], top1: float) -> bool:
    return target_verdict(gain, interval, top1) == ("met", "met")


def _mean(values: list[float | None]) -> float | None:
    """The mean, None unless every value is there."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def verdict_markdown(v: dict[str, Any]) -> list[str]:
    """The verdict section of ``ranking.md``."""
    lines = [
        f"## Verdict: the shipped default `{v['default']}` against the target",
        "",
        "Target, per ground truth: Kendall tau at least 0.10 above FLOPs' with the paired "
        "95% interval of the difference above zero, and the top-1 pick within 1% of the pool's "
        "best. A band whose two training seeds do not agree (seed-to-seed interval includes "
        "zero) cannot rank its pool, so its verdict carries no weight.",
        "",
        "| ground truth | inside a budget | seed-to-seed tau [95% CI] | default tau [95% CI] "
        "| minus FLOPs' [paired 95% CI] | tau target | top-1 / best | top-1 target |",
        "|---|---|---|---|---|---|---:|---|",
    ]
    for r in v["rows"]:
        seeds = _cell(r["seeds_tau"], r["seeds_tau_ci95"]) if r["seeds_tau_ci95"] else "n/a"
        if not r["reliable"]:
            seeds += " (seeds disagree)"
        lines.append(
            f"| {r['ground_truth']} | {'yes' if r['budgeted'] else 'no'} | {seeds} "
            f"| {_cell(r['tau'], r['tau_ci95'])} "
            f"| {_cell(r['minus_flops_tau'], r['minus_flops_tau_ci95'])} | {r['tau_target']} "
            f"| {r['top1_relative_accuracy']:.4f} | {r['top1_target']} |"
        )
    met = v["met_on"]
    lines += [
        "",
        f"Inside a budget, on the ground truths that can rank: the target is met on "
        f"{len(met)} of {v['weighed']}"
        + (f" ({'; '.join(met)})" if met else "")
        + f". Overall verdict (the target asks for all of them): "
        f"{'met' if v['met'] else 'NOT met'}.",
    ]
    if not v["columns"]:
        return lines
    held = set(v["held_out"])
    head = [c + ("" if c in held else " (chosen here)") for c in v["columns"]]
    lines += [
        "",
        "Which proxy ranks best inside a budget: Kendall tau on every budgeted ground truth "
        "that can rank, and the mean over the held-out ones (not the source the default was "
        "chosen on); n/a where a proxy was not scored (the training baselines and AutoST's "
        "fitness are not run on SpikeNAS-Bench).",
        "",
        "| proxy | " + " | ".join(head) + " | held-out mean | mean |",
        "|---|" + "---:|" * (len(head) + 2),
    ]
    table = v["proxies"]
    for n in sorted(
        table,
        key=lambda n: (
            table[n]["held_out_mean_tau"] is None,
            -(table[n]["held_out_mean_tau"] or 0.0),
            -(max((t for t in table[n]["kendall_tau"].values() if t is not None), default=-2)),
        ),
    ):
        taus = " | ".join(_signed(table[n]["kendall_tau"][c]) for c in v["columns"])
        lines.append(
            f"| {n} | {taus} | {_signed(table[n]['held_out_mean_tau'])} "
            f"| {_signed(table[n]['mean_tau'])} |"
        )
    best = v["best_held_out"]
    if not best:
        return lines
    everywhere = ", ".join(f"`{n}`" for n in v["meet_target_everywhere"]) or "none"
    lines += [
        "",
        f"Proxies that meet the target (both halves) on every one of these columns: {everywhere}. "
        "On each column: "
        + "; ".join(
            f"{c}: {', '.join(f'`{n}`' for n in names) or 'none'}"
            for c, names in v["meet_target"].items()
        )
        + ".",
    ]
    text = f"Highest held-out mean tau (a point estimate, no interval): `{best}`" + (
        ", the shipped default." if best == v["default"] else f"; the default is `{v['default']}`."
    )
    ahead = [
        f"on {c} ({_signed(table[v['default']]['kendall_tau'][c])}): "
        + ", ".join(f"`{n}` {_signed(t)}" for n, t in above.items())
        for c, above in v["above_default"].items()
        if above
    ]
    if ahead:
        text += " Above the default " + "; ".join(ahead) + "."
    partial = v.get("default_above_partial", {})
    if partial:
        above = ", ".join(f"`{n}`" for n, ok in partial.items() if ok) or "none"
        below = ", ".join(f"`{n}`" for n, ok in partial.items() if not ok)
        text += (
            f" Of those not scored everywhere, the default ranks above {above}"
            + (f" but not above {below}" if below else "")
            + " on every held-out ground truth where they were scored."
        )
    return [*lines, "", text]
