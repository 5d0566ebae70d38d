"""Private working folders in the temp dir that a killed process does not leave behind.

A Ray trial or training worker stages its files in a folder of its own under the node's temp
dir. Ray ends such a process without unwinding it (a trial that ASHA stops, a worker whose
experiment ends, a node killed), so a ``finally`` cannot be relied on to remove the folder.
Each folder therefore holds a lock file that its owner keeps ``flock``-ed while it lives; the
kernel drops the lock when the owner dies, however it dies. Every new folder first sweeps
the folders of the same prefix and node whose lock is free: those of dead owners.

- The node's name is in the folder's: a temp dir shared by several machines (whose locks
  may be local to each) is swept only of the folders made on the sweeping machine.
- A folder without a lock file is being made, or its maker died in the microseconds before
  it locked: it is removed only once it is an hour old and holds nothing but the unrenamed
  lock file. Anything else (a link, a folder of another user, a lockless folder with other
  files in it, such as those of autost versions before this one) is never touched.
- Where ``flock`` is missing (Windows) or fails (a file system without locks), the folders
  are plain temp folders, removed only by the owner's ``finally``; a warning says so.
- A forked child that unwinds through the block leaves its parent's folder alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from autost.runtime.faults import kill_point

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: The lock file an owner holds while it lives.
LOCK = ".owner.lock"
_warned: set[str] = set()


def node_prefix(prefix: str) -> str:
    """``prefix`` followed by this machine's name (made safe for a file name) and ``-``."""
    node = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "node"
    return f"{prefix}{node}-"


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; ``False`` if someone holds it (or
    the file system refuses locks)."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def sweep(
    prefix: str, base: Path | None = None, grace: float = 3600.0, wait: float = 0.0
) -> list[Path]:
    """Remove this node's folders ``base/prefix<node>-*`` (``base``: the temp dir) whose
    owner is gone, and lockless ones older than ``grace`` seconds that a maker left before
    it locked them; the folders removed. With ``wait``, sweep again for up to that many
    seconds while folders remain (owners that are still exiting)."""
    if fcntl is None:
        return []
    base = Path(tempfile.gettempdir() if base is None else base)
    pattern = f"{node_prefix(prefix)}*"
    deadline = time.monotonic() + wait
    removed: list[Path] = []
    while True:
        removed += _sweep_once(_own_folders(base, pattern), grace)
        if time.monotonic() >= deadline or not _own_folders(base, pattern):
            return removed
        time.sleep(0.25)


def _own_folders(base: Path, pattern: str) -> list[tuple[Path, os.stat_result]]:
    """The folders (not links) matching ``pattern`` in ``base`` that this user owns."""
    found = []
    for folder in base.glob(pattern):
        try:
            info = folder.lstat()  # never follow a link someone put in a shared temp dir
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            found.append((folder, info))
    return found


def _sweep_once(folders: list[tuple[Path, os.stat_result]], grace: float) -> list[Path]:
    removed = []
    for folder, info in folders:
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


def _lock(folder: Path) -> int:
    """Lock ``folder`` for this process: the lock file's descriptor, or -1 where locks are
    unavailable (then the folder is a plain temp folder)."""
    if fcntl is None:
        return -1
    # Locked under another name, then renamed: a sweep never sees an unlocked LOCK.
    fd = os.open(folder / f"{LOCK}.new", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    if not _try_lock(fd):  # nobody else opens it: the file system has no working flock
        os.close(fd)
        os.unlink(folder / f"{LOCK}.new")
        if str(folder.parent) not in _warned:
            _warned.add(str(folder.parent))
            warnings.warn(
                f"autost: {folder.parent} does not support file locks; working folders there "
                "are removed only when their process exits normally",
                RuntimeWarning,
                stacklevel=3,
            )
        return -1
    kill_point("workdir-locked")
    os.rename(folder / f"{LOCK}.new", folder / LOCK)
    return fd


@contextlib.contextmanager
def private_workdir(prefix: str, base: Path | None = None) -> Iterator[Path]:
    """A new folder ``base/prefix<node>-<random>`` (``base``: the temp dir) owned by this
    process for the block and removed after it; first removes what dead owners left on this
    node (:func:`sweep`)."""
    sweep(prefix, base)
    owner = os.getpid()
    folder = Path(tempfile.mkdtemp(prefix=node_prefix(prefix), dir=base))
    kill_point("workdir-made")
    fd = -1
    try:
        fd = _lock(folder)
        kill_point("workdir-ready")
        yield folder
    finally:
        if os.getpid() == owner:  # not a forked child unwinding through the block
            shutil.rmtree(folder, ignore_errors=True)
            if fd >= 0:
                os.close(fd)
