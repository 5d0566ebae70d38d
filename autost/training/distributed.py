"""Data-parallel training through Ray Train's ``TorchTrainer``: the same :class:`Trainer` on
every worker, DDP over gloo (CPU) or NCCL (GPU).

Rank 0 writes the run directory (``out`` must be on storage that rank 0's node can write, e.g.
a shared file system on a multi-node cluster) and reports each epoch's metrics and checkpoint
to Ray, which keeps them under ``out/ray``. Every rank reads ``out/checkpoint.pt`` on resume.
Without ``address`` a local Ray instance is started for the run and stopped after it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from autost.errors import AutostError
from autost.model.config import ArchConfig
from autost.runtime.workdir import private_workdir, sweep
from autost.training import checkpoint as ckpt
from autost.training.loop import Distributed, Trainer, TrainResult
from autost.training.settings import TrainSettings

#: The prefix of a worker's folder for the checkpoint it reports, in its node's temp dir.
STAGING_PREFIX = "autost-report-"


def _worker(args: dict[str, Any]) -> None:
    """The per-worker entry point (runs inside a Ray Train worker process)."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()

    def report(metrics: dict[str, Any], path: Path | None) -> None:
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        if path is None:
            ray.train.report(scalars)
            return
        # Staged in a private folder: Ray may end this process while it waits in report.
        with private_workdir(STAGING_PREFIX) as tmp:
            for name in (ckpt.CHECKPOINT, ckpt.WEIGHTS):
                shutil.copy2(path.parent / name, tmp / name)
            ray.train.report(scalars, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    trainer = Trainer(
        ArchConfig.from_json(args["config"]),
        args["dataset"],
        TrainSettings.from_dict(args["settings"]),
        Path(args["out"]),
        root=args["root"],
        progress=False,
        distributed=Distributed(
            rank=context.get_world_rank(),
            world_size=context.get_world_size(),
            device=ray.train.torch.get_device(),
            report=report,
        ),
    )
    trainer.fit(resume=args["resume"])


def train_distributed(
    config: ArchConfig,
    dataset: str,
    settings: TrainSettings,
    out: Path,
    *,
    resume: bool,
    root: str | Path | None,
    workers: int,
    gpus_per_worker: float,
    address: str | None,
) -> TrainResult:
    """Run :class:`Trainer` on ``workers`` Ray Train workers; see the module docstring."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from autost.runtime.ray_util import ray_log, ray_session

    if workers < 1:
        raise AutostError(f"workers must be >= 1, got {workers}")
    out = out.resolve()
    if not resume and ((out / "train.json").exists() or (out / ckpt.CHECKPOINT).exists()):
        raise AutostError(
            f"{out} already holds a training run; pass --resume to continue it or choose "
            "another --out (nothing was changed)"
        )
    gpu = gpus_per_worker > 0
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "config": config.to_json(),
            "dataset": dataset,
            "settings": settings.to_dict(),
            "out": str(out),
            "root": None if root is None else str(root),
            "resume": resume,
        },
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=gpu,
            resources_per_worker={"CPU": 1, **({"GPU": gpus_per_worker} if gpu else {})},
        ),
        run_config=RunConfig(name="train", storage_path=str(out / "ray")),
    )
    out.mkdir(parents=True, exist_ok=True)
    with ray_log(out / "ray.log", echo=False), ray_session(address):
        try:
            trainer.fit()
        except Exception as exc:  # TrainingFailedError wraps the worker error
            cause: BaseException = exc
            while cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, AutostError):
                raise AutostError(str(cause)) from exc
            raise AutostError(
                f"distributed training failed: {type(cause).__name__}: {cause}"
            ) from exc
        finally:
            sweep(STAGING_PREFIX)  # what workers Ray ended mid-report left on this node
    return load_result(out)


def load_result(out: Path) -> TrainResult:
    """The :class:`TrainResult` of a finished run directory."""
    status = json.loads((out / "train.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return TrainResult(
        out,
        ArchConfig.from_dict(status["config"]),
        status["status"],
        [m for m in metrics if "failure" not in m],
        status.get("failure", ""),
    )
