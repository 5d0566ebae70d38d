"""Statistics and formatting shared by ``ranking.py`` and ``spikenas.py``.

:func:`correlations` (Kendall tau-b, Spearman rho, their bootstrap intervals, top-1 and top-5
regret, and each column minus FLOPs on the same resamples), :func:`target_verdict` (the
ranking target of the shipped default), :func:`machine` (where the figures came from) and the
cell formatters of the reports.
"""

from __future__ import annotations

import math
import os
import platform
from typing import Any

import numpy as np
import torch

#: Bootstrap resamples of architectures behind every interval (``--tiny``: 100).
RESAMPLES = 1000


def machine() -> str:
    """Where the figures came from: CPU, thread count, torch and Python versions."""
    return (
        f"{platform.machine()} {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def correlations(
    table: dict[str, list[float]],
    accs: list[float],
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
) -> dict[str, dict[str, Any]]:
    """Tau-b, rho, their 95% bootstrap intervals, the top-1 pick's accuracy relative to the best
    and the top-5 regret (best accuracy minus the best among the column's 5 highest) of every
    column of ``table``.

    Every proxy is judged on the same ``resamples`` resamples of architectures, so that the paired
    difference of each column minus ``flops`` (when ``table`` has it) has its own interval.
    """
    from scipy.stats import kendalltau, spearmanr

    y = np.asarray(accs, dtype=float)
    xs = {n: np.nan_to_num(np.asarray(v, dtype=float), nan=-1e300) for n, v in table.items()}
    samples: dict[str, dict[str, list[float]]] = {n: {"tau": [], "rho": []} for n in xs}
    for _ in range(resamples):
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
        picks = np.argsort(-x, kind="stable")[:5]  # the proxy's top-5, ties in pool order
        varied = len(set(x)) > 1 and len(set(y)) > 1  # else undefined (and scipy warns)
        stats[n] = {
            "tau": _number(kendalltau(x, y).statistic) if varied else None,
            "rho": _number(spearmanr(x, y).statistic) if varied else None,
            "tau_ci": interval(samples[n]["tau"]),
            "rho_ci": interval(samples[n]["rho"]),
            "top1": float(y[int(np.argmax(x))] / y.max()) if y.max() > 0 else 0.0,
            "top5_regret": float(y.max() - y[picks].max()),
        }
    if "flops" in xs:  # every column against AutoST's FLOPs, on the same resamples
        for n in xs:
            for key in ("tau", "rho"):
                diff = np.asarray(samples[n][key]) - np.asarray(samples["flops"][key])
                both = (stats[n][key], stats["flops"][key])
                stats[n][f"minus_flops_{key}"] = (
                    None if both[0] is None or both[1] is None else both[0] - both[1]
                )
                stats[n][f"minus_flops_{key}_ci"] = interval(diff)
    return stats


def target_verdict(gain: float | None, interval: list[float], top1: float) -> tuple[str, str]:
    """The ranking target of the shipped default, ``met`` or ``NOT met`` for each half: tau at
    least 0.10 above FLOPs' (``gain``) with the paired interval of the difference above zero,
    and a top-1 pick within 1% of the best (``top1`` >= 0.99)."""
    met = gain is not None and gain >= 0.10 and bool(interval) and interval[0] > 0
    return ("met" if met else "NOT met", "met" if top1 >= 0.99 else "NOT met")


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
