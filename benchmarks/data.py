"""Event framing throughput and first-epoch vs cached-epoch time of the dataset loaders.

Run: ``python benchmarks/data.py [--files 600] [--events 4000] [--timesteps 10] [--json PATH]``

It writes a synthetic N-MNIST tree in the real 40-bit format (plus the real recording from
../shared/data/event-samples when present) into a temporary folder, then measures, through the
exact code path users run (``autost.data.load_dataset("nmnist", ...)``):
- framing throughput: events/s of read + tonic ``ToFrame`` with the cache off;
- epoch 1 with an empty cache (read, frame, write ``.npy``) vs epoch 2 (cache hits), repeated
  A, B, A, B... with a fresh cache for each A; medians and their ratio are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from data_formats import write_nmnist

from autost.data import load_dataset

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "event-samples"


def make_tree(root: Path, files: int, events: int, seed: int = 0) -> int:
    """Write ``files`` N-MNIST test recordings; returns the total number of events."""
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(files):
        digit = i % 10
        t = np.sort(rng.integers(0, 300_000, events)).astype(np.uint32)
        write_nmnist(
            root / "NMNIST" / "Test" / str(digit) / f"{i:05d}.bin",
            rng.integers(0, 34, events), rng.integers(0, 34, events), t,
            rng.integers(0, 2, events),
        )  # fmt: skip
        total += events
    if (SAMPLE / "sample_nmnist.bin").is_file():
        shutil.copy(SAMPLE / "sample_nmnist.bin", root / "NMNIST" / "Test" / "0" / "real.bin")
        total += 4325
    (root / "NMNIST" / "Train").mkdir(parents=True, exist_ok=True)
    return total


def epoch(root: Path, timesteps: int, cache_dir: Path | None) -> float:
    """Seconds to read every sample of the test split once."""
    ds = load_dataset(
        "nmnist", root=root, split="test", timesteps=timesteps,
        cache=cache_dir is not None, cache_dir=cache_dir,
    )  # fmt: skip
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--timesteps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = make_tree(root, args.files, args.events)
        uncached, first, cached = [], [], []
        for r in range(args.repeats):
            uncached.append(epoch(root, args.timesteps, None))
            cache = root / f"cache{r}"
            first.append(epoch(root, args.timesteps, cache))  # A: empty cache
            cached.append(epoch(root, args.timesteps, cache))  # B: cache hits
        n = args.files + (1 if (SAMPLE / "sample_nmnist.bin").is_file() else 0)
        result = {
            "recordings": n,
            "events": total,
            "timesteps": args.timesteps,
            "framing_events_per_s": total / statistics.median(uncached),
            "epoch_uncached_s": statistics.median(uncached),
            "epoch_first_with_cache_write_s": statistics.median(first),
            "epoch_cached_s": statistics.median(cached),
            "first_over_cached": statistics.median(first) / statistics.median(cached),
            "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
        }
    for key, value in result.items():
        print(f"{key:32s} {value:,.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
