"""Writers of small files in the real on-disk formats the dataset loaders read (test helpers)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """An IDX file (uint8 payload), gzip-compressed when ``compress``."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_nmnist(path: Path, x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray) -> None:
    """N-MNIST's 40-bit events: x, y, then polarity (1 bit) and a 23-bit timestamp in us."""
    raw = np.zeros((len(t), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p.astype(np.uint32) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())


def write_aedat31(path: Path, x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray) -> None:
    """An AEDAT 3.1 file with one polarity-event packet (as the DVS128 Gesture release)."""
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    n = len(t)
    packet = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, n, n, n)
    address = (
        (x.astype(np.uint32) << 17) | (y.astype(np.uint32) << 2) | (p.astype(np.uint32) << 1) | 1
    )
    events = np.empty(n, dtype=[("address", "<u4"), ("timeStamp", "<u4")])
    events["address"], events["timeStamp"] = address, t
    path.write_bytes(header + packet + events.tobytes())


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int], key: str) -> None:
    """A CIFAR python batch: a pickled dict with b'data' [N, 3072] uint8 and the labels."""
    batch = {b"data": images.reshape(len(images), -1).astype(np.uint8), key.encode(): labels}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(batch, handle, protocol=2)
