"""Progress bars for every long command: tqdm on a terminal (or in a notebook), log lines
elsewhere. In a log file or a pipe, tqdm's carriage-return redraws pile up (every refresh,
every postfix change and the close each write the bar again, so the final state appears two
or three times); there the bar writes a line of its own at most every ``interval`` seconds,
and its final state once, when it closes. It lives with the trainer, the lowest layer that
shows progress, so that search and tuning share it."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from tqdm import tqdm as plain_tqdm

#: seconds between two lines of a bar that writes to a log
LOG_INTERVAL = 30.0


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _notebook_bar() -> bool:
    """Whether ``tqdm.auto`` chose the notebook widget (stderr is no terminal there either)."""
    from tqdm.auto import tqdm

    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


class LogBar(plain_tqdm):
    """tqdm for a stream that is not a terminal: lines, at most one per ``interval`` seconds
    (the first at once), the final state only when the bar closes."""

    def __init__(self, *args: Any, interval: float = LOG_INTERVAL, **kwargs: Any) -> None:
        self._interval = interval
        self._written_at = -float("inf")
        self._written: tuple[Any, ...] | None = None
        # leave=False: tqdm's own close neither redraws the bar nor ends its line
        super().__init__(*args, **{**kwargs, "leave": False, "mininterval": interval})

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        return False  # tqdm's in-place redraws and clearing: nothing to redraw in a log

    def refresh(self, nolock: bool = False, lock_args: Any = None) -> bool | None:
        if self.disable:
            return None
        now = time.monotonic()
        finished = self.total is not None and self.n >= self.total
        if finished or now - self._written_at < self._interval:
            return False  # the final state is written by close, once
        self._write_line(final=False)
        self._written_at = now
        return True

    def close(self) -> None:
        if not self.disable and self._written != (self.n, self.postfix):
            self._write_line(final=True)
        super().close()

    def _write_line(self, final: bool) -> None:
        stats = self.format_dict
        if final:
            stats["rate"] = None  # the whole run's average rate
        self.fp.write(self.format_meter(**stats) + "\n")
        self.fp.flush()
        self._written = (self.n, self.postfix)


def progress_bar(
    total: int,
    *,
    desc: str,
    unit: str,
    initial: int = 0,
    enabled: bool = True,
    file: IO[str] | None = None,
    interval: float = LOG_INTERVAL,
) -> Any:
    """A progress bar on ``file`` (stderr): tqdm's on a terminal or in a notebook, a
    :class:`LogBar` elsewhere; ``enabled=False`` shows nothing."""
    stream = file if file is not None else sys.stderr
    options: dict[str, Any] = {"total": total, "initial": initial, "desc": desc, "unit": unit}
    if not enabled:
        return plain_tqdm(disable=True, **options)
    if _is_terminal(stream) or _notebook_bar():
        from tqdm.auto import tqdm

        return tqdm(file=stream, dynamic_ncols=True, **options)
    return LogBar(file=stream, interval=interval, **options)
