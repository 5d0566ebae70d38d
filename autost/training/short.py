"""A few steps of training from a fixed initialisation: the low-fidelity baselines.

:func:`short_training` trains a freshly built model for ``steps`` mini-batches (AdamW at a
constant learning rate, cross-entropy without label smoothing, gradients clipped at norm 1,
no augmentation) and returns every step's loss and, optionally, the validation accuracy
(BatchNorm on the statistics of each validation batch of 256: after so few steps the running
statistics are still mostly their initial values).
Everything is seeded (weights and batch order), so the same call gives the same numbers.
The short-training evaluator recipes (``kind = "short-training"``) score candidates with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from autost.errors import AutostError
from autost.model.config import ArchConfig


@dataclass
class ShortRun:
    """What :func:`short_training` measured."""

    losses: list[float] = field(default_factory=list)
    val_acc: float = math.nan
    seconds: float = 0.0

    @property
    def window(self) -> int:
        """Steps averaged at each end for :attr:`loss_drop`: a fifth of the run, at least one."""
        return max(1, math.ceil(len(self.losses) / 5))

    @property
    def loss_drop(self) -> float:
        """Mean loss of the first :attr:`window` steps minus that of the last ones (NaN when a
        loss was not finite)."""
        if not self.losses or not all(math.isfinite(v) for v in self.losses):
            return math.nan
        k = self.window
        return sum(self.losses[:k]) / k - sum(self.losses[-k:]) / k


def check_data(config: ArchConfig, data: Dataset[Any], name: str) -> None:
    """One clear line when ``data`` (an ``autost.data.FrameDataset``) does not fit ``config``."""
    info = data.info  # type: ignore[attr-defined]
    got, want = (info.in_channels, info.image_size), (config.in_channels, config.image_size)
    if got != want:
        raise AutostError(
            f"dataset {name!r} gives {got[0]} channels at {got[1]}x{got[1]}, the architecture "
            f"expects {want[0]} at {want[1]}x{want[1]} (set the dataset's image_size option)"
        )
    classes = info.num_classes or len(set(data.targets))  # type: ignore[attr-defined]
    if classes != config.num_classes:
        raise AutostError(
            f"dataset {name!r} has {classes} classes, the architecture {config.num_classes}"
        )


def check_dataset(
    config: ArchConfig,
    dataset: str,
    root: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Load the train and val splits of ``dataset`` that ``config`` would train on and check
    that they fit it: missing files, unknown names or options, empty splits and a misfit
    shape are one :class:`AutostError` line, before a command starts any work."""
    from autost.data import dataset_info, load_dataset

    steps = 1 if dataset_info(dataset).kind == "static" else config.timesteps
    for split in ("train", "val"):
        data = load_dataset(dataset, root, split, timesteps=steps, **dict(options or {}))
        if len(data) == 0:
            raise AutostError(f"dataset {dataset!r}: its {split} split is empty")
        check_data(config, data, dataset)


def short_training(
    config: ArchConfig,
    train: Dataset[Any],
    val: Dataset[Any] | None,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 5e-3,
    seed: int = 0,
    static: bool = True,
    device: str | torch.device = "cpu",
) -> ShortRun:
    """Train ``config`` for ``steps`` batches of ``train`` and measure it (see the module).

    ``train``/``val`` yield ``(x [T, C, H, W], label)``; ``static`` datasets carry one frame
    (the model codes it over its timesteps). ``val=None`` skips the validation pass. A
    non-finite loss stops the run: its loss is recorded and ``val_acc`` stays NaN.
    """
    from autost.model.network import SpikingTransformer
    from autost.proxies.context import batch_statistics_norm

    if len(train) == 0:  # type: ignore[arg-type]
        raise AutostError("short training: the train split is empty")
    start = time.perf_counter()
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: nn.Module = SpikingTransformer(config).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    run = ShortRun()

    def inputs(x: Tensor) -> Tensor:
        x = x.to(device).float().transpose(0, 1)  # [T, B, C, H, W]
        return x[0] if static else x.contiguous()

    while len(run.losses) < steps:
        loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=order)
        for x, y in loader:
            loss = F.cross_entropy(model(inputs(x)), y.to(device))
            run.losses.append(float(loss.detach()))
            if not math.isfinite(run.losses[-1]):
                run.seconds = time.perf_counter() - start
                return run
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if len(run.losses) == steps:
                break
    if val is not None:
        # after a few steps the BN running statistics still hold much of their initial
        # mean 0 / variance 1 (0.9^20 of it after 20 steps), which can silence every neuron
        batch_statistics_norm(model)
        model.eval()
        correct = count = 0
        with torch.no_grad():
            for x, y in DataLoader(val, batch_size=256):
                correct += int((model(inputs(x)).argmax(-1) == y.to(device)).sum())
                count += len(y)
        run.val_acc = correct / max(count, 1)
    run.seconds = time.perf_counter() - start
    return run


__all__ = ["ShortRun", "check_data", "short_training"]
