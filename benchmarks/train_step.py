"""Training-step time of the ranking pools' MNIST recipe per LIF kernel: eager against auto.

``ranking.py`` trains each budget-band architecture on MNIST at 16x16 (batch 64, 1,100 steps);
this measures whether compiling the LIF kernel (``auto``: compiled for inputs of at least
65,536 elements, eager below) repays its compile there. One process per run, one torch
thread; for every architecture the two kernels alternate on the same model (A, B, A, B...,
``--rounds`` times ``--steps`` steps each) after one warm-up step each, whose time (the
compile, for ``auto``) is reported apart. A step is forward, cross-entropy, backward and an
AdamW update on a fixed random batch.

    python benchmarks/train_step.py --archs 0-5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

import autost
from autost.neurons.backend import backend_env

RESULTS = Path(__file__).resolve().parent / "results"
KERNELS = ("eager", "auto")


def _indices(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def measure(cfg: autost.ArchConfig, steps: int, rounds: int) -> dict[str, float]:
    """Median seconds per step of each kernel and the first step's seconds (ms in the keys)."""
    torch.manual_seed(0)
    model = autost.SpikingTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, cfg.in_channels, cfg.image_size, cfg.image_size, generator=gen)
    y = torch.randint(0, cfg.num_classes, (64,), generator=gen)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    result: dict[str, float] = {}
    times: dict[str, list[float]] = {k: [] for k in KERNELS}
    for kernel in KERNELS:
        with backend_env(kernel):
            start = time.perf_counter()
            step()
            result[f"{kernel}_first_s"] = time.perf_counter() - start
    for _ in range(rounds):
        for kernel in KERNELS:
            with backend_env(kernel):
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                times[kernel].append((time.perf_counter() - start) / steps)
    for kernel in KERNELS:
        result[f"{kernel}_ms"] = 1e3 * statistics.median(times[kernel])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pools", default="params-200k,flops-10m", help="ranking.py's band pools")
    parser.add_argument("--archs", default="0-5", help="architecture indices, e.g. 0-5,9")
    parser.add_argument("--steps", type=int, default=6, help="steps per timed block")
    parser.add_argument("--rounds", type=int, default=4, help="A, B blocks per architecture")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--out", default=str(RESULTS / "train_step.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: list[tuple[str, autost.ArchConfig, dict[str, float], float]] = []
    for pool, i in [(p, i) for p in args.pools.split(",") for i in _indices(args.archs)]:
        stored = json.loads((RESULTS / f"ranking_pool_{pool}.json").read_text())
        cfg = autost.ArchConfig.from_dict(stored["configs"][i]).replace(image_size=args.image_size)
        r = measure(cfg, args.steps, args.rounds)
        ratio = r["auto_ms"] / r["eager_ms"]
        rows.append((f"{pool}[{i}]", cfg, r, ratio))
        print(
            f"{pool}[{i}] T={cfg.timesteps} d={cfg.depth} D={cfg.embed_dim}: eager "
            f"{r['eager_ms']:.1f} ms/step, auto {r['auto_ms']:.1f} (x{ratio:.2f}), auto's "
            f"first step {r['auto_first_s']:.1f} s",
            flush=True,
        )
    ratios = [r[3] for r in rows]
    lines = [
        "# Training-step time per LIF kernel (ranking pools' MNIST recipe)",
        "",
        f"`python benchmarks/train_step.py --pools {args.pools} --archs {args.archs} "
        f"--steps {args.steps} --rounds {args.rounds}` (torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, 1 thread; input {args.image_size}x{args.image_size}, batch 64):",
        "",
        "| arch | T | depth | width | eager ms/step | auto ms/step | auto / eager "
        "| auto's first step (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cfg, r, ratio in rows:
        lines.append(
            f"| {name} | {cfg.timesteps} | {cfg.depth} | {cfg.embed_dim} | {r['eager_ms']:.1f} | "
            f"{r['auto_ms']:.1f} | {ratio:.2f} | {r['auto_first_s']:.1f} |"
        )
    lines += [
        "",
        f"auto / eager: median {statistics.median(ratios):.2f}, range "
        f"{min(ratios):.2f}-{max(ratios):.2f} (medians of {args.rounds} alternating blocks). "
        "The first step compiles once per process and timestep count; a worker of "
        "`ranking.py` then reuses the kernel for every later training.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
