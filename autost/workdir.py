"""Private working folders in the temp dir that a killed process does not leave behind.

A Ray trial or training worker stages its files in a folder of its own under the node's temp
dir. Ray ends such a process without unwinding it (a trial that ASHA stops, a worker whose
experiment ends, a node killed), so a ``finally`` cannot be relied on to remove the folder.
Each folder therefore holds a lock file that its owner keeps ``flock``-ed while it lives; the
kernel drops the lock when the owner dies, however it dies. Every new folder first sweeps
the folders of the same prefix whose lock is free: those of dead owners. A folder without
a lock file is being made, or its maker died in the microseconds before it locked: it is
removed only once it is an hour old and holds nothing but the unrenamed lock file. Anything
else (a link, a folder of another user, a lockless folder with other files in it) is never
touched. Where ``fcntl`` is missing (Windows) the folders are plain temp folders, removed
only by a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from autost.faults import kill_point

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: The lock file an owner holds while it lives.
LOCK = ".owner.lock"


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; ``False`` if someone holds it."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def sweep(prefix: str, base: Path | None = None, grace: float = 3600.0) -> list[Path]:
    """Remove the folders ``base/prefix*`` (``base``: the temp dir) whose owner is gone, and
    lockless ones older than ``grace`` seconds that a maker left before it locked them; the
    folders removed."""
    if fcntl is None:
        return []
    base = Path(tempfile.gettempdir() if base is None else base)
    removed = []
    for folder in base.glob(f"{prefix}*"):
        try:
            info = folder.lstat()  # never follow a link someone put in a shared temp dir
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        try:
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if _died_unlocked(folder, info.st_mtime, grace):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            continue
        except OSError:
            continue
        try:
            if _try_lock(fd):  # its owner is dead: the kernel released the lock
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        finally:
            os.close(fd)
    return removed


def _died_unlocked(folder: Path, mtime: float, grace: float) -> bool:
    """Whether ``folder`` is one whose maker died between making and locking it."""
    if time.time() - mtime < grace:
        return False
    try:
        return {p.name for p in folder.iterdir()} <= {f"{LOCK}.new"}
    except OSError:
        return False


@contextlib.contextmanager
def private_workdir(prefix: str, base: Path | None = None) -> Iterator[Path]:
    """A new folder ``base/prefix<random>`` (``base``: the temp dir) owned by this process for
    the block and removed after it; first removes what dead owners left (:func:`sweep`)."""
    sweep(prefix, base)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    kill_point("workdir-made")
    fd = -1
    try:
        if fcntl is not None:
            # Locked under another name, then renamed: a sweep never sees an unlocked LOCK.
            fd = os.open(folder / f"{LOCK}.new", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            kill_point("workdir-locked")
            os.rename(folder / f"{LOCK}.new", folder / LOCK)
        kill_point("workdir-ready")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if fd >= 0:
            os.close(fd)
