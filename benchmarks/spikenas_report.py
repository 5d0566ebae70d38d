"""The markdown report of ``spikenas.py`` (``OUT/spikenas.md``) from its JSON result."""

from __future__ import annotations

from typing import Any

from rankstats import _cell, _signed, target_verdict

#: Test accuracy at or below which a cell is at chance level (10 classes): no path carries
#: the input to the output, or nothing it carries reaches the classifier.
CHANCE = 10.5


def markdown(result: dict[str, Any], command: str) -> str:
    """``spikenas.md``: settings, timing and the correlation table."""
    s, t = result["settings"], result["timing"]
    lines = [
        "# SpikeNAS-Bench: autost's proxies against trained CIFAR-10 accuracy",
        "",
        f"Written by `{command}` ({result['machine']}).",
        "",
        f"Ground truth: {result['ground_truth']}.",
        f"Models: {result['models']}.",
        f"Batch: {result['batch']}.",
        f"Sample: {result['sample']}.",
        "",
        f"Scored: {result['scored_architectures']} architectures "
        f"({result['chance_level_cells_scored']} of them at chance level, <= {CHANCE}% test "
        f"accuracy; best test accuracy among them {result['best_test_acc_scored']}%). "
        f"Time per architecture (all its proxies, width {s['width']}, batch {s['batch']}, "
        f"T {s['timesteps']}): median {_seconds(t['seconds_per_architecture_median'])}, "
        f"mean {_seconds(t['seconds_per_architecture_mean'])}; the whole sample of "
        f"{result['sample_size']} would take ~{_minutes(result['projected_minutes'])} at "
        "that rate.",
        "",
    ]
    lines += _table(result["proxies"], t["seconds_per_proxy_median"])
    lines += ["", *_target(result)]
    if result["ensembles"]:
        lines += [
            "",
            "Ensembles: "
            + "; ".join(
                f"`{label}` weights {', '.join(f'{m} {w:g}' for m, w in weights.items())}"
                for label, weights in result["ensembles"].items()
            )
            + ": each cell's weighted mean of its normalised rank per proxy within the scored "
            "sample (the recipe's own reference pool is drawn from the digits space, not from "
            "these cells), with the recipe's members and weights unchanged.",
        ]
    lines += [
        "",
        f"Cells above chance level only (test accuracy > {CHANCE}%): how well each proxy ranks "
        "the cells that learn at all.",
        "",
    ]
    lines += _table(result["proxies_above_chance"], t["seconds_per_proxy_median"])
    for level, band in result["flops_levels"].items():
        low, high = band["test_acc_range"]
        lines += [
            "",
            f"### Inside one budget: the {band['n']} cells at {level} FLOPs (width "
            f"{s['width']}), test accuracy {low:.2f}-{high:.2f}%",
            "",
            "FLOPs and params are the same for every cell here, so they rank nothing (tau 0, "
            "top-1 an arbitrary cell): the gain over FLOPs is the proxy's own tau.",
            "",
        ]
        lines += _table(band["proxies"], t["seconds_per_proxy_median"], gain=False)
    ceiling = result["val_acc_vs_test_acc"]
    if ceiling:
        lines += [
            "",
            "Reference: the benchmark's own last-epoch validation accuracy ranks its test "
            f"accuracy with tau {_cell(ceiling['kendall_tau'], ceiling['kendall_tau_ci95'])}, "
            f"rho {_cell(ceiling['spearman_rho'], ceiling['spearman_rho_ci95'])} "
            f"(n = {ceiling['n']}).",
        ]
    for other, check in result["width_check"].items():
        w = check["width"]
        lines += [
            "",
            f"Width check: the same proxies at width {other} ({check['scores']}, median "
            f"{_seconds(check['seconds_per_architecture_median'])} per architecture for its "
            f"proxies) against width {w}, over the ids both scored.",
            "",
            f"| proxy | n | Spearman rho, width {w} vs {other} | tau vs accuracy, width {w} "
            f"| tau vs accuracy, width {other} |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, c in check["proxies"].items():
            lines.append(
                f"| {name} | {c['n']} | {_signed(c['rho_between_widths'])} "
                f"| {_signed(c[f'tau_vs_acc_width_{w}'])} "
                f"| {_signed(c[f'tau_vs_acc_width_{other}'])} |"
            )
    lines += [
        "",
        "Oriented scores (sign x raw, higher is better) throughout; `params` and `flops` grow "
        "with the number of conv edges, the only thing that changes them in this space. "
        "`median s`: the proxy's own passes; the shared forward pass (firing_rate, sops, "
        "energy, sahd, naswot_hd) is counted only in the time per architecture.",
    ]
    return "\n".join(lines) + "\n"


def _target(result: dict[str, Any]) -> list[str]:
    """Whether the shipped default (the ``zero-cost`` ensemble) meets the ranking target: tau
    at least 0.10 above FLOPs' with the paired interval of the difference above zero, and a
    top-1 pick within 1% of the best cell, on the whole sample and inside each FLOPs level."""
    label = next((k for k in result["proxies"] if k.startswith("zero-cost")), None)
    if label is None:
        return []

    def verdict(where: str, gain: float | None, interval: list[float], top1: float) -> str:
        tau_met, top1_met = target_verdict(gain, interval, top1)
        return (
            f"- {where}: tau minus FLOPs' {_cell(gain, interval)} "
            f"({tau_met}); top-1 pick / best {top1:.4f} ({top1_met})"
        )

    p = result["proxies"][label]
    lines = [
        f"Target for the shipped default `{label}`: Kendall tau >= FLOPs' + 0.10 with the "
        "paired 95% interval of the difference above zero, and a top-1 pick within 1% of the "
        "best (>= 0.990).",
        "",
        verdict(
            "whole sample",
            p["minus_flops_tau"],
            p["minus_flops_tau_ci95"],
            p["top1_relative_accuracy"],
        ),
    ]
    for level, band in result["flops_levels"].items():
        b = band["proxies"].get(label)
        if b:  # FLOPs is constant here: its tau is 0, the difference is the ensemble's tau
            where = f"inside the {band['n']} cells at {level} FLOPs"
            lines.append(
                verdict(where, b["kendall_tau"], b["kendall_tau_ci95"], b["top1_relative_accuracy"])
            )
    return lines


def _table(proxies: dict[str, Any], seconds: dict[str, float], gain: bool = True) -> list[str]:
    """The correlation table, best Kendall tau first (``gain``: with the paired difference of
    each tau minus FLOPs')."""
    lines = [
        "| proxy | n | Kendall tau-b [95% CI] | "
        + ("tau minus FLOPs' [paired 95% CI] | " if gain else "")
        + "Spearman rho [95% CI] | top-1 pick / best | top-1 pick (id, test acc) "
        "| top-5 regret | median s |",
        "|---|---:|---|" + ("---|" if gain else "") + "---|---:|---|---:|---:|",
    ]

    def by_tau(name: str) -> float:
        value = proxies[name]["kendall_tau"]
        return 2.0 if value is None else -float(value)

    for name in sorted(proxies, key=by_tau):
        p = proxies[name]
        tau = _cell(p["kendall_tau"], p["kendall_tau_ci95"])
        rho = _cell(p["spearman_rho"], p["spearman_rho_ci95"])
        minus = "" if name == "flops" else _cell(p["minus_flops_tau"], p["minus_flops_tau_ci95"])
        cost = f"{seconds[name]:.2f}" if name in seconds else "its members'"
        cells = f"{tau} | {minus} | {rho}" if gain else f"{tau} | {rho}"
        lines.append(
            f"| {name} | {p['n']} | {cells} | {p['top1_relative_accuracy']:.3f} "
            f"| {p['top1_id']}, {p['top1_test_acc']:.2f}% | {p['top5_regret']:.2f} | {cost} |"
        )
    return lines


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _minutes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} min"
