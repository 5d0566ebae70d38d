"""Datasets: the embedded default (digits), event data through tonic, static images from files.

``load_dataset(name, root=None, split="train", timesteps=T, **options)`` returns a
:class:`FrameDataset` of ``(x [T, C, H, W] float32, label)`` with ``.info`` (a
:class:`DatasetInfo`: channels, size, classes, natural timesteps). ``dataset_options(name)``
lists a loader's options (``image_size``, ``seed``, MNIST's ``source``, ...);
``parse_options(["source=test"])`` reads them as the CLI's ``--dataset-option`` gives them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autost.data import events as _events  # noqa: F401  (registers the loaders)
from autost.data import natural as _natural  # noqa: F401
from autost.data import static as _static  # noqa: F401
from autost.data.base import DATASETS, INFOS, DatasetInfo, FrameCache, FrameDataset
from autost.data.loader import make_loader
from autost.errors import AutostError

DEFAULT_DATASET = "digits"
#: arguments every loader takes from the caller, never as options
_FIXED = ("root", "split", "timesteps")


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
    """Load split ``split`` of dataset ``name`` with ``timesteps`` frames per sample; an
    option the loader does not take is an error listing those it does."""
    loader = DATASETS.get(name)
    known = dataset_options(name)
    takes_any = any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(loader).parameters.values()
    )
    for key in options:
        if key not in known and not takes_any:
            allowed = ", ".join(known) or "none"
            raise AutostError(f"dataset {name!r} has no option {key!r} (options: {allowed})")
    return loader(
        root=Path(root) if root is not None else None,
        split=split,
        timesteps=timesteps,
        **options,
    )


def dataset_options(name: str) -> list[str]:
    """The options (keyword arguments besides root, split and timesteps) of dataset ``name``."""
    params = inspect.signature(DATASETS.get(name)).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in named and p.name not in _FIXED]


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` as loader options: a VALUE that reads as a JSON number,
    ``true``, ``false`` or ``null`` becomes that, any other VALUE stays a string."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AutostError(f"dataset option {item!r}: expected KEY=VALUE, e.g. source=test")
        if key in _FIXED:
            raise AutostError(f"dataset option {key!r}: set it with its own argument, not here")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        options[key] = value if value is None or isinstance(value, (bool, int, float)) else text
    return options


__all__ = [
    "DEFAULT_DATASET",
    "DatasetInfo",
    "FrameCache",
    "FrameDataset",
    "dataset_info",
    "dataset_options",
    "list_datasets",
    "load_dataset",
    "make_loader",
    "parse_options",
]
