"""Checkpoints: plain tensors and Python containers only, written atomically, loadable with
``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autost.errors import AutostError
from autost.io import atomic_write_bytes

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop may touch (torch CPU and CUDA, Python, NumPy)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys).copy()), pos, has_gauss, gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, gauss_np))


def save(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a buffer, then an atomic write: a crash leaves the previous file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load(path: Path) -> dict[str, Any]:
    """A checkpoint saved by :func:`save`, with ``weights_only=True``."""
    try:
        data: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise AutostError(f"no checkpoint at {path}") from exc
    except Exception as exc:  # unpickling errors, truncated zip archives, ...
        raise AutostError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    return data
