"""The report side of ``ranking.py``: ``ranking.md`` and the per-pool figures of ``ranking.json``.

:func:`markdown` writes ``ranking.md`` (the open pool's accuracy and correlation tables, each
band pool's section from :func:`_band_markdown`, the SpikeNAS-Bench section from
:func:`spikenas_summary`); :func:`_summary` keys one pool's statistics as ``ranking.json`` does
and :func:`_print` echoes them. ``ranking.py`` imports all of these back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ranking_verdict import verdict_markdown
from rankstats import _cell, _or, _signed, _span, target_verdict

import autost

#: Low-fidelity baselines: short-training evaluator recipes scored beside the proxies.
LOW_FIDELITY = ("short-1epoch", "loss-drop")
#: What ``ranking.json`` keeps of every proxy inside one SpikeNAS-Bench FLOPs level.
LEVEL_KEYS = ("kendall_tau", "kendall_tau_ci95", "top1_relative_accuracy")
#: A band pool's architectures and its accuracies, keyed by (dataset, arch, seed).
Band = tuple[list[autost.ArchConfig], dict[tuple[str, int, int], float]]


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
    bands: dict[str, Band],
) -> str:
    """``ranking.md``: the open pool's accuracy and correlation tables, then each band pool's."""
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
        f"Low-fidelity baselines: {report['low_fidelity']}.",
        f"Cost: {report['cost']}.",
        "",
        *([*verdict_markdown(report["verdict"]), ""] if report.get("verdict") else []),
        "## Open pool: trained accuracy (validation)",
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
            f"## Open pool, {dataset}: {result['n_architectures']} architectures, best accuracy "
            f"{result['best_accuracy']:.4f}",
            "",
            *_table(result),
            "",
            target_line(result),
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
    for name, entry in report["pools"].items():
        lines += ["", *_band_markdown(name, entry, bands[name])]
    if report.get("spikenas"):
        lines += ["", *_spikenas_markdown(report["spikenas"])]
    if report["proxy_failures"]:
        lines += ["", "## Failures (recorded as NaN, ranked last)", ""]
        lines += [f"- {line}" for line in report["proxy_failures"]]
    return "\n".join(lines) + "\n"


def spikenas_summary(path: Path) -> dict[str, Any] | None:
    """The SpikeNAS-Bench figures ``benchmarks/spikenas.py`` wrote to ``path`` (None if absent):
    every proxy and ensemble over the whole sample, and the shipped default inside each FLOPs
    level."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    default = next((k for k in data["proxies"] if k.startswith("zero-cost")), None)
    keys = ("n", "kendall_tau", "kendall_tau_ci95", "minus_flops_tau", "minus_flops_tau_ci95")
    keys += ("spearman_rho", "top1_relative_accuracy", "top5_regret")
    return {
        "command": data.get("command"),
        "ground_truth": data["ground_truth"],
        "models": data["models"],
        "batch": data["batch"],
        "default": default,
        "whole_sample": {n: {k: p[k] for k in keys} for n, p in data["proxies"].items()},
        # the cells of one level share one exact FLOPs value (and params): those two rank nothing
        "flops_levels": {
            level: {
                "n": band["n"],
                "default": band["proxies"].get(default),
                "proxies": {
                    n: {k: p[k] for k in LEVEL_KEYS if k in p} for n, p in band["proxies"].items()
                },
            }
            for level, band in data["flops_levels"].items()
        },
    }


def _spikenas_markdown(summary: dict[str, Any]) -> list[str]:
    """The SpikeNAS-Bench section of ``ranking.md`` (the whole report: ``spikenas.md``)."""
    default = summary["default"]
    lines = [
        "## SpikeNAS-Bench: external ground truth (CIFAR-10)",
        "",
        f"From `{summary['command']}` ([spikenas.md](spikenas.md) has every table). Ground "
        f"truth: {summary['ground_truth']}. Models: {summary['models']}. Batch: "
        f"{summary['batch']}.",
        "",
        "| proxy | n | Kendall tau-b [95% CI] | tau minus FLOPs' [paired 95% CI] "
        "| Spearman rho | top-1 pick / best | top-5 regret |",
        "|---|---:|---|---|---:|---:|---:|",
    ]
    whole = summary["whole_sample"]
    for n in sorted(whole, key=lambda n: -_or(whole[n]["kendall_tau"], -2.0)):
        p = whole[n]
        minus = "" if n == "flops" else _cell(p["minus_flops_tau"], p["minus_flops_tau_ci95"])
        lines.append(
            f"| {n} | {p['n']} | {_cell(p['kendall_tau'], p['kendall_tau_ci95'])} | {minus} "
            f"| {_signed(p['spearman_rho'])} | {p['top1_relative_accuracy']:.4f} "
            f"| {p['top5_regret']:.2f} |"
        )
    if default:
        lines += [
            "",
            f"Inside one budget: the shipped default `{default}` among the cells of one FLOPs "
            "level (FLOPs and params are the same for all of them, so they rank nothing: the "
            "gain over FLOPs is the default's own tau).",
            "",
            "| FLOPs level | cells | tau [95% CI] | top-1 pick / best |",
            "|---|---:|---|---:|",
        ]
        for level, band in summary["flops_levels"].items():
            d = band["default"]
            if d:
                lines.append(
                    f"| {level} | {band['n']} | {_cell(d['kendall_tau'], d['kendall_tau_ci95'])} "
                    f"| {d['top1_relative_accuracy']:.4f} |"
                )
    return lines


def _table(result: dict[str, Any]) -> list[str]:
    """The per-proxy table of one pool and dataset, best tau first."""
    lines = [
        "| proxy | Kendall tau-b [95% CI] | tau minus FLOPs' [paired 95% CI] "
        "| Spearman rho [95% CI] | top-1 pick / best | top-5 regret | s / candidate |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    seconds = result.get("seconds_per_candidate", {})
    minus = result.get("minus_flops_tau", {})
    for n in sorted(result["kendall_tau"], key=lambda n: -_or(result["kendall_tau"][n], -2.0)):
        tau = _cell(result["kendall_tau"][n], result["kendall_tau_ci95"][n])
        rho = _cell(result["spearman_rho"][n], result["spearman_rho_ci95"][n])
        gain = (
            _cell(minus[n], result["minus_flops_tau_ci95"][n])
            if n in minus and n != "flops"
            else ""
        )
        label = f"{n} (training)" if n in LOW_FIDELITY else n
        cost = f"{seconds[n]:.3g}" if n in seconds else "n/a"
        lines.append(
            f"| {label} | {tau} | {gain} | {rho} | {result['top1_relative_accuracy'][n]:.3f} "
            f"| {result['top5_regret'][n]:.4f} | {cost} |"
        )
    return lines


def target_line(result: dict[str, Any], name: str = "ensemble") -> str:
    """Whether ``name`` (the shipped default) meets the ranking target in one table: tau at
    least 0.10 above FLOPs' with the paired interval of the difference above zero, and a top-1
    pick within 1% of the best (:func:`rankstats.target_verdict`)."""
    gain = result.get("minus_flops_tau", {}).get(name)
    interval = result.get("minus_flops_tau_ci95", {}).get(name, [])
    top1 = result["top1_relative_accuracy"].get(name)
    if top1 is None:
        return f"Target: `{name}` not scored here."
    tau_met, top1_met = target_verdict(gain, interval, top1)
    return (
        f"Target for the shipped default `{name}` (tau >= FLOPs' + 0.10, paired interval above "
        f"zero; top-1 within 1% of the best): tau minus FLOPs' {_cell(gain, interval)}, "
        f"{tau_met}; top-1 pick / best {top1:.4f}, {top1_met}."
    )


def _band_markdown(name: str, entry: dict[str, Any], band: Band) -> list[str]:
    """The section of one budget-band pool."""
    configs, done = band
    d = entry["definition"]
    seeds = entry["seeds"]
    datasets = list(entry["datasets"])
    columns = [f"{ds} seed {k}" for ds in datasets for k in seeds]
    lo, hi = entry["budget_range"]["params"]
    flo, fhi = entry["budget_range"]["flops"]
    lines = [
        f"## Budget band `{name}`: {d['budget']} within {d['tolerance']:.0%} of "
        f"{d['target']:,} ({entry['n_architectures']} architectures)",
        "",
        f"The first {entry['n_architectures']} distinct samples of the `digits` space (seed "
        f"{d['seed']}, {d['draws']} draws) whose analytic {d['budget']} at the space's 8x8 input "
        f"lie in the band: params {lo:,}-{hi:,}, FLOPs {flo / 1e6:.2f}-{fhi / 1e6:.2f} M. "
        f"Trained with the open pool's recipe, seeds {', '.join(map(str, seeds))}; ground truth: "
        "the mean validation accuracy over the seeds.",
    ]
    for ds, why in entry.get("incomplete", {}).items():
        lines += ["", f"{ds}: not reported yet ({why})."]
    if not datasets:
        return lines
    lines += [
        "",
        "| arch | architecture | params | FLOPs (digits) | " + " | ".join(columns) + " |",
        "|---:|---|---:|---:|" + "---:|" * len(columns),
    ]
    for i, cfg in enumerate(configs):
        accs = " | ".join(f"{done[(ds, i, k)]:.4f}" for ds in datasets for k in seeds)
        params, flops = autost.count_params(cfg), autost.estimate_cost(cfg).flops
        lines.append(f"| {i} | {describe(cfg)} | {params:,} | {flops / 1e6:.2f} M | {accs} |")
    for ds, result in entry["datasets"].items():
        low, high = result["accuracy_range"]
        lines += [
            "",
            f"### `{name}` on {ds}: mean accuracy {low:.4f}-{high:.4f}, best "
            f"{result['best_accuracy']:.4f}",
            "",
            *_table(result),
            "",
            target_line(result),
        ]
        r = result.get("seed_to_seed")
        if r and r["kendall_tau_ci95"] and r["kendall_tau_ci95"][0] <= 0:
            lines[-1] += (
                " The seeds disagree here (seed-to-seed interval includes zero): this ground "
                "truth cannot rank the pool, so neither verdict carries weight."
            )
        if r:
            lines += [
                "",
                f"Seed-to-seed agreement: seed 1 against seed 0 ranks the pool with tau "
                f"{_cell(r['kendall_tau'], r['kendall_tau_ci95'])}, rho "
                f"{_cell(r['spearman_rho'], r['spearman_rho_ci95'])}.",
            ]
    return lines


def _summary(stats: dict[str, dict[str, Any]], seconds: dict[str, float]) -> dict[str, Any]:
    """The per-name figures of one pool and dataset, as ``ranking.json`` keys them."""
    return {
        "kendall_tau": {n: s["tau"] for n, s in stats.items()},
        "spearman_rho": {n: s["rho"] for n, s in stats.items()},
        "kendall_tau_ci95": {n: s["tau_ci"] for n, s in stats.items()},
        "spearman_rho_ci95": {n: s["rho_ci"] for n, s in stats.items()},
        "top1_relative_accuracy": {n: s["top1"] for n, s in stats.items()},
        "top5_regret": {n: s["top5_regret"] for n, s in stats.items()},
        "seconds_per_candidate": {n: seconds[n] for n in stats if n in seconds},
        "minus_flops_tau": {
            n: s["minus_flops_tau"] for n, s in stats.items() if "minus_flops_tau" in s
        },
        "minus_flops_tau_ci95": {
            n: s["minus_flops_tau_ci"] for n, s in stats.items() if "minus_flops_tau" in s
        },
    }


def _print(label: str, stats: dict[str, dict[str, Any]], seconds: dict[str, float]) -> None:
    for n, s in stats.items():
        cost = f"{seconds[n]:.3g} s" if n in seconds else ""
        print(
            f"{label} {n:14s} tau {_signed(s['tau'])} [{_span(s['tau_ci'])}]"
            f"  rho {_signed(s['rho'])}  top-1 {s['top1']:.3f}  top-5 regret "
            f"{s['top5_regret']:.4f}  {cost}"
        )
