"""The built-in trainer: ``autost.train(spec, dataset, ...)`` and its pieces.

One code path trains on a CPU, on a CUDA GPU (autocast bf16/fp16, channels-last, optional
``torch.compile``) and on every worker of a Ray Train run (``workers > 1`` or ``address``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autost.errors import AutostError
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
    from autost.model.network import resolve_config

    out = Path(out)
    # the nearest existing path of out and its parents must be a folder
    existing = next((part for part in (out, *out.parents) if part.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == out else f": {existing}"
        raise AutostError(f"--out {out}{where} is a file, not a folder")
    config = resolve_config(spec)
    merged = TrainSettings.from_dict({**(settings or TrainSettings()).to_dict(), **overrides})
    if workers > 1 or address is not None:
        from autost.training.distributed import train_distributed

        return train_distributed(
            config,
            dataset,
            merged,
            out,
            resume=resume,
            root=root,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            address=address,
        )
    trainer = Trainer(config, dataset, merged, out, root=root, progress=progress)
    return trainer.fit(resume=resume)


__all__ = ["TrainResult", "TrainSettings", "Trainer", "TrainingDiverged", "train"]
