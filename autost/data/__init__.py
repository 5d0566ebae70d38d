"""Datasets: the embedded default (digits), event data through tonic, static images from files.

``load_dataset(name, root=None, split="train", timesteps=T, **options)`` returns a
:class:`FrameDataset` of ``(x [T, C, H, W] float32, label)`` with ``.info`` (a
:class:`DatasetInfo`: channels, size, classes, natural timesteps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autost.data import events as _events  # noqa: F401  (registers the loaders)
from autost.data import static as _static  # noqa: F401
from autost.data.base import DATASETS, INFOS, DatasetInfo, FrameCache, FrameDataset
from autost.data.loader import make_loader

DEFAULT_DATASET = "digits"


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """The description of dataset ``name`` at its default options."""
    DATASETS.get(name)  # unknown names raise with close matches
    return INFOS[name]


def load_dataset(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    timesteps: int = 4,
    **options: Any,
) -> FrameDataset:
    """Load split ``split`` of dataset ``name`` with ``timesteps`` frames per sample."""
    loader = DATASETS.get(name)
    return loader(
        root=Path(root) if root is not None else None,
        split=split,
        timesteps=timesteps,
        **options,
    )


__all__ = [
    "DEFAULT_DATASET",
    "DatasetInfo",
    "FrameCache",
    "FrameDataset",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "make_loader",
]
