"""Cost of the data proxies relative to one plain forward pass of the candidate.

Run: ``AUTOST_LIF_BACKEND=eager python benchmarks/proxies.py [--repeats 7] [--batch-size 64]
[--threads N] [--only NAME ...] [--json PATH]``

For each candidate (digits-sized and CIFAR-sized small models) one model is built with a fixed
seed and one batch is fixed; then, repeated A, B, A, C, A, D... (interleaved so that machine
load hits every measurement alike):

- A, ``forward``: one plain forward pass, ``torch.no_grad``, same model and batch;
- B, ``shared``: ``firing_rate``, ``sops``, ``energy``, ``sahd`` and ``naswot_hd`` together,
  i.e. the one hooked forward pass with kernels plus ``estimate_cost`` and the log-determinants;
- C, ``grad_norm``: its own forward + backward on the batch;
- D, ``synflow``: copy of the model, float64 forward + backward on one all-ones sample.

Medians are reported, and each median divided by the forward median. Target: shared <= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from autost import ArchConfig
from autost.proxies import ProxyContext

SHARED = ["firing_rate", "sops", "energy", "sahd", "naswot_hd"]

CANDIDATES: dict[str, dict[str, Any]] = {
    # the digits search space's corners (8x8 grey images, stem pooling 0011: a 2x2 token grid)
    "digits-32x1": dict(in_channels=1, image_size=8, stem_pooling="0011", embed_dim=32,
                        depth=1, num_heads=2, mlp_ratios=2, timesteps=4),
    "digits-128x4": dict(in_channels=1, image_size=8, stem_pooling="0011", embed_dim=128,
                         depth=4, num_heads=4, mlp_ratios=4, timesteps=4),
    # small CIFAR-sized models (32x32 RGB, Spikformer's SPS "0011": an 8x8 token grid)
    "cifar-128x2": dict(embed_dim=128, depth=2, num_heads=4, mlp_ratios=4, timesteps=4),
    "cifar-256x2": dict(embed_dim=256, depth=2, num_heads=8, mlp_ratios=4, timesteps=4),
}  # fmt: skip


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name: str, fields: dict[str, Any], batch_size: int, repeats: int) -> dict[str, Any]:
    cfg = ArchConfig(**fields)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.timesteps, batch_size, cfg.in_channels, cfg.image_size, cfg.image_size,
                   generator=gen)  # fmt: skip
    y = torch.randint(0, cfg.num_classes, (batch_size,), generator=gen)
    ctx = ProxyContext(cfg, (x, y), seed=0)
    build = timed(lambda: ctx.model)
    model = ctx.model

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def shared() -> None:
        ctx.reset()
        ctx.score(SHARED)

    def grad_norm() -> None:
        ctx.score(["grad_norm"])

    def synflow() -> None:
        ctx.score(["synflow"])

    others = {"shared": shared, "grad_norm": grad_norm, "synflow": synflow}
    forward(), shared(), grad_norm(), synflow()  # warm-up (allocator, lazy imports)
    times: dict[str, list[float]] = {"forward": [], **{k: [] for k in others}}
    for _ in range(repeats):
        for key, fn in others.items():
            times["forward"].append(timed(forward))
            times[key].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "candidate": name,
        "batch_size": batch_size,
        "flops_per_sample": ctx.score(["flops"])["flops"],
        "build_s": build,
        "median_s": med,
        "ratio": {k: med[k] / med["forward"] for k in others},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "lif_backend": os.environ.get("AUTOST_LIF_BACKEND", "auto"),
    }
    print(json.dumps(env))
    rows = []
    for name, fields in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        row = bench(name, fields, args.batch_size, args.repeats)
        rows.append(row)
        med, ratio = row["median_s"], row["ratio"]
        print(
            f"{name:<14} B={row['batch_size']:<3} forward {med['forward'] * 1e3:8.1f} ms | "
            + " | ".join(f"{k} {med[k] * 1e3:8.1f} ms {ratio[k]:5.2f}x" for k in ratio),
            flush=True,
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"env": env, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
