"""Static image datasets: scikit-learn's digits (embedded), MNIST IDX files, CIFAR python
batches and image folders. Images are scaled to [0, 1] and repeated over T (direct coding).
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from autost.data.base import (
    DatasetInfo,
    FrameDataset,
    check_split,
    check_timesteps,
    register_dataset,
    require_file,
    stratified_split,
)
from autost.errors import AutostError

#: train / val / test shares for sources that ship no split
DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def _static_dataset(
    info: DatasetInfo,
    split: str,
    timesteps: int,
    images: Tensor,
    labels: Sequence[int],
) -> FrameDataset:
    """Wrap ``images [N, C, H, W]`` in [0, 1] as a dataset of ``[T, C, H, W]`` repeats."""
    images = images.contiguous()

    def getter(index: int) -> Tensor:
        return images[index].unsqueeze(0).expand(timesteps, *images.shape[1:])

    return FrameDataset(info, split, timesteps, len(images), getter, [int(v) for v in labels])


def _resize(images: Tensor, size: int) -> Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.nn.functional.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False
    ).clamp_(0.0, 1.0)


# ----------------------------------------------------------------------------------- digits

DIGITS = DatasetInfo(
    "digits",
    in_channels=1,
    image_size=8,
    num_classes=10,
    kind="static",
    description="scikit-learn's bundled 8x8 handwritten digits (1,797 images), offline",
)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits as ``(images [N, 8, 8] in [0, 1], labels [N])``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


@register_dataset(DIGITS)
def load_digits(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 4,
    image_size: int = 8,
    seed: int = 0,
) -> FrameDataset:
    """Digits, stratified 70/15/15 into train/val/test with ``seed``; optionally upsampled."""
    check_split(split)
    check_timesteps(timesteps)
    images, labels = digits_arrays()
    idx = stratified_split(labels, DEFAULT_FRACTIONS, seed)[split]
    x = _resize(torch.from_numpy(images[idx]).unsqueeze(1), image_size)
    info = DatasetInfo(**{**DIGITS.to_dict(), "image_size": image_size})
    return _static_dataset(info, split, timesteps, x, labels[idx].tolist())


# ------------------------------------------------------------------------------------ MNIST

MNIST = DatasetInfo(
    "mnist",
    in_channels=1,
    image_size=28,
    num_classes=10,
    kind="static",
    description="MNIST from the official IDX files (gzip or raw) under root",
)
_IDX_TYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), checking magic, dimensions and size."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise AutostError(f"{path}: cannot read IDX data ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise AutostError(f"{path}: not an IDX file (expected a 4-byte magic 0x0000TTDD)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise AutostError(f"{path}: truncated IDX header (expected {header} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise AutostError(
            f"{path}: truncated or corrupt IDX file: dimensions {list(dims)} need "
            f"{expected} bytes, found {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for folder in (root, root / "MNIST" / "raw", root / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    hint = "the official IDX file, gzip or raw"
    if stem.startswith("train"):
        hint += "; with the t10k files alone, pass source='test' (--dataset-option source=test)"
    return require_file(root / (stem + ".gz"), f"MNIST file {stem}", hint)


def read_mnist_pair(root: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 28, 28]`` uint8 and labels ``[N]`` from ``<prefix>-images/labels`` files."""
    images_path = _find(root, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise AutostError(
            f"{images_path} / {labels_path}: expected [N, H, W] images and [N] labels, "
            f"got {list(images.shape)} and {list(labels.shape)}"
        )
    return images, labels.astype(np.int64)


@register_dataset(MNIST)
def load_mnist(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 4,
    image_size: int = 28,
    seed: int = 0,
    source: str = "official",
) -> FrameDataset:
    """MNIST from IDX files under ``root``.

    ``source="official"``: train/val are a stratified 55,000/5,000 split of the training files,
    test is the t10k files. ``source="test"``: only the t10k files are needed; they are split
    stratified 70/15/15 into train/val/test with ``seed`` (for machines that hold only those).
    """
    check_split(split)
    check_timesteps(timesteps)
    if root is None:
        raise AutostError("mnist needs root=<folder with the IDX files>")
    root = Path(root)
    if source == "test":
        images, labels = read_mnist_pair(root, "t10k")
        idx = stratified_split(labels, DEFAULT_FRACTIONS, seed)[split]
    elif source == "official":
        if split == "test":
            images, labels = read_mnist_pair(root, "t10k")
            idx = np.arange(len(labels))
        else:
            images, labels = read_mnist_pair(root, "train")
            share = 5000 / len(labels)
            idx = stratified_split(labels, {"train": 1 - share, "val": share}, seed)[split]
    else:
        raise AutostError(f"unknown MNIST source {source!r}; use 'official' or 'test'")
    x = torch.from_numpy(images[idx].astype(np.float32) / 255.0).unsqueeze(1)
    info = DatasetInfo(**{**MNIST.to_dict(), "image_size": image_size})
    return _static_dataset(info, split, timesteps, _resize(x, image_size), labels[idx].tolist())


# ------------------------------------------------------------------------------------ CIFAR


class _CifarUnpickler(pickle.Unpickler):
    """Loads CIFAR's python batches but refuses any global other than numpy's array rebuild."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images [N, 3, 32, 32] uint8, labels [N])`` from one CIFAR python batch file."""
    try:
        with path.open("rb") as handle:
            batch = _CifarUnpickler(handle, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise AutostError(f"{path}: not a readable CIFAR python batch ({exc})") from exc
    if not isinstance(batch, dict):
        raise AutostError(f"{path}: expected a dict with b'data' and b'{label_key}'")
    data, labels = batch.get(b"data"), batch.get(label_key.encode())
    if not isinstance(data, np.ndarray) or labels is None:
        raise AutostError(f"{path}: expected keys b'data' and b'{label_key}'")
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise AutostError(
            f"{path}: expected data [N, 3072] and N labels, got {list(data.shape)} "
            f"and {len(labels)} labels"
        )
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), labels


def _load_cifar(
    info: DatasetInfo,
    root: Path | None,
    split: str,
    timesteps: int,
    seed: int,
    folder: str,
    train_files: list[str],
    test_files: list[str],
    label_key: str,
) -> FrameDataset:
    check_split(split)
    check_timesteps(timesteps)
    if root is None:
        raise AutostError(f"{info.name} needs root=<folder holding {folder}/>")
    base = Path(root) / folder if (Path(root) / folder).is_dir() else Path(root)
    names = test_files if split == "test" else train_files
    parts = [
        read_cifar_batch(
            require_file(base / n, f"{info.name} batch", f"from the python version, {folder}/"),
            label_key,
        )
        for n in names
    ]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if split == "test":
        idx = np.arange(len(labels))
    else:
        idx = stratified_split(labels, {"train": 0.9, "val": 0.1}, seed)[split]
    if labels.max(initial=0) >= info.num_classes or labels.min(initial=0) < 0:
        raise AutostError(f"{base}: labels outside 0..{info.num_classes - 1}")
    x = torch.from_numpy(images[idx].astype(np.float32) / 255.0)
    return _static_dataset(info, split, timesteps, x, labels[idx].tolist())


CIFAR10 = DatasetInfo("cifar10", 3, 32, 10, "static", description="CIFAR-10 python batches")
CIFAR100 = DatasetInfo("cifar100", 3, 32, 100, "static", description="CIFAR-100 python files")


@register_dataset(CIFAR10)
def load_cifar10(
    root: Path | None = None, split: str = "train", timesteps: int = 4, seed: int = 0
) -> FrameDataset:
    """CIFAR-10 from ``cifar-10-batches-py`` (data_batch_1..5, test_batch); val is 10% of train."""
    train = [f"data_batch_{i}" for i in range(1, 6)]
    return _load_cifar(
        CIFAR10,
        root,
        split,
        timesteps,
        seed,
        "cifar-10-batches-py",
        train,
        ["test_batch"],
        "labels",
    )


@register_dataset(CIFAR100)
def load_cifar100(
    root: Path | None = None, split: str = "train", timesteps: int = 4, seed: int = 0
) -> FrameDataset:
    """CIFAR-100 (fine labels) from ``cifar-100-python`` (train, test); val is 10% of train."""
    return _load_cifar(
        CIFAR100,
        root,
        split,
        timesteps,
        seed,
        "cifar-100-python",
        ["train"],
        ["test"],
        "fine_labels",
    )


# ------------------------------------------------------------------------------ image folder

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff"}
IMAGEFOLDER = DatasetInfo(
    "imagefolder", 3, 32, 0, "static", description="root/<class>/*.png (or root/<split>/<class>/)"
)


@register_dataset(IMAGEFOLDER)
def load_imagefolder(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 4,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
) -> FrameDataset:
    """Images in ``root/<class>/`` (split 70/15/15 with ``seed``) or ``root/<split>/<class>/``.

    Classes are the sorted sub-folder names; images are resized to ``image_size`` and converted
    to ``channels`` (1 = greyscale, 3 = RGB).
    """
    from PIL import Image, UnidentifiedImageError

    check_split(split)
    check_timesteps(timesteps)
    if root is None or not Path(root).is_dir():
        raise AutostError(f"imagefolder needs root=<folder of class folders>, got {root}")
    if channels not in (1, 3):
        raise AutostError(f"imagefolder channels must be 1 or 3, got {channels}")
    root = Path(root)
    presplit = (root / "train").is_dir()
    base = root / split if presplit else root
    if not base.is_dir():
        raise AutostError(f"missing split folder {base}")
    classes = sorted(p.name for p in (root / "train" if presplit else root).iterdir() if p.is_dir())
    if not classes:
        raise AutostError(f"{base}: no class folders found")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = base / name
        found = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    if not files:
        raise AutostError(f"{base}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    keep = (
        np.arange(len(files))
        if presplit
        else stratified_split(labels, DEFAULT_FRACTIONS, seed)[split]
    )
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for i in keep:
        try:
            with Image.open(files[i]) as img:
                img = img.convert(mode).resize((image_size, image_size), Image.Resampling.BILINEAR)
                arrays.append(np.asarray(img, dtype=np.float32).reshape(image_size, image_size, -1))
        except (OSError, UnidentifiedImageError) as exc:
            raise AutostError(f"{files[i]}: not a readable image ({exc})") from exc
    x = torch.from_numpy(np.stack(arrays) / 255.0).permute(0, 3, 1, 2).float()
    info = DatasetInfo(
        "imagefolder",
        channels,
        image_size,
        len(classes),
        "static",
        description=f"image folder {root} ({len(classes)} classes)",
    )
    return _static_dataset(info, split, timesteps, x, [labels[i] for i in keep])
