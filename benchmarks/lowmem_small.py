"""Step time of the low-memory path on a small ``digits``-space network, against the plain path.

Run: ``AUTOST_LIF_BACKEND=eager python benchmarks/lowmem_small.py`` (4 interleaved rounds of
10 training steps at batch 64, one torch thread; medians and their ratio). The low-memory ops
add autograd nodes; on tiny GEMMs their overhead is what this measures.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import autost
from autost.search.space import SearchSpace


def main() -> None:
    torch.set_num_threads(1)
    cfg = SearchSpace.load("digits").sample(np.random.default_rng(3))
    print(f"depth {cfg.depth}, width {cfg.embed_dim}, T {cfg.timesteps}, {cfg.attention}")
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(4):
        for low_memory in (False, True):
            torch.manual_seed(0)
            model = autost.create_model(cfg)
            model.low_memory = low_memory
            opt = torch.optim.AdamW(model.parameters())
            start = time.perf_counter()
            for _ in range(10):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            times[low_memory].append(time.perf_counter() - start)
    plain, low = statistics.median(times[False]), statistics.median(times[True])
    print(f"plain {plain:.3f} s, low-memory {low:.3f} s per 10 steps: ratio {low / plain:.2f}")


if __name__ == "__main__":
    main()
