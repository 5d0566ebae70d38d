"""Dataset registry, descriptions, deterministic splits and the on-disk frame cache."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from autost.errors import AutostError
from autost.io import atomic_write_bytes
from autost.registry import Registry

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What the model builder and the search need to fit an ``ArchConfig`` to the data.

    ``natural_timesteps`` is the number of timesteps the data was recorded or published with
    (``None`` for static images, which any T can repeat).
    """

    name: str
    in_channels: int
    image_size: int
    num_classes: int
    kind: str  # "static" or "events"
    natural_timesteps: int | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


class FrameDataset(Dataset[tuple[Tensor, int]]):
    """A dataset split of ``(x [T, C, H, W] float32, label)`` items; ``info`` describes it."""

    def __init__(
        self,
        info: DatasetInfo,
        split: str,
        timesteps: int,
        length: int,
        getter: Callable[[int], Tensor],
        targets: Sequence[int],
    ) -> None:
        self.info = info
        self.split = split
        self.timesteps = timesteps
        self._length = length
        self._getter = getter
        self.targets = list(targets)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if not 0 <= index < self._length:
            raise IndexError(index)
        return self._getter(index), self.targets[index]

    def __repr__(self) -> str:
        return (
            f"FrameDataset({self.info.name!r}, split={self.split!r}, n={self._length}, "
            f"T={self.timesteps}, x=[{self.timesteps}, {self.info.in_channels}, "
            f"{self.info.image_size}, {self.info.image_size}])"
        )


Loader = Callable[..., FrameDataset]
DATASETS: Registry[Loader] = Registry("dataset")
INFOS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> Callable[[Loader], Loader]:
    """Register a loader ``fn(root, split, timesteps, **options) -> FrameDataset``."""

    def decorator(fn: Loader) -> Loader:
        INFOS[info.name] = info
        return DATASETS.register(info.name)(fn)

    return decorator


def check_split(split: str) -> None:
    """Raise for a split name other than train / val / test."""
    if split not in SPLITS:
        raise AutostError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def check_timesteps(timesteps: int) -> None:
    """Raise for T < 1."""
    if not isinstance(timesteps, int) or timesteps < 1:
        raise AutostError(f"timesteps must be a positive integer, got {timesteps!r}")


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    fractions: dict[str, float],
    seed: int,
) -> dict[str, np.ndarray]:
    """Deterministic stratified index split; ``fractions`` maps split names to shares (sum 1).

    Within every class the indices are shuffled with ``seed`` and cut by the fractions, so the
    result depends only on the labels, the fractions and the seed.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    names = list(fractions)
    shares = np.array([fractions[n] for n in names], dtype=float)
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        cuts = np.round(np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for name, part in zip(names, np.split(idx, cuts), strict=True):
            out[name].append(part)
    return {n: np.sort(np.concatenate(parts)) for n, parts in out.items()}


def require_file(path: Path, what: str, hint: str) -> Path:
    """Return ``path`` or raise an :class:`AutostError` saying what belongs there."""
    if not path.is_file():
        raise AutostError(f"missing {what}: expected the file {path} ({hint})")
    return path


# ------------------------------------------------------------------------------ frame cache


class FrameCache:
    """Framed samples stored as ``.npy`` files, written atomically, keyed by their inputs.

    A sample is read back only from a complete file (it is renamed into place after it is
    fully written); a file that fails to load is treated as absent and rewritten.
    """

    def __init__(self, root: Path, key: dict[str, Any]) -> None:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = Path(root) / f"{key.get('dataset', 'data')}-{digest}"
        self.key = key

    def path(self, index: int) -> Path:
        """Where sample ``index`` lives."""
        return self.folder / f"{index:07d}.npy"

    def load(self, index: int) -> np.ndarray | None:
        """The cached array, or ``None`` when absent or unreadable."""
        path = self.path(index)
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def store(self, index: int, array: np.ndarray) -> None:
        """Write ``array`` for ``index`` atomically."""
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "key.json"
            if not meta.exists():
                atomic_write_bytes(meta, json.dumps(self.key, indent=1).encode())
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        atomic_write_bytes(self.path(index), buffer.getvalue())

    def get_or_make(self, index: int, make: Callable[[], np.ndarray]) -> np.ndarray:
        """Cached sample ``index``, computing and storing it with ``make`` on a miss."""
        array = self.load(index)
        if array is None:
            array = make()
            self.store(index, array)
        return array


def default_cache_root() -> Path:
    """``$AUTOST_CACHE`` or ``~/.cache/autost``."""
    env = os.environ.get("AUTOST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "autost"


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Identity of a source file for cache keys: path, size and modification time."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def to_float_frames(array: np.ndarray) -> Tensor:
    """``[T, C, H, W]`` float32 tensor from a numpy array."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
