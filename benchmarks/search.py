"""Analytic cost-model throughput: ``estimate_cost`` and ``count_params`` per config.

Run: ``python benchmarks/search.py [--space autost-small] [--n 2000] [--repeats 5]``

Candidates are sampled first (not timed); then, interleaved per repeat (A, B, C, D, A, ...) on
one thread, medians reported:

- ``estimate_cost`` with the part cache already warm (the steady state of a search),
- ``estimate_cost`` with the part cache emptied before the repeat (a search's first candidates),
- ``estimate_cost`` and then its per-layer table (``report.layers``),
- ``count_params``.

Target (issue 4): >= 10,000 configs/s on one core. Pin it to one core with ``taskset -c 0``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import autost
import autost.model.cost
from autost.search.space import SearchSpace


def _with_table(cfg: autost.ArchConfig) -> None:
    assert autost.estimate_cost(cfg).layers


def _cold(cfg: autost.ArchConfig) -> None:
    autost.estimate_cost(cfg)


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
    cases = (
        ("estimate_cost", autost.estimate_cost),
        ("estimate_cost cold", _cold),
        ("+ layer table", _with_table),
        ("count_params", autost.count_params),
    )
    timings: dict[str, list[float]] = {name: [] for name, _ in cases}
    for cfg in configs:  # warm the part cache once
        autost.estimate_cost(cfg)
    for _ in range(args.repeats):
        for name, fn in cases:
            if fn is _cold:
                autost.model.cost._parts_cache.clear()
            start = time.perf_counter()
            for cfg in configs:
                fn(cfg)
            timings[name].append(time.perf_counter() - start)
    for name, values in timings.items():
        rate = args.n / statistics.median(values)
        print(
            f"{name:20s} {rate:10,.0f} configs/s  (median of {args.repeats}, {args.n} configs,"
            f" space {args.space})"
        )


if __name__ == "__main__":
    main()
