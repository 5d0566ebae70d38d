"""Private working folders: what a killed owner leaves is swept, a live owner's never is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import ROOT, cli_env

from autost.runtime import workdir
from autost.runtime.faults import KILL_ENV
from autost.runtime.workdir import LOCK, node_prefix, private_workdir, sweep

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only")

PREFIX = "autost-test-"
# an owner that makes its folder, writes a file in it and waits until it is killed
OWNER = (
    "import sys, time; from pathlib import Path\n"
    "from autost.runtime.workdir import private_workdir\n"
    "with private_workdir(sys.argv[1], Path(sys.argv[2])) as f:\n"
    "    (f / 'checkpoint.pt').write_bytes(b'x' * 1000); print(f, flush=True); time.sleep(120)\n"
)


def _owner(base: Path, kill_at: str | None = None) -> subprocess.Popen[str]:
    env = cli_env()
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.Popen(
        [sys.executable, "-c", OWNER, PREFIX, str(base)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _folders(base: Path) -> list[Path]:
    return sorted(base.glob(f"{PREFIX}*"))


def test_a_live_owner_keeps_its_folder_and_a_killed_ones_is_swept(tmp_path: Path) -> None:
    owner = _owner(tmp_path)
    try:
        assert owner.stdout is not None
        folder = Path(owner.stdout.readline().strip())
        assert (folder / LOCK).is_file() and (folder / "checkpoint.pt").is_file()
        assert sweep(PREFIX, tmp_path, grace=0) == []  # alive: untouched
        with private_workdir(PREFIX, tmp_path) as mine:  # a new folder sweeps first, too
            assert _folders(tmp_path) == sorted([folder, mine])
    finally:
        owner.kill()
        owner.wait()
    assert _folders(tmp_path) == [folder]  # mine went with its block; the killed one stays...
    with private_workdir(PREFIX, tmp_path) as mine:  # ...until the next folder is made
        assert _folders(tmp_path) == [mine]
    assert _folders(tmp_path) == []


@pytest.mark.parametrize("point", ["workdir-made", "workdir-locked", "workdir-ready"])
def test_an_owner_killed_while_making_its_folder_leaves_nothing_for_long(
    tmp_path: Path, point: str
) -> None:
    owner = _owner(tmp_path, kill_at=point)
    assert owner.wait(timeout=60) == -9
    (left,) = _folders(tmp_path)
    if point == "workdir-ready":  # locked: swept at once
        assert sweep(PREFIX, tmp_path) == [left]
        return
    # killed before its lock existed under its final name: it may still be in the making,
    # so it is kept for the grace period, then removed
    assert sweep(PREFIX, tmp_path) == [] and left.is_dir()
    old = time.time() - 7200
    os.utime(left, (old, old))
    assert sweep(PREFIX, tmp_path) == [left]
    assert _folders(tmp_path) == []


def test_a_normal_exit_removes_the_folder_even_on_an_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), private_workdir(PREFIX, tmp_path) as folder:
        (folder / "run").mkdir()
        raise RuntimeError("the trial failed")
    assert not folder.exists()


def test_what_is_not_a_dead_owners_folder_is_never_touched(tmp_path: Path) -> None:
    ours = node_prefix(PREFIX)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / LOCK).write_text("")  # unlocked, but reached only through a link
    (target / "keep").write_text("data")
    (tmp_path / f"{ours}link").symlink_to(target)
    lockless = tmp_path / f"{ours}other"  # no lock and files in it: not made by us
    (lockless / "run").mkdir(parents=True)
    old = time.time() - 7200
    os.utime(lockless, (old, old))
    (tmp_path / f"{ours}file").write_text("a file, not a folder")
    other_node = tmp_path / f"{PREFIX}another-machine-abc"  # its lock may be local to it
    other_node.mkdir()
    (other_node / LOCK).write_text("")
    assert sweep(PREFIX, tmp_path) == []
    assert (target / "keep").read_text() == "data" and (lockless / "run").is_dir()
    assert (tmp_path / f"{ours}file").is_file() and (other_node / LOCK).is_file()


def test_a_file_system_without_locks_gives_plain_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr(workdir.fcntl, "flock", no_locks)
    monkeypatch.setattr(workdir, "_warned", set())
    warned = pytest.warns(RuntimeWarning, match="does not support file locks")
    with warned, private_workdir(PREFIX, tmp_path) as folder:
        assert folder.is_dir() and not any(folder.iterdir())
    assert not folder.exists()


FORK = (
    "import os, sys; from pathlib import Path; from autost.runtime.workdir import private_workdir\n"
    "with private_workdir(sys.argv[1], Path(sys.argv[2])) as f:\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        sys.exit(0)  # the child unwinds through the block\n"
    "    os.waitpid(pid, 0)\n"
    "    print(f.is_dir(), flush=True)\n"
)


def test_a_forked_child_unwinding_leaves_the_parents_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FORK, PREFIX, str(tmp_path)],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"  # still there after the child exited
    assert _folders(tmp_path) == []  # and removed by its owner
