"""A real Ray cluster on loopback for tests: head and worker nodes, own temp dir and ports.

Each node is a ``ray start --block`` process; stopping a node terminates that process (Ray then
stops the node's GCS, raylet, agents and workers) and kills whatever is left of the process tree
recorded while it ran. Only processes this helper started are ever signalled — never ``ray stop``,
which matches every Ray process on the machine by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ray_env() -> dict[str, str]:
    return {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "AUTOST_LIF_BACKEND": "eager",
    }


class Node:
    """One ``ray start --block`` process and the process tree it spawned."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._log_handle = log.open("wb")
        self.proc = subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", *args],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            env=ray_env(),
            start_new_session=True,
        )
        self.tree: set[psutil.Process] = set()

    def remember_tree(self) -> None:
        """Record the node's current processes (workers come and go)."""
        try:
            root = psutil.Process(self.proc.pid)
            self.tree |= {root, *root.children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def stop(self, graceful: bool = True, timeout: float = 30) -> None:
        """Stop the node: SIGTERM to ``ray start`` (or SIGKILL to the whole tree), then reap."""
        self.remember_tree()
        if graceful and self.proc.poll() is None:
            self.proc.terminate()
        else:
            for proc in self.tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
        _, alive = psutil.wait_procs(list(self.tree), timeout=timeout)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log_handle.close()


class LocalRayCluster:
    """A head node (and optional worker nodes) on 127.0.0.1 under a private temp dir."""

    def __init__(self, head_cpus: int = 1) -> None:
        # short path: Ray's unix sockets live under the temp dir (107-byte limit)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[Node] = []
        self.head = self._start(
            [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--num-cpus={head_cpus}",
                *self._common_args(),
            ],
            "head",
        )
        self.wait_for_nodes(1)

    def _common_args(self) -> list[str]:
        return [
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.temp_dir}",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
        ]

    def _start(self, args: list[str], name: str) -> Node:
        node = Node(args, self.temp_dir / f"{name}.log")
        self.nodes.append(node)
        return node

    def add_worker(self, num_cpus: int = 1) -> Node:
        """Start a worker node joining the head; returns it once the cluster sees it."""
        node = self._start(
            [f"--address={self.address}", f"--num-cpus={num_cpus}", *self._common_args()],
            f"worker{len(self.nodes)}",
        )
        self.wait_for_nodes(len(self.nodes))
        return node

    def alive_nodes(self) -> int:
        """Nodes the head reports alive (``ray status`` is avoided: it needs the dashboard)."""
        code = (
            f"import ray; ray.init(address={self.address!r}, include_dashboard=False,"
            " log_to_driver=False);"
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=ray_env(), timeout=60
        )
        lines = result.stdout.strip().splitlines()
        return int(lines[-1]) if result.returncode == 0 and lines else 0

    def wait_for_nodes(self, count: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc.poll() is not None:
                    raise RuntimeError(f"ray node exited: {node.log.read_text()[-2000:]}")
                node.remember_tree()
            if self.alive_nodes() >= count:
                return
            time.sleep(1)
        raise TimeoutError(f"Ray cluster at {self.address} did not reach {count} nodes")

    def our_processes(self) -> list[psutil.Process]:
        """Live processes of this cluster: the recorded trees plus anything naming its temp dir."""
        found: set[psutil.Process] = set()
        for node in self.nodes:
            node.remember_tree()
            found |= {p for p in node.tree if p.is_running()}
        marker = str(self.temp_dir)
        for proc in psutil.process_iter(["cmdline"]):
            if any(marker in arg for arg in proc.info["cmdline"] or ()):
                found.add(proc)
        return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    def stop(self) -> None:
        """Stop every node (workers first), then remove the temp dir."""
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
