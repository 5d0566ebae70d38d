"""Run files are written atomically with the mode a plain write gives (shared storage)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from autost.io import atomic_write_text
from autost.training import checkpoint


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_follow_the_umask_not_mkstemp(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}\n")
        checkpoint.save(tmp_path / "c.pt", {"w": torch.zeros(2)})
        plain = tmp_path / "plain"
        plain.write_text("x")
    finally:
        os.umask(previous)
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o666 & ~umask
    for name in ("a.json", "c.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
    assert (tmp_path / "a.json").read_text() == "{}\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
