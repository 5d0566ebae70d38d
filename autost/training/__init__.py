"""The built-in trainer: ``autost.train(spec, dataset, ...)`` and its pieces.

One code path trains on a CPU, on a CUDA GPU (autocast bf16/fp16, channels-last, optional
``torch.compile``) and on every worker of a Ray Train run (``workers > 1`` or ``address``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autost.training.loop import Trainer, TrainingDiverged, TrainResult
from autost.training.settings import TrainSettings


def train(
    spec: Any,
    dataset: str = "digits",
    *,
    out: str | Path = "runs/train",
    settings: TrainSettings | None = None,
    resume: bool = False,
    root: str | Path | None = None,
    progress: bool = True,
    workers: int = 1,
    gpus_per_worker: float = 0,
    address: str | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train the architecture ``spec`` (anything :func:`autost.create_model` takes) on
    ``dataset`` into run directory ``out``.

    ``settings`` (or keyword ``overrides`` of its fields, e.g. ``epochs=5, lr=2e-3``) choose
    the recipe; ``resume=True`` continues from ``out/checkpoint.pt``. ``workers > 1`` or an
    ``address`` runs data-parallel through Ray Train's ``TorchTrainer`` (gloo on CPU, NCCL on
    GPUs, ``gpus_per_worker`` each). A NaN or infinite loss stops the run: the result's
    ``status`` is ``"diverged"`` and ``failure`` says where.
    """
    from autost.models import resolve_config

    config = resolve_config(spec)
    merged = TrainSettings.from_dict({**(settings or TrainSettings()).to_dict(), **overrides})
    if workers > 1 or address is not None:
        from autost.training.distributed import train_distributed

        return train_distributed(
            config,
            dataset,
            merged,
            Path(out),
            resume=resume,
            root=root,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            address=address,
        )
    trainer = Trainer(config, dataset, merged, Path(out), root=root, progress=progress)
    return trainer.fit(resume=resume)


__all__ = ["TrainResult", "TrainSettings", "Trainer", "TrainingDiverged", "train"]
