"""The export bundle of an ``autost run``: config with provenance, weights, report and plots."""

from __future__ import annotations

import csv
import json
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autost.bundle.hub import BUNDLE_SCHEMA, save_bundle
from autost.errors import AutostError

__all__ = [
    "BUNDLE_SCHEMA",
    "SETTINGS",
    "export_bundle",
    "pareto_front",
    "reproduce_command",
    "search_match",
]


#: An ``autost run``'s settings (``pipeline.json``), in its command line's order.
SETTINGS = (
    "space",
    "dataset",
    "evaluator",
    "strategy",
    "budget",
    "top",
    "trials",
    "tune_epochs",
    "epochs",
    "seed",
    "root",
    "dataset_options",
)


def reproduce_command(
    settings: Mapping[str, Any], out: str | Path, skip: Sequence[str] = ()
) -> str:
    """The ``autost run`` command line that makes a run with ``settings`` (and stages
    ``skip`` left out) into ``out``."""
    import shlex

    words = ["autost", "run", "--space", str(settings["space"]), "--dataset", settings["dataset"]]
    for key in SETTINGS[2:10]:
        words += [f"--{key.replace('_', '-')}", str(settings[key])]
    if settings.get("root") is not None:
        words += ["--root", str(settings["root"])]
    for key, value in (settings.get("dataset_options") or {}).items():
        words += ["--dataset-option", f"{key}={value}"]
    for stage in skip:
        words += ["--skip", stage]
    return shlex.join([*words, "--out", str(out)])


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated by another with lower cost (x) and higher score (y), by cost."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def plot_pareto(rows: list[dict[str, Any]], path: Path) -> None:
    """Proxy score against params and against energy, Pareto fronts drawn."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "params", "params"), (axes[1], "energy_mj", "energy (mJ)")):
        points = [(float(r[key]), float(r["score"])) for r in rows if r.get(key) not in (None, "")]
        if points:
            ax.scatter(*zip(*points, strict=True), s=12, alpha=0.6, label="candidates")
            front = pareto_front(points)
            ax.plot(*zip(*front, strict=True), color="C3", marker="o", label="Pareto front")
        ax.set_xlabel(label)
        ax.set_ylabel("proxy score")
        ax.legend()
    fig.suptitle("Training-free search: proxy score against cost")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def correlation_title(count: int, tau: float) -> str:
    """What the finalists' proxy-against-accuracy plot shows, for ``count`` finalists."""
    if count == 0:
        return "No finalist was tuned"
    if count == 1:
        return "One finalist: no correlation"
    if tau != tau:  # NaN: every score or every accuracy tied
        return f"{count} finalists: Kendall tau undefined (ties)"
    return f"{count} finalists: Kendall tau {tau:.2f}"


def plot_proxy_vs_accuracy(
    points: list[tuple[int, float, float]], tau: float, path: Path, winner: int | None = None
) -> Any:
    """Proxy score of each finalist (``(search rank, score, accuracy)``) against its best
    short-training accuracy, each labelled with its search rank and the ``winner`` (the
    search rank of the trained architecture) marked; returns the (closed) figure."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for rank, score, acc in points:
        won = rank == winner
        ax.scatter(
            [score],
            [acc],
            s=160 if won else 30,
            marker="*" if won else "o",
            color="C3" if won else "C0",
            label="trained winner" if won else None,
            zorder=3 if won else 2,
        )
        ax.annotate(f"#{rank}", (score, acc), textcoords="offset points", xytext=(6, 4))
    if any(rank == winner for rank, _, _ in points):
        ax.legend()
    ax.set_xlabel("proxy score")
    ax.set_ylabel("short-training val accuracy")
    ax.set_title(correlation_title(len(points), tau))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig


def plot_training(metrics: list[dict[str, Any]], path: Path) -> Any:
    """Loss and accuracy curves of the full training (whole epochs on the x axis); returns
    the (closed) figure."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    epochs = [m["epoch"] for m in metrics]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    marker = "o" if len(epochs) < 20 else None  # a short run's points stay visible
    left.plot(epochs, [m["train_loss"] for m in metrics], label="train", marker=marker)
    left.plot(epochs, [m["val_loss"] for m in metrics], label="val", marker=marker)
    left.set_ylabel("loss")
    right.plot(epochs, [m["train_acc"] for m in metrics], label="train", marker=marker)
    right.plot(epochs, [m["val_acc"] for m in metrics], label="val", marker=marker)
    right.set_ylabel("accuracy")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.suptitle("Full training of the winner")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig


def _csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _finalist_points(run: Path) -> list[tuple[int, float, float]]:
    """(search rank, search score, best short-training accuracy) of each tuned finalist."""
    tune_file = run / "tune" / "tune.json"
    if not tune_file.exists():
        return []
    from autost.search import load_run

    board = load_run(run / "search")
    best: dict[int, float] = {}
    for row in _csv(run / "tune" / "trials.csv"):
        if row["status"] == "failed" or not row.get("val_acc"):
            continue
        arch = int(json.loads(row["params"])["arch"])
        best[arch] = max(best.get(arch, 0.0), float(row["val_acc"]))
    return [(i + 1, board[i].score, acc) for i, acc in sorted(best.items()) if i < len(board)]


def _tuning(run: Path, tune_best: dict[str, Any] | None, tau: float) -> dict[str, Any] | None:
    """The tuning's provenance: the chosen trial's parameters and metrics, the finalist it
    tried (search rank and key) and the finalists' Kendall tau; when every complete trial
    ended at chance level, that (and no choice)."""
    from autost.tune.record import at_chance_level

    complete = [
        {k: float(v) for k, v in row.items() if k in ("val_acc", "val_chance") and v}
        for row in _csv(run / "tune" / "trials.csv")
        if row.get("status") == "complete"
    ]
    if complete and all(at_chance_level(m) for m in complete):
        return {
            "at_chance": True,
            "best_val_acc": max(m["val_acc"] for m in complete),
            "chance": max(m["val_chance"] for m in complete),
            "params": None,
            "finalists_kendall_tau": tau,
        }
    if tune_best is None:
        return None
    info: dict[str, Any] = {
        "params": tune_best["params"],
        "metrics": tune_best["metrics"],
        "finalists_kendall_tau": tau,
    }
    arch = tune_best["params"].get("arch")
    if isinstance(arch, int):
        from autost.search import load_run

        board = load_run(run / "search")
        if 0 <= arch < len(board):
            info["finalist"] = {"rank": arch + 1, "of": len(board), "key": board[arch].key}
    return info


def search_match(search_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The search's stored candidate whose config equals ``config``: its rank (1 = best),
    key, trial number, scores and metrics; when none does, those are ``None`` and ``reason``
    says so (the scores of another candidate are never borrowed)."""
    from autost.model.config import ArchConfig
    from autost.search import load_run

    target = ArchConfig.from_dict(config)
    board = load_run(search_dir)
    for rank, cand in enumerate(board, 1):
        if cand.config == target:
            return {
                "rank": rank,
                "of": len(board),
                "key": cand.key,
                "trial": cand.trial,
                "scores": cand.scores,
                "metrics": cand.metrics,
            }
    return {
        "rank": None,
        "of": len(board),
        "key": None,
        "trial": None,
        "scores": None,
        "metrics": None,
        "reason": f"the exported config is none of the {len(board)} candidates the search "
        "stored, so it has no search rank or proxy scores",
    }


def _run_settings(run: Path) -> dict[str, Any] | None:
    """The settings ``autost run`` recorded in ``run/pipeline.json`` (None outside a run)."""
    path = run / "pipeline.json"
    if not path.exists():
        return None
    settings = json.loads(path.read_text()).get("settings")
    return settings if isinstance(settings, dict) else None


def export_bundle(run: Path, bundle: Path) -> Path:
    """Write ``bundle`` (Hub layout: config with provenance, ``model.safetensors``, the
    ``README.md`` model card and its plots) from the stage folders of run ``run``."""
    import optuna
    import torch
    from scipy.stats import kendalltau

    from autost.model.config import ArchConfig
    from autost.model.network import SpikingTransformer
    from autost.version import __version__

    train_dir = run / "train"
    status = json.loads((train_dir / "train.json").read_text())
    if status.get("status") != "completed":
        raise AutostError(f"{train_dir}: training did not complete ({status.get('status')})")
    metrics = [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines()]
    match = search_match(run / "search", status["config"])
    search_run = json.loads((run / "search" / "run.json").read_text())["settings"]
    tune_best = (
        json.loads((run / "tune" / "best.json").read_text())
        if (run / "tune" / "best.json").exists()
        else None
    )
    bundle.mkdir(parents=True, exist_ok=True)
    final = {k: v for k, v in metrics[-1].items() if k != "firing_rates"}

    rows = _csv(run / "search" / "leaderboard.csv")
    plot_pareto(rows, bundle / "pareto.png")
    points = _finalist_points(run)
    pairs = [(score, acc) for _, score, acc in points]
    tau = float(kendalltau(*zip(*pairs, strict=True)).statistic) if len(pairs) > 1 else float("nan")
    plot_proxy_vs_accuracy(points, tau, bundle / "proxy_vs_accuracy.png", match["rank"])
    plot_training(metrics, bundle / "training.png")

    provenance = {
        "space": search_run["space"]["name"],
        "evaluator": search_run["evaluator"],
        "strategy": search_run["strategy"],
        # the exported architecture's own search record, matched by config equality
        "search": match,
        "tuning": _tuning(run, tune_best, tau),
        "training": {"dataset": status["dataset"], "settings": status["settings"], "final": final},
        "seed": search_run["seed"],
        "versions": {
            "autost": __version__,
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "python": platform.python_version(),
        },
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    settings = _run_settings(run)
    if settings is not None:
        # into a fresh folder of the same name: the run's own would find every stage done
        tuned = tune_best is not None or (run / "tune" / "tune.json").exists()
        skip = [] if tuned else ["tune"]
        provenance["reproduce"] = reproduce_command(settings, Path("runs") / run.name, skip)
    model = SpikingTransformer(ArchConfig.from_dict(status["config"]))
    state = torch.load(train_dir / "weights.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    save_bundle(model, bundle, provenance)
    (bundle / "weights.pt").unlink(missing_ok=True)  # a bundle written before safetensors
    (bundle / "report.md").unlink(missing_ok=True)  # what it said is in the card now
    return bundle
