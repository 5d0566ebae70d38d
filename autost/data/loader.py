"""DataLoader factory: seeded shuffling, worker processes, pinned memory on CUDA."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def _seed_worker(worker_id: int) -> None:
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset[Any],
    batch_size: int = 64,
    *,
    shuffle: bool = False,
    seed: int = 0,
    workers: int = 0,
    device: str | torch.device = "cpu",
    drop_last: bool = False,
) -> DataLoader[Any]:
    """A ``DataLoader`` whose shuffling order depends only on ``seed``.

    Batches are ``(x [B, T, C, H, W], y [B])``; move time first with ``x.transpose(0, 1)``.
    Memory is pinned when ``device`` is CUDA; workers get distinct, reproducible seeds.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=_seed_worker if workers > 0 else None,
        persistent_workers=workers > 0,
    )
