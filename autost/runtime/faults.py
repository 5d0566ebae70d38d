"""Named kill points for crash tests: ``AUTOST_KILL_AT=NAME[@N]`` kills this process with
SIGKILL the N-th time (default: the first) :func:`kill_point` is reached with that name.

A crash test sets the variable on a subprocess to stop it exactly before, during or right after
a record is written, then checks that a resume loses and repeats nothing. Unset (always, outside
those tests), :func:`kill_point` does nothing but read one environment variable.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "AUTOST_KILL_AT"
_reached: dict[str, int] = {}


def kill_point(name: str) -> None:
    """SIGKILL this process here if ``AUTOST_KILL_AT`` names this point (and its count)."""
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    point, _, count = wanted.partition("@")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
