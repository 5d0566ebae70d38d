"""Analytic cost-model throughput: ``estimate_cost`` and ``count_params`` per config.

Run: ``python benchmarks/search.py [--space autost-small] [--n 2000] [--repeats 5]``

Candidates are sampled first (not timed); then ``estimate_cost`` and ``count_params`` are timed
over all of them, interleaved per repeat (A, B, A, B, ...), on one thread; medians reported.
Target (issue 4): >= 10,000 configs/s on one core.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import autost
from autost.space import SearchSpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="autost-small")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = SearchSpace.load(args.space)
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(args.n)]
    timings: dict[str, list[float]] = {"estimate_cost": [], "count_params": []}
    for _ in range(args.repeats):
        for name, fn in (
            ("estimate_cost", autost.estimate_cost),
            ("count_params", autost.count_params),
        ):
            start = time.perf_counter()
            for cfg in configs:
                fn(cfg)
            timings[name].append(time.perf_counter() - start)
    for name, values in timings.items():
        rate = args.n / statistics.median(values)
        print(
            f"{name:14s} {rate:10,.0f} configs/s  (median of {args.repeats}, {args.n} configs,"
            f" space {args.space})"
        )


if __name__ == "__main__":
    main()
