"""Event-camera (and spiking audio) datasets read from local files with tonic's readers and
framed with tonic's transforms (``Downsample``, ``ToFrame(n_time_bins=T)``).

No download is ever attempted: a missing file raises :class:`autost.AutostError` that says
which files go where. Framed samples are cached as ``.npy`` files (see :class:`FrameCache`).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from autost.data.base import (
    DatasetInfo,
    FrameCache,
    FrameDataset,
    check_split,
    check_timesteps,
    default_cache_root,
    file_fingerprint,
    register_dataset,
    require_file,
    stratified_split,
    to_float_frames,
)
from autost.errors import AutostError

EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def as_tonic_events(x: Any, y: Any, t: Any, p: Any) -> np.ndarray:
    """A tonic-style structured array (x, y, t, p) of int64 fields."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["p"] = x, y, np.asarray(p).astype(np.int64)
    events["t"] = np.asarray(t, dtype=np.int64)
    return events


def frame_events(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    timesteps: int,
    target_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Events -> ``[T, polarities, H, W]`` counts with tonic's ``Downsample`` and ``ToFrame``.

    The recording is cut into T equal time bins that cover every event. (tonic's
    ``ToFrame(n_time_bins=T)`` rounds the bin width down and so drops the events of the last
    few microseconds; the equivalent ``time_window`` form with explicit start and end keeps them.)
    """
    import tonic.transforms as tt

    size = sensor_size
    if target_size is not None and target_size != sensor_size[:2]:
        events = tt.Downsample(sensor_size=sensor_size, target_size=target_size)(events)
        size = (target_size[0], target_size[1], sensor_size[2])
    if len(events) == 0:
        return np.zeros((timesteps, size[2], size[1], size[0]), dtype=np.int16)
    events = events[np.argsort(events["t"], kind="stable")]
    span = int(events["t"][-1] - events["t"][0])
    window = span // timesteps + 1
    start = int(events["t"][0])
    frames = tt.ToFrame(
        sensor_size=size, time_window=window, start_time=start, end_time=start + timesteps * window
    )(events)
    return frames.astype(np.int16)


def _event_dataset(
    info: DatasetInfo,
    split: str,
    timesteps: int,
    read: Callable[[int], np.ndarray],
    targets: list[int],
    cache_key: dict[str, Any] | None,
    cache_dir: Path | None,
) -> FrameDataset:
    """Item ``i`` is ``read(i)`` (framed counts), cached unless ``cache_key`` is None."""
    if cache_key is None:

        def getter(index: int) -> Any:
            return to_float_frames(read(index))

    else:
        cache = FrameCache(cache_dir or default_cache_root(), cache_key)

        def getter(index: int) -> Any:
            return to_float_frames(cache.get_or_make(index, lambda: read(index)))

    return FrameDataset(info, split, timesteps, len(targets), getter, targets)


def _guard(path: Path, what: str, fn: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return fn()
    except AutostError:
        raise
    except Exception as exc:  # tonic's readers raise assorted errors on bad files
        raise AutostError(f"{path}: not a valid {what} ({type(exc).__name__}: {exc})") from exc


def _split_indices(
    labels: list[int], split: str, seed: int, test_given: bool, where: str, what: str
) -> np.ndarray:
    """Indices of ``split``; val is carved out of train when the source has a test split.

    An empty split is an error that says why: the per-class counts found under ``where``,
    how the split is made, and how many ``what`` (samples) a class needs to give it one.
    """
    shares = {"train": 0.9, "val": 0.1} if test_given else {"train": 0.8, "val": 0.1, "test": 0.1}
    picked = stratified_split(labels, shares, seed)[split]
    if len(picked) == 0:
        counts = np.unique(np.asarray(labels), return_counts=True)[1]
        low, high = int(counts.min()), int(counts.max())
        found = f"{low}" if low == high else f"{low}-{high}"
        rule = "/".join(f"{round(v * 100)}" for v in shares.values())
        raise AutostError(
            f"{where}: the {split} split is empty: found {found} {what} per class "
            f"({len(counts)} classes); {'/'.join(shares)} is a stratified {rule} split of each "
            f"class's {what} (seed {seed}), so a class needs at least "
            f"{_fewest_for(shares, split)} {what} to give {split} one"
        )
    return picked


def _fewest_for(shares: dict[str, float], split: str) -> int:
    """Fewest samples from which every class size gives ``split`` at least one (the rounding
    of :func:`stratified_split` is not monotone, so this checks every size up to 200)."""
    gives = [len(stratified_split([0] * n, shares, 0)[split]) > 0 for n in range(1, 201)]
    fewest = 200
    while fewest > 1 and gives[fewest - 2]:
        fewest -= 1
    return fewest


# ------------------------------------------------------------------------- digits-events

DIGITS_EVENTS = DatasetInfo(
    "digits-events",
    in_channels=2,
    image_size=8,
    num_classes=10,
    kind="events",
    natural_timesteps=8,
    description="sklearn digits rate-coded into ON (onset) / OFF (offset) address-events",
)


def digits_to_events(
    image: np.ndarray, rng: np.random.Generator, rate: float = 6.0, duration_us: int = 100_000
) -> np.ndarray:
    """Rate-code an image in [0, 1]: each pixel fires Poisson(rate * intensity) ON events in the
    first half of the window (the flash's onset) and as many OFF events in the second half."""
    height, width = image.shape
    parts = []
    for polarity, start in ((1, 0), (0, duration_us // 2)):
        counts = rng.poisson(rate * image.ravel())
        pixels = np.repeat(np.arange(height * width), counts)
        times = start + rng.integers(0, duration_us // 2, size=len(pixels))
        parts.append((pixels % width, pixels // width, times, np.full(len(pixels), polarity)))
    x, y, t, p = (np.concatenate(v) for v in zip(*parts, strict=True))
    order = np.argsort(t, kind="stable")
    return as_tonic_events(x[order], y[order], t[order], p[order])


@register_dataset(DIGITS_EVENTS)
def load_digits_events(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 8,
    image_size: int = 8,
    seed: int = 0,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> FrameDataset:
    """The digits as events (seeded per sample), framed into ``timesteps`` bins by tonic."""
    import torch

    from autost.data.static import DEFAULT_FRACTIONS, _resize, digits_arrays

    check_split(split)
    check_timesteps(timesteps)
    images, labels = digits_arrays()
    idx = stratified_split(labels, DEFAULT_FRACTIONS, seed)[split]
    picked = _resize(torch.from_numpy(images[idx]).unsqueeze(1), image_size)[:, 0].numpy()
    size = (image_size, image_size, 2)

    def read(i: int) -> np.ndarray:
        rng = np.random.default_rng([seed, int(idx[i])])
        return frame_events(digits_to_events(picked[i], rng), size, timesteps)

    info = DatasetInfo(**{**DIGITS_EVENTS.to_dict(), "image_size": image_size})
    key = None
    if cache:
        key = {
            "dataset": "digits-events",
            "split": split,
            "T": timesteps,
            "size": image_size,
            "seed": seed,
            "version": 1,
        }
    return _event_dataset(info, split, timesteps, read, labels[idx].tolist(), key, cache_dir)


# ----------------------------------------------------------------------------------- N-MNIST

NMNIST_SENSOR = (34, 34, 2)
NMNIST = DatasetInfo(
    "nmnist",
    2,
    34,
    10,
    "events",
    natural_timesteps=None,
    description="N-MNIST .bin recordings under root/NMNIST/{Train,Test}/<digit>/",
)


def read_nmnist(path: Path) -> np.ndarray:
    """One N-MNIST recording (40-bit events) through tonic's reader, checked for truncation."""
    from tonic.io import read_mnist_file

    size = path.stat().st_size
    if size % 5:
        raise AutostError(
            f"{path}: truncated N-MNIST file: {size} bytes is not a multiple of 5 (40-bit events)"
        )
    events = _guard(path, "N-MNIST .bin file", lambda: read_mnist_file(str(path), EVENT_DTYPE))
    if len(events) and (events["x"].max() >= 34 or events["y"].max() >= 34):
        raise AutostError(f"{path}: corrupt N-MNIST file: addresses outside the 34x34 sensor")
    return as_tonic_events(events["x"], events["y"], events["t"], events["p"])


@register_dataset(NMNIST)
def load_nmnist(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 10,
    seed: int = 0,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> FrameDataset:
    """N-MNIST from ``root/NMNIST/Train|Test/<digit>/*.bin`` (tonic's layout) or ``root/Train``."""
    check_split(split)
    check_timesteps(timesteps)
    base = _dataset_dir(
        root,
        "NMNIST",
        "Train",
        "nmnist",
        "unzip train.zip and test.zip so that Train/0/*.bin exists",
    )
    folder = base / ("Test" if split == "test" else "Train")
    files, labels = [], []
    for digit in range(10):
        found = sorted((folder / str(digit)).glob("*.bin"))
        files += found
        labels += [digit] * len(found)
    if not files:
        raise AutostError(f"{folder}: no N-MNIST .bin files under <digit>/ folders")
    keep = (
        np.arange(len(files))
        if split == "test"
        else _split_indices(labels, split, seed, True, str(folder), ".bin files")
    )
    files = [files[i] for i in keep]

    def read(i: int) -> np.ndarray:
        return frame_events(read_nmnist(files[i]), NMNIST_SENSOR, timesteps)

    key = _folder_key("nmnist", split, timesteps, files, seed) if cache else None
    return _event_dataset(NMNIST, split, timesteps, read, [labels[i] for i in keep], key, cache_dir)


# ------------------------------------------------------------------------------- DVS Gesture

DVSGESTURE = DatasetInfo(
    "dvsgesture",
    2,
    128,
    11,
    "events",
    natural_timesteps=16,
    description="IBM DVS128 Gesture AEDAT 3.1 recordings with *_labels.csv under root/DvsGesture/",
)


def read_dvs_gesture_recording(path: Path) -> np.ndarray:
    """All polarity events of one DVS128 Gesture AEDAT 3.1 recording (the last two are memoised,
    as every gesture of a recording reads the same file)."""
    stat = path.stat()
    return _read_dvs_gesture(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _read_dvs_gesture(path: Path, size: int, mtime_ns: int) -> np.ndarray:
    """All polarity events of one DVS128 Gesture AEDAT 3.1 recording.

    Uses tonic's AEDAT header and packet readers; the address decoding is that of tonic's
    ``read_dvs_ibm`` (which cannot be called directly in tonic 1.7: it unpacks the header
    reader's three return values into two).
    """
    from tonic.io import get_aer_events_from_file, read_aedat_header_from_file

    with path.open("rb") as handle:
        if not handle.read(64).startswith(b"#!AER-DAT"):
            raise AutostError(f"{path}: not an AEDAT file (expected a '#!AER-DAT' header)")

    def read() -> np.ndarray:
        version, start = read_aedat_header_from_file(str(path))[:2]
        raw = get_aer_events_from_file(str(path), version, start)
        address = raw["address"].astype(np.int64)
        return as_tonic_events(
            (address >> 17) & 0x1FFF, (address >> 2) & 0x1FFF, raw["timeStamp"], (address >> 1) & 1
        )

    events = _guard(path, "AEDAT 3.1 DVS Gesture recording", read)
    if len(events) and (events["x"].max() >= 128 or events["y"].max() >= 128):
        raise AutostError(f"{path}: corrupt AEDAT data: addresses outside the 128x128 sensor")
    return events


def read_gesture_labels(path: Path) -> list[tuple[int, int, int]]:
    """``(class 0..10, start_us, end_us)`` rows of a ``*_labels.csv`` file."""
    rows = []
    try:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for row in reader:
                if row:
                    rows.append((int(row[0]) - 1, int(row[1]), int(row[2])))
    except (OSError, ValueError, IndexError) as exc:
        raise AutostError(f"{path}: expected rows 'class,startTime_usec,endTime_usec'") from exc
    return rows


@register_dataset(DVSGESTURE)
def load_dvsgesture(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 16,
    image_size: int = 128,
    seed: int = 0,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> FrameDataset:
    """DVS128 Gesture from the original release: ``trials_to_train.txt`` / ``trials_to_test.txt``
    list ``userXX_<light>.aedat`` recordings, each cut into gestures by its ``_labels.csv``."""
    check_split(split)
    check_timesteps(timesteps)
    base = _dataset_dir(
        root,
        "DvsGesture",
        "trials_to_train.txt",
        "dvsgesture",
        "extract DvsGesture.tar.gz so that trials_to_train.txt exists",
    )
    listing = require_file(
        base / ("trials_to_test.txt" if split == "test" else "trials_to_train.txt"),
        "DVS Gesture trial list",
        "from the original DvsGesture release",
    )
    samples: list[tuple[Path, int, int, int]] = []
    for line in listing.read_text().split():
        recording = require_file(base / line, "DVS Gesture recording", f"listed in {listing}")
        labels_csv = require_file(
            recording.with_name(recording.stem + "_labels.csv"),
            "DVS Gesture labels",
            "beside its .aedat recording",
        )
        samples += [(recording, c, s, e) for c, s, e in read_gesture_labels(labels_csv)]
    if not samples:
        raise AutostError(f"{listing}: lists no recordings")
    labels = [s[1] for s in samples]
    keep = (
        np.arange(len(samples))
        if split == "test"
        else _split_indices(labels, split, seed, True, str(listing), "gestures")
    )
    samples = [samples[i] for i in keep]

    def read(i: int) -> np.ndarray:
        path, _, start, end = samples[i]
        events = read_dvs_gesture_recording(path)
        part = events[(events["t"] >= start) & (events["t"] < end)]
        ev = as_tonic_events(part["x"], part["y"], part["t"], part["p"])
        return frame_events(ev, (128, 128, 2), timesteps, (image_size, image_size))

    info = DatasetInfo(**{**DVSGESTURE.to_dict(), "image_size": image_size})
    key = None
    if cache:
        key = _folder_key("dvsgesture", split, timesteps, sorted({s[0] for s in samples}), seed)
        key["size"] = image_size
    return _event_dataset(info, split, timesteps, read, [s[1] for s in samples], key, cache_dir)


# ------------------------------------------------------------------------------ CIFAR10-DVS

CIFAR10DVS = DatasetInfo(
    "cifar10dvs",
    2,
    128,
    10,
    "events",
    natural_timesteps=16,
    description="CIFAR10-DVS AEDAT4 recordings under root/CIFAR10DVS/<class>/*.aedat4",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def read_aedat4_events(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Events of the first event stream of an AEDAT4 file (tonic's reader) and its (W, H)."""
    from tonic.io import read_aedat4

    with path.open("rb") as handle:
        if not handle.read(16).startswith(b"#!AER-DAT4.0"):
            raise AutostError(f"{path}: not an AEDAT 4.0 file (expected '#!AER-DAT4.0')")
    raw = _guard(path, "AEDAT 4.0 file", lambda: read_aedat4(str(path)))
    polarity = raw["p"] if "p" in (raw.dtype.names or ()) else raw["on"]
    events = as_tonic_events(raw["x"], raw["y"], raw["t"], polarity)
    width = int(events["x"].max()) + 1 if len(events) else 1
    height = int(events["y"].max()) + 1 if len(events) else 1
    return events, (width, height)


@register_dataset(CIFAR10DVS)
def load_cifar10dvs(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 16,
    image_size: int = 128,
    seed: int = 0,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> FrameDataset:
    """CIFAR10-DVS (tonic's AEDAT4 layout), split 80/10/10 stratified with ``seed``."""
    check_split(split)
    check_timesteps(timesteps)
    base = _dataset_dir(
        root,
        "CIFAR10DVS",
        "airplane",
        "cifar10dvs",
        "one folder per class (airplane, ..., truck) of .aedat4 files",
    )
    files, labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        found = sorted((base / name).glob("*.aedat4"))
        files += found
        labels += [label] * len(found)
    if not files:
        raise AutostError(f"{base}: no .aedat4 files in the class folders")
    keep = _split_indices(labels, split, seed, False, str(base), ".aedat4 files")
    files = [files[i] for i in keep]

    def read(i: int) -> np.ndarray:
        events, _ = read_aedat4_events(files[i])
        events = events[(events["x"] < 128) & (events["y"] < 128)]
        return frame_events(events, (128, 128, 2), timesteps, (image_size, image_size))

    info = DatasetInfo(**{**CIFAR10DVS.to_dict(), "image_size": image_size})
    key = _folder_key("cifar10dvs", split, timesteps, files, seed) if cache else None
    if key is not None:
        key["size"] = image_size
    return _event_dataset(info, split, timesteps, read, [labels[i] for i in keep], key, cache_dir)


# ------------------------------------------------------------------------------------- SHD

SHD = DatasetInfo(
    "shd",
    1,
    28,
    20,
    "events",
    natural_timesteps=100,
    description="Spiking Heidelberg Digits (shd_train.h5, shd_test.h5); the 700 input units "
    "are zero-padded to 784 and laid out as a 28x28 image per time bin",
)


@register_dataset(SHD)
def load_shd(
    root: Path | None = None,
    split: str = "train",
    timesteps: int = 100,
    seed: int = 0,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> FrameDataset:
    """SHD from its HDF5 files (``spikes/times`` in s, ``spikes/units``, ``labels``)."""
    import h5py

    check_split(split)
    check_timesteps(timesteps)
    if root is None:
        raise AutostError("shd needs root=<folder with shd_train.h5 and shd_test.h5>")
    name = "shd_test.h5" if split == "test" else "shd_train.h5"
    path = require_file(Path(root) / name, "SHD file", "the released HDF5 file, unzipped")
    try:
        with h5py.File(path, "r") as handle:
            times = [np.asarray(t) for t in handle["spikes"]["times"]]
            units = [np.asarray(u) for u in handle["spikes"]["units"]]
            all_labels = np.asarray(handle["labels"], dtype=np.int64)
    except (OSError, KeyError) as exc:
        raise AutostError(
            f"{path}: not a valid SHD file (expected spikes/times, spikes/units, labels): {exc}"
        ) from exc
    if not (len(times) == len(units) == len(all_labels)):
        raise AutostError(f"{path}: spikes/times, spikes/units and labels differ in length")
    keep = (
        np.arange(len(all_labels))
        if split == "test"
        else _split_indices(all_labels.tolist(), split, seed, True, str(path), "samples")
    )

    def read(i: int) -> np.ndarray:
        j = int(keep[i])
        t_us = (times[j] * 1e6).astype(np.int64)
        unit = units[j].astype(np.int64)
        if len(unit) and (unit.max() >= 700 or unit.min() < 0):
            raise AutostError(f"{path}: sample {j} has units outside 0..699")
        events = as_tonic_events(unit % 28, unit // 28, t_us, np.zeros(len(unit)))
        return frame_events(events, (28, 28, 1), timesteps)

    key = _folder_key("shd", split, timesteps, [path], seed) if cache else None
    return _event_dataset(SHD, split, timesteps, read, all_labels[keep].tolist(), key, cache_dir)


# ---------------------------------------------------------------------------------- helpers


def _dataset_dir(root: Path | None, folder: str, marker: str, name: str, hint: str) -> Path:
    """``root/folder`` when it holds ``marker``, else ``root`` itself when it does."""
    if root is None:
        raise AutostError(f"{name} needs root=<folder>; no download is attempted ({hint})")
    root = Path(root)
    for base in (root / folder, root):
        if (base / marker).exists():
            return base
    raise AutostError(f"{name}: expected {root / folder / marker} ({hint})")


def _folder_key(
    dataset: str, split: str, timesteps: int, files: list[Path], seed: int
) -> dict[str, Any]:
    import hashlib
    import json

    manifest = hashlib.sha256(
        json.dumps([file_fingerprint(f) for f in files], sort_keys=True).encode()
    ).hexdigest()
    return {
        "dataset": dataset,
        "split": split,
        "T": timesteps,
        "seed": seed,
        "files": manifest,
        "version": 1,
    }
