"""Peak memory and speed of a training step: plain vs ``low_memory`` vs ``checkpoint_blocks``.

Run: ``python benchmarks/memory.py [--model spikformer-4-384-cifar10] [--batch 32]
[--rounds 3] [--steps 2] [--modes plain,low-memory,low-memory+checkpoint] [--device auto]
[--lif-backend eager] [--threads 0] [--out benchmarks/results/memory.md]``

Modes: ``plain`` (both savers off: the path before issue 17), ``low-memory`` (the default
now), ``checkpoint`` and ``low-memory+checkpoint``. Every figure comes from a fresh process,
so that one mode's allocations never colour another's. A process builds the model (seeded:
the same weights in every mode) and AdamW as the trainer does, makes one random CIFAR-sized
batch and runs training steps (forward, label-smoothed cross-entropy, backward, gradient
clipping, AdamW step). Each round runs, for every mode, a memory process and then a speed
process:

- memory (one step): on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak RSS
  (``resource.getrusage``) minus the RSS just before the step, with glibc told to map every
  allocation of 64 KiB or more on its own (``MALLOC_MMAP_THRESHOLD_``), so that a freed tensor
  leaves the RSS at once and the peak RSS follows the peak of live tensors. Also the distinct
  storages saved for backward by the forward pass (``saved_tensors_hooks``; not measured with
  checkpointed blocks, whose saved tensors torch's own hooks drop);
- speed (``1 + --steps`` steps, default allocator): ``batch * steps`` images over the wall
  time of the steps after the first, and the peak RSS over the steps as the process sees it.

Modes run interleaved (A, B, C, A, B, C, ...) for ``--rounds`` rounds; medians and ratios to
the first mode are printed and written, with the command and the machine, to ``--out``. The
LIF op runs its eager kernel unless ``--lif-backend`` says otherwise (compiling it in every
fresh process would dominate the run and its memory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODES = ("plain", "low-memory", "checkpoint", "low-memory+checkpoint")
ROOT = Path(__file__).resolve().parents[1]
MMAP_THRESHOLD = 64 * 1024


def _rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One process: one mode, ``memory`` or ``speed`` (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    import autost
    from autost.training.loop import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    mode, memory = args.child, args.measure == "memory"
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = autost.create_model(args.model).to(device).train()
    model.low_memory = "low-memory" in mode  # explicit: the model's default is on
    model.checkpoint_blocks = "checkpoint" in mode
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    cfg = model.config
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(args.batch, cfg.in_channels, cfg.image_size, cfg.image_size, generator=gen)
    y = torch.randint(0, cfg.num_classes, (args.batch,), generator=gen)
    x, y = x.to(device), y.to(device)
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    def train_step(count_saved: bool) -> float:
        if count_saved:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                logits = model(x)
        else:
            logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_rss = _rss_mb()
    loss = train_step(count_saved=memory and not model.checkpoint_blocks)
    seconds = 0.0
    if not memory:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            train_step(count_saved=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result: dict[str, Any] = {
        "mode": mode,
        "measure": args.measure,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "first_loss": loss,
        "peak_rss_mb": peak_rss,
        "step_rss_mb": peak_rss - base_rss,
    }
    if memory:
        result["saved_mb"] = sum(storages.values()) / 2**20 if storages else None
        if device.type == "cuda":
            result["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        else:
            result["peak_mb"] = peak_rss - base_rss
    else:
        result["images_per_s"] = args.batch * args.steps / seconds
    return result


def run_child(args: argparse.Namespace, mode: str, measure: str) -> dict[str, Any]:
    env = {**os.environ, "AUTOST_LIF_BACKEND": args.lif_backend}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if measure == "memory":
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    command += ["--measure", measure, "--model", args.model, "--batch", str(args.batch)]
    command += ["--steps", str(args.steps), "--device", args.device]
    command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {mode} ({measure}) failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def environment() -> dict[str, str]:
    import torch

    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def report(args: argparse.Namespace, runs: list[dict[str, Any]], command: str) -> str:
    modes = args.modes.split(",")
    device = runs[0]["device"]
    cuda = device.startswith("cuda")

    def median(mode: str, key: str) -> float:
        values = [r[key] for r in runs if r["mode"] == mode and r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    peak_what = "max_memory_allocated" if cuda else "live tensors: RSS, 64 KiB mmap threshold"
    base = {key: median(modes[0], key) for key in ("peak_mb", "images_per_s", "saved_mb")}
    lines = [
        f"| mode | step peak MiB ({peak_what}) | x {modes[0]} | saved for backward MiB "
        f"| x {modes[0]} | step peak RSS MiB (default allocator) | images/s | x {modes[0]} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode in modes:
        peak, speed = median(mode, "peak_mb"), median(mode, "images_per_s")
        saved = median(mode, "saved_mb")
        rss = statistics.median(
            r["step_rss_mb"] for r in runs if r["mode"] == mode and r["measure"] == "speed"
        )
        saved_cells = (
            "n/a | n/a" if saved != saved else f"{saved:,.0f} | {saved / base['saved_mb']:.2f}"
        )
        lines.append(
            f"| {mode} | {peak:,.0f} | {peak / base['peak_mb']:.2f} | {saved_cells} "
            f"| {rss:,.0f} | {speed:.2f} | {speed / base['images_per_s']:.3f} |"
        )
    losses = {mode: sorted({r["first_loss"] for r in runs if r["mode"] == mode}) for mode in modes}
    raw = []
    for r in runs:
        what = (
            f"peak {r['peak_mb']:,.0f} MiB"
            if r["measure"] == "memory"
            else f"{r['images_per_s']:.3f} images/s, step peak RSS {r['step_rss_mb']:,.0f} MiB"
        )
        raw.append(f"round {r['round']} {r['mode']} {r['measure']}: {what}")
    return "\n".join(
        [
            "# Training-step memory (issue 17)",
            "",
            f"`benchmarks/memory.py`: {args.model}, T=4, batch {args.batch}, one random "
            f"CIFAR-sized batch; every figure from a fresh process; {args.rounds} interleaved "
            f"rounds, medians; {args.steps} timed step(s) after a first one; LIF backend "
            f"`{args.lif_backend}`; {runs[0]['threads']} torch thread(s); device {device}; "
            f"{time.strftime('%Y-%m-%d')}.",
            "",
            "```",
            command,
            "```",
            "",
            *lines,
            "",
            "First-step loss in every process, per mode (the same outputs give the same loss): "
            + "; ".join(f"{m}: {', '.join(map(repr, v))}" for m, v in losses.items()),
            "",
            "```",
            *raw,
            json.dumps(environment()),
            "```",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spikformer-4-384-cifar10")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after the first")
    parser.add_argument("--modes", default="plain,low-memory,low-memory+checkpoint")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--lif-backend", default="eager", choices=["auto", "eager", "compiled"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "memory.md"))
    parser.add_argument("--child", default=None, choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--measure", default="speed", choices=["memory", "speed"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    runs: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for mode in args.modes.split(","):
            for measure in ("memory", "speed"):
                result = run_child(args, mode, measure) | {"round": round_}
                runs.append(result)
                shown = (
                    f"peak {result['peak_mb']:,.0f} MiB"
                    if measure == "memory"
                    else f"{result['images_per_s']:.3f} images/s"
                )
                print(f"round {round_} {mode} {measure}: {shown}", flush=True)
    text = report(args, runs, command)
    print(text)
    from autost.io import atomic_write_text

    atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
