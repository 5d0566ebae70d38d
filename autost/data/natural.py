"""A seeded batch of natural 32x32 RGB images that ships with scikit-learn (no download).

CIFAR-10 cannot be fetched everywhere; training-free proxies only need a batch of natural-image
statistics. :func:`natural_batch` crops scikit-learn's two bundled photographs
(``load_sample_images``: ``china.jpg`` and ``flower.jpg``, 427 x 640 each) at random positions
and scales, resizes each crop to 32 x 32 (PIL box filter) and normalises it with the CIFAR-10
mean and standard deviation. It is *not* CIFAR-10: two scenes, no object classes.

Pseudo-labels in ``0..num_classes-1`` (balanced) are tied to the content: label ``k`` draws from
photograph ``k % 2`` a crop whose side lies in scale bin ``k // 2`` (bins of equal width between
``min_side`` and the photograph's height), so a network can in principle tell them apart.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from autost.data.base import (
    DatasetInfo,
    FrameDataset,
    check_split,
    check_timesteps,
    register_dataset,
)
from autost.errors import AutostError

#: CIFAR-10 channel statistics, as SpikeNAS-Bench's ``data_transforms`` normalises.
CIFAR10_MEAN = (0.4913, 0.4821, 0.4465)
CIFAR10_STD = (0.2470, 0.2434, 0.2615)


PHOTOGRAPHS = ("china.jpg", "flower.jpg")


@lru_cache(maxsize=1)
def _photographs() -> tuple[np.ndarray, ...]:
    """scikit-learn's sample photographs, read straight from its package data (importing
    ``sklearn.datasets`` for ``load_sample_images`` takes seconds); the same pixels."""
    from PIL import Image

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise AutostError(
            "natural_batch needs scikit-learn's sample images: pip install scikit-learn"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    photos = []
    for name in PHOTOGRAPHS:
        with Image.open(folder / name) as image:
            photos.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return tuple(photos)


def natural_batch(
    n: int = 32,
    seed: int = 0,
    size: int = 32,
    num_classes: int = 10,
    min_side: int = 32,
) -> tuple[Tensor, Tensor]:
    """``(x [n, 3, size, size] float32, y [n] int64)``: seeded crops of scikit-learn's sample
    photographs, normalised like CIFAR-10; ``y`` are the pseudo-labels of the module docstring.

    The same arguments always give the same batch (NumPy ``default_rng(seed)``; no global RNG).
    """
    from PIL import Image

    if n < 1 or size < 1 or num_classes < 1:
        raise ValueError(
            f"n, size and num_classes must be positive, got {n}, {size}, {num_classes}"
        )
    photos = _photographs()
    height = min(p.shape[0] for p in photos)
    if not 1 <= min_side <= height:
        raise ValueError(f"min_side must be in 1..{height}, got {min_side}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes)
    bins = max(1, -(-num_classes // len(photos)))  # scale bins per photograph
    edges = np.linspace(min_side, height, bins + 1)
    images = np.empty((n, size, size, 3), dtype=np.float32)
    for i, label in enumerate(labels):
        photo = photos[label % len(photos)]
        scale = label // len(photos)
        low = int(edges[scale])
        side = int(rng.integers(low, max(int(edges[scale + 1]), low + 1)))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crop = crop.resize((size, size), Image.Resampling.BOX)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        images[i] = np.asarray(crop, dtype=np.float32) / 255.0
    mean = np.asarray(CIFAR10_MEAN, dtype=np.float32)
    std = np.asarray(CIFAR10_STD, dtype=np.float32)
    x = torch.from_numpy(((images - mean) / std).transpose(0, 3, 1, 2).copy())
    return x, torch.from_numpy(labels.astype(np.int64))


# ------------------------------------------------------------------ the registered stand-in

NATURAL = DatasetInfo(
    "natural",
    in_channels=3,
    image_size=32,
    num_classes=10,
    kind="static",
    description="seeded crops of scikit-learn's two sample photographs, CIFAR-normalised "
    "(a stand-in for natural images, offline; not CIFAR-10)",
)
#: samples per split; each split draws with its own seed, so the splits share no crop draw
NATURAL_SPLITS = {"train": 512, "val": 128, "test": 128}


@register_dataset(NATURAL)
def load_natural(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 4,
    image_size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
) -> FrameDataset:
    """:func:`natural_batch` as a dataset: ``NATURAL_SPLITS[split]`` crops at ``image_size``
    with ``num_classes`` balanced pseudo-labels; split ``k`` draws with seed ``seed * 3 + k``.

    It needs no files (``root`` is ignored). Proxies and short trainings can run on it where
    a space's 3-channel input fits no local dataset; its accuracies mean nothing for CIFAR.
    """
    check_split(split)
    check_timesteps(timesteps)
    for key, value in (("image_size", image_size), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AutostError(f"dataset 'natural': {key} must be an integer >= 1, got {value!r}")
    offset = list(NATURAL_SPLITS).index(split)
    x, y = natural_batch(
        NATURAL_SPLITS[split],
        seed=seed * len(NATURAL_SPLITS) + offset,
        size=image_size,
        num_classes=num_classes,
        min_side=min(32, image_size),
    )
    from autost.data.static import _static_dataset

    info = DatasetInfo(
        **{**NATURAL.to_dict(), "image_size": image_size, "num_classes": num_classes}
    )
    return _static_dataset(info, split, timesteps, x, y.tolist())


__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "NATURAL", "load_natural", "natural_batch"]
