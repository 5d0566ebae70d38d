"""Ray Tune overhead per trial against the trial's own compute, and throughput with 1 vs 2
concurrent trial workers.

Run: ``python benchmarks/tune.py [--trials 6] [--epochs 2] [--repeats 2]``

Every trial short-trains the same digits architecture (one finalist, so the compute per trial
is the same; lr and weight decay still vary) for ``--epochs`` epochs with ASHA's grace period
at the full length (no trial stopped early), through the real ``autost.tune`` path: local Ray
started with 1 or with 2 CPUs, one CPU per trial, so 1 or 2 trials run at a time. Settings
alternate within each repeat (1, 2, 1, 2, ...). Trial compute is the sum of the trainer's own
epoch times (training + validation) read from each trial's last checkpoint; overhead per trial
is ``(wall x workers - compute) / trials``: Ray's actor start, scheduling, result and
checkpoint handling, the searcher, and the experiment snapshots.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import ray

import autost
from autost.tune import tune

ARCH = autost.ArchConfig(
    in_channels=1,
    image_size=8,
    num_classes=10,
    timesteps=2,
    stem="sps",
    stem_pooling="0011",
    embed_dim=32,
    depth=1,
    num_heads=(2,),
    mlp_ratios=(2,),
    attention=("ssa",),
)


def one(root: Path, workers: int, trials: int, epochs: int, tag: str) -> dict[str, float]:
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        result = tune(
            from_dir=root / "finalists",
            top=1,
            trials=trials,
            epochs=epochs,
            grace_period=epochs,
            cpus_per_trial=1,
            out=root / f"run-{tag}",
            progress=False,
        )
        wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    assert len(result.leaderboard) == trials, result.summary()
    compute = 0.0
    trial_dirs = sorted((root / f"run-{tag}" / "tune").glob("run_trial_*"))
    assert len(trial_dirs) == trials
    for trial in trial_dirs:  # the run files of a trial's last checkpoint
        path = sorted(trial.glob("checkpoint_*/metrics.jsonl"))[-1]
        compute += sum(json.loads(line)["epoch_seconds"] for line in path.read_text().splitlines())
    return {
        "wall_s": wall,
        "compute_s": compute,
        "overhead_per_trial_s": (wall * workers - compute) / trials,
        "trials_per_min": trials / wall * 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    root = Path(tempfile.mkdtemp(prefix="autost-tune-bench-"))
    (root / "finalists").mkdir()
    ARCH.to_json(root / "finalists" / "rank-01.json")
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for workers in (1, 2):
            row = one(root, workers, args.trials, args.epochs, f"{workers}-{repeat}")
            runs[workers].append(row)
            print(
                f"repeat {repeat}, {workers} worker(s): "
                + ", ".join(f"{k} {v:.2f}" for k, v in row.items()),
                flush=True,
            )
    for workers, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        per_trial = med["compute_s"] / args.trials
        print(
            f"{workers} worker(s): median wall {med['wall_s']:.1f} s for {args.trials} trials "
            f"({med['trials_per_min']:.1f} trials/min); trial compute {per_trial:.2f} s, Ray "
            f"overhead {med['overhead_per_trial_s']:.2f} s per trial "
            f"({med['overhead_per_trial_s'] / per_trial:.1f}x the compute)"
        )
    one_w = statistics.median(r["trials_per_min"] for r in runs[1])
    two_w = statistics.median(r["trials_per_min"] for r in runs[2])
    print(f"throughput 2 workers / 1 worker: {two_w / one_w:.2f}x")


if __name__ == "__main__":
    main()
