"""Ray for every layer that uses it: join a cluster or start a local instance (and stop only
what was started), keep Ray's own log lines in the run folder, and stop the local Ray that a
killed run left behind."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autost.errors import AutostError
from autost.io import atomic_write_text


def check_ray_address(address: str, timeout: float = 10.0) -> None:
    """Fail within ``timeout`` seconds, with one clear line, when nothing listens at ``address``.

    ``ray.init`` itself retries an unreachable GCS for minutes; a TCP connect does not.
    ``auto`` and ``local`` are passed through to Ray.
    """
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise AutostError(f"bad Ray address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise AutostError(f"cannot reach the Ray cluster at {address}: {reason}") from exc


def init_ray(address: str | None) -> bool:
    """Join the cluster at ``address`` (checked first, so an unreachable one fails fast) or,
    without one, start a local Ray; ``True`` when this call started a local instance, which
    the caller then shuts down. Nothing happens when Ray is already initialised."""
    import ray

    if ray.is_initialized():
        return False
    if address is not None:
        check_ray_address(address)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # INFO lines only into a run's ray.log (see ray_log), never onto the terminal
    to_file = any(isinstance(h, logging.FileHandler) for h in logging.getLogger("ray").handlers)
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.INFO if to_file else logging.WARNING,
        )
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ... by version
        raise AutostError(f"cannot start or reach Ray ({address or 'local'}): {exc}") from exc
    return address is None


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """:func:`init_ray` for the block; a local instance started here is stopped after it."""
    import ray

    started = init_ray(address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@contextmanager
def ray_log(path: Path, echo: bool) -> Iterator[None]:
    """Ray's Python log lines (``ray`` and ``ray.*`` loggers) go to ``path`` for the block,
    and to the terminal too only with ``echo``."""
    import ray  # noqa: F401  (Ray configures its loggers on import; take them over after)

    logger = logging.getLogger("ray")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    output = os.environ.get("RAY_AIR_NEW_OUTPUT")
    if not echo:
        logger.handlers = []
        logger.propagate = False
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter, silent at verbose=0
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
        if output is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = output


LOCAL_RAY = "ray-local.json"  # the processes of the local Ray a run started, while it runs


def _proc_start(pid: int) -> int | None:
    """The start time (clock ticks after boot) of process ``pid``; with the pid, an identity
    that a reused pid does not share. ``None`` when it is gone or /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextmanager
def local_ray_record(out: Path, started_here: bool) -> Iterator[None]:
    """While a local Ray this process started runs, ``out/ray-local.json`` lists its processes
    (pid and start time), so that a resume after ``kill -9`` can stop what was left."""
    path = out / LOCAL_RAY
    if started_here and Path("/proc").is_dir():
        found = [(p, _proc_start(p)) for p in _descendants(os.getpid())]
        atomic_write_text(path, json.dumps({"processes": [f for f in found if f[1]]}) + "\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def stop_left_ray(out: Path) -> int:
    """Stop the local Ray processes a killed run in ``out`` left running; how many.

    The file is untrusted: a process is stopped only if its pid and start time both match
    and its command line is Ray's; anything malformed is ignored.
    """
    import signal

    path = out / LOCAL_RAY
    try:
        entries = json.loads(path.read_text())["processes"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    stopped = 0
    for entry in entries if isinstance(entries, list) else []:
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in entry)
        ):
            continue
        pid, start = entry
        if pid <= 1 or pid == os.getpid() or _proc_start(pid) != start:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"ray" not in command.lower():
                continue
            os.kill(pid, signal.SIGKILL)
            stopped += 1
        except OSError:
            continue
    path.unlink(missing_ok=True)
    return stopped
