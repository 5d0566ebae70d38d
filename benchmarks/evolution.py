"""AutoST's full evolution on ``autost-small`` with the FLOPs proxy, end to end, against FLOPs
measured by a forward pass of 32 images per candidate as AutoST does.

Run: ``python benchmarks/evolution.py [--sample 10] [--out DIR]``

1. ``autost.search("autost-small", "flops", strategy="evolution")`` with AutoST's defaults
   (population 50, 10 parents, 25 mutations + 25 crossovers, 20 generations: 1,000 children)
   and AutoST's 11-12M params window, timed end to end (study writes, leaderboard, run files
   included), once with the default SQLite study and once with a journal-file study.
2. AutoST's way, on ``--sample`` candidates of that run (evenly spread over the leaderboard):
   build the model and count FLOPs with ``FlopCounterMode`` over a forward pass of 32 random
   32x32 images at T=4; the median seconds per candidate times the number of evaluations is
   the time the same evolution would take that way (extrapolated, not run in full).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import autost
from autost.search import EvolutionSettings, search


def forward_flops(cfg: autost.ArchConfig, images: torch.Tensor) -> tuple[int, float]:
    """AutoST's measurement: build the candidate, one forward pass, FLOPs counted."""
    start = time.perf_counter()
    model = autost.create_model(cfg).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images)
    return counter.get_total_flops(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="autost-evo-"))
    settings = EvolutionSettings()
    children = 1000  # population 50 x 20 generations, as AutoST runs it
    timings = {}
    for label, storage in (("sqlite", None), ("journal", f"journal:{root / 'study.log'}")):
        start = time.perf_counter()
        result = search(
            "autost-small",
            "flops",
            strategy="evolution",
            budget=children,
            constraints=["params>=11e6", "params<=12e6"],
            seed=0,
            out=root / label,
            storage=storage,
            evolution=settings,
            progress=False,
        )
        timings[label] = time.perf_counter() - start
        print(
            f"autost evolution, {label} study: {children} children, {result.evaluated} distinct "
            f"configs scored, {timings[label]:.2f} s end to end"
        )
    search_s = timings["sqlite"]
    params = [autost.count_params(c.config) for c in result.leaderboard]
    print(f"params of every candidate within [{min(params):,}, {max(params):,}]")
    best = result.best
    gflops = best.scores["flops"] / 1e9
    print(f"best: {gflops:.3f} GFLOPs, {autost.count_params(best.config):,} params")

    torch.manual_seed(0)
    images = torch.rand(32, 3, 32, 32)
    board = result.leaderboard
    step = max(1, len(board) // args.sample)
    picks = board[::step][: args.sample]
    seconds = []
    for cand in picks:
        flops, took = forward_flops(cand.config, images)
        analytic = autost.estimate_cost(cand.config).flops * images.shape[0]
        assert flops == analytic, (flops, analytic)
        seconds.append(took)
    per = statistics.median(seconds)
    print(
        f"forward pass of 32 images: median {per:.2f} s per candidate over {len(picks)} "
        f"(min {min(seconds):.2f}, max {max(seconds):.2f}); FLOPs identical to the analytic count"
    )
    # AutoST measures every child it generates; counting only the distinct ones favours it
    for count, what in ((children, "every child"), (result.evaluated, "distinct configs only")):
        total = per * count
        print(
            f"AutoST's way, {what} ({count}): ~{total:,.0f} s ({total / 3600:.2f} h); "
            f"ratio {total / search_s:,.0f}x (sqlite), {total / timings['journal']:,.0f}x (journal)"
        )


if __name__ == "__main__":
    main()
