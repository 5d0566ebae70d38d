"""Training throughput of the built-in trainer (images/s), CPU and CUDA with AMP; with
``--digits``, the time the digits architecture takes to reach 90% validation accuracy.

Run: ``python benchmarks/train.py [--model spikformer-4-384-cifar10] [--batch 64]
[--batches 10] [--repeats 3] [--amp off,bf16] [--device auto] [--compile]``, or
``python benchmarks/train.py --digits [--repeats 3] [--device auto]``

The real code path: ``autost.train`` on CIFAR-10 python batches (random pixels written to a
temporary folder in the official format, since no dataset can be downloaded here), two epochs
of ``--batches`` batches each; the figure is the second epoch's ``train_images_per_s`` (the
first includes one-off costs: LIF kernel compilation, cuDNN autotuning, allocator warm-up).
AMP modes alternate within each repeat (A, B, A, B, ...); medians are reported with the
environment.

``--digits`` trains the small digits architecture of the trainer test (T=2, embed 64, one SSA
block; 30 epochs, lr 5e-3, batch 64) and reports, per repeat, the first epoch whose val
accuracy reaches 0.90 and the wall time until that epoch ended (set-up before the first epoch
included), the final accuracy and the whole run's wall time; medians over the repeats. The
test suite asserts only the accuracy: a wall-clock limit in a test fails on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import autost


def write_cifar10(root: Path, train_images: int) -> None:
    """Random images in the official ``cifar-10-batches-py`` layout (5 train batches + test)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = -(-train_images // 5)
    for name, n in [*((f"data_batch_{i}", per) for i in range(1, 6)), ("test_batch", 100)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle, protocol=2)


def environment(device: str) -> dict[str, str]:
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "lif_backend": os.environ.get("AUTOST_LIF_BACKEND", "auto"),
    }
    if device != "cpu" and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda or ""
    return env


#: the trainer test's architecture (tests/testkit.py DIGITS_ARCH), from the digits space
DIGITS_ARCH = autost.ArchConfig(
    in_channels=1,
    image_size=8,
    num_classes=10,
    timesteps=2,
    stem="sps",
    stem_pooling="0011",
    embed_dim=64,
    depth=1,
    num_heads=(2,),
    mlp_ratios=(2,),
    attention=("ssa",),
)


def time_to_90(repeats: int, device: str, target: float = 0.90) -> dict[str, Any]:
    """Train the digits architecture ``repeats`` times; when each first reached ``target``."""
    root = Path(tempfile.mkdtemp(prefix="autost-digits-bench-"))
    runs: list[dict[str, Any]] = []
    to_target: list[float] = []
    walls: list[float] = []
    used = device
    for repeat in range(repeats):
        start = time.perf_counter()
        result = autost.train(
            DIGITS_ARCH,
            "digits",
            out=root / f"run-{repeat}",
            epochs=30,
            lr=5e-3,
            device=device,
            progress=False,
        )
        wall = time.perf_counter() - start
        used = json.loads((result.out / "train.json").read_text())["device"]
        epochs = [float(m["epoch_seconds"]) for m in result.metrics]
        setup = wall - sum(epochs)  # data, model, optimiser; checkpoints are in the epochs
        first = next((i for i, m in enumerate(result.metrics) if m["val_acc"] >= target), None)
        seconds = None if first is None else setup + sum(epochs[: first + 1])
        walls.append(wall)
        reached = f"never reached {target:.0%}"
        if seconds is not None and first is not None:
            to_target.append(seconds)
            reached = f"{target:.0%} at epoch {first + 1} after {seconds:.1f} s"
        runs.append(
            {
                "epochs_to_target": None if first is None else first + 1,
                "seconds_to_target": seconds,
                "final_val_acc": result.final["val_acc"],
                "wall_seconds_30_epochs": wall,
            }
        )
        print(
            f"repeat {repeat}: {reached}; final val acc {result.final['val_acc']:.4f}, "
            f"30 epochs in {wall:.1f} s",
            flush=True,
        )
    median = statistics.median(to_target) if to_target else None
    shown = "never" if median is None else f"{median:.1f} s"
    print(
        f"digits architecture to {target:.0%} val accuracy on {used}: median {shown} "
        f"({len(to_target)} of {repeats} runs reached it); 30 epochs: median "
        f"{statistics.median(walls):.1f} s"
    )
    summary = {
        "target": target,
        "device": used,
        "median_seconds_to_target": median,
        "reached": len(to_target),
        "median_wall_seconds_30_epochs": statistics.median(walls),
        "runs": runs,
        "environment": environment(used),
    }
    print(json.dumps(summary["environment"]))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spikformer-4-384-cifar10")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--amp", default="off", help="comma-separated modes: off,bf16,fp16")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument(
        "--digits", action="store_true", help="time the digits architecture to 90%% val accuracy"
    )
    args = parser.parse_args()
    if args.digits:
        digits = time_to_90(args.repeats, args.device)
        if args.json:
            Path(args.json).write_text(json.dumps(digits, indent=2) + "\n")
        return
    modes = args.amp.split(",")
    cfg = autost.create_model(args.model).config
    root = Path(tempfile.mkdtemp(prefix="autost-train-bench-"))
    # val is 10% of train: keep enough train images for --batches full batches
    write_cifar10(root / "data", int(args.batch * args.batches / 0.9) + 5)
    rates: dict[str, list[float]] = {m: [] for m in modes}
    device = "cpu"
    for repeat in range(args.repeats):
        for mode in modes:
            result = autost.train(
                cfg,
                "cifar10",
                root=root / "data",
                out=root / f"run-{mode}-{repeat}",
                epochs=2,
                batch_size=args.batch,
                limit_train_batches=args.batches,
                warmup_epochs=0,
                amp=mode,
                device=args.device,
                compile=args.compile,
                progress=False,
            )
            status = json.loads((result.out / "train.json").read_text())
            device = status["device"]
            rates[mode].append(result.metrics[-1]["train_images_per_s"])
            print(f"repeat {repeat} amp={mode}: {rates[mode][-1]:,.1f} images/s", flush=True)
    summary = {
        "model": args.model,
        "timesteps": cfg.timesteps,
        "batch": args.batch,
        "batches_per_epoch": args.batches,
        "device": device,
        "compile": args.compile,
        "images_per_s": {m: statistics.median(v) for m, v in rates.items()},
        "runs": rates,
        "environment": environment(device),
    }
    for mode, value in summary["images_per_s"].items():
        print(
            f"{args.model} T={cfg.timesteps} batch {args.batch} on {device}, amp={mode}: "
            f"median {value:,.1f} images/s over {args.repeats}"
        )
    if len(modes) > 1:
        base = summary["images_per_s"][modes[0]]
        for mode in modes[1:]:
            print(f"amp={mode} / amp={modes[0]}: {summary['images_per_s'][mode] / base:.2f}x")
    print(json.dumps(summary["environment"]))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
