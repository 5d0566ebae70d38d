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
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scoring_cost_report import report
from scoring_cost_scores import (
    COST_HEADER,
    RESULTS,
    SCORE_HEADER,
    SEED_SETTINGS,
    VARIANTS,
    Cache,
    Clock,
    run_search,
    score_cost,
    score_ranking,
    score_spikenas,
)

from autost.io import atomic_write_text


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
