"""A Ray cluster of processes on this machine (head and worker nodes on 127.0.0.1), for tests
and benchmarks.

Each node is a ``ray start --block`` process in a session of its own, with its own temporary
directory, so killing a node (a fault test) or stopping the cluster touches only the
processes this object started, never another Ray on the machine (``ray stop`` would stop
them all).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

FAST_FAILURE_DETECTION = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "5000",
    "RAY_health_check_failure_threshold": "4",
}
"""GCS settings that declare a killed node dead within about 2 s (Ray's default: ~15 s): a
killed raylet refuses the health check at once, while a busy one has 5 s to answer."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class Node:
    """One ``ray start --block`` process (and, in its session, everything it started)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    command: list[str]
    resources: dict[str, float] = field(default_factory=dict)

    def pids(self) -> set[int]:
        """Processes of this node now: the members of its session (Ray's workers run in
        process groups of their own, inside the session of the ``ray start`` that began it)."""
        found = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.getsid(int(entry)) == self.process.pid:
                        found.add(int(entry))
        return found

    def kill(self) -> None:
        """SIGKILL every process of this node, its raylet first, so that nothing reports the
        deaths: the node vanishes, as a crashed or unplugged machine does."""
        for _ in range(2):  # again for anything started while the first round ran
            pids = self.pids()
            for pid in sorted(pids, key=lambda p: _command(p) != "raylet"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.log.close()


class LocalCluster:
    """A Ray head on 127.0.0.1 (``head_cpus`` CPUs) plus nodes added with ``add_node``.

    ``address`` is the head's ``HOST:PORT`` (``executor.address``). ``stop`` kills every
    node this object started and removes its temporary directory.
    """

    def __init__(self, head_cpus: int = 2, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # short: Ray's unix socket paths must fit in 107 characters
        self.temp_dir = Path(tempfile.mkdtemp(prefix="cnray-", dir="/tmp"))
        self.env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            # drivers connect by address, which never sends a token unless told to: keep the
            # cluster token-free even where ~/.ray/auth_token exists
            "RAY_AUTH_MODE": "disabled",
            **FAST_FAILURE_DETECTION,
            **(env or {}),
        }
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: list[Node] = []
        try:
            self.head = self._start(
                "head", ["--head", f"--port={self.port}", "--include-dashboard=false"], head_cpus
            )
        except BaseException:
            self.stop()
            raise

    def add_nodes(self, *resources: dict[str, float], num_cpus: int = 1) -> list[Node]:
        """Start one worker node per ``resources`` dict (its custom Ray resources), each with
        ``num_cpus`` CPUs, all at once; returns once every one has joined."""
        nodes = []
        for custom in resources:
            args = [f"--address={self.address}"]
            if custom:
                args.append(f"--resources={json.dumps(custom)}")
            nodes.append(self._launch(f"node{len(self.nodes)}", args, num_cpus))
            nodes[-1].resources = dict(custom)
        for node in nodes:
            self._await(node)
        return nodes

    def _start(self, name: str, args: list[str], num_cpus: int) -> Node:
        node = self._launch(name, args, num_cpus)
        self._await(node)
        return node

    def _launch(self, name: str, args: list[str], num_cpus: int) -> Node:
        temp_dir = self.temp_dir / name  # its own socket names: nodes start concurrently
        temp_dir.mkdir()
        log_path = self.temp_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 (closed by Node.kill)
        command = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            *args,
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            f"--temp-dir={temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            "--object-store-memory=100000000",
            "--disable-usage-stats",
            "--block",
        ]
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        node = Node(name, process, log_path, log, command)
        self.nodes.append(node)
        return node

    def _await(self, node: Node) -> None:
        deadline = time.monotonic() + 90
        while b"Ray runtime started" not in node.log_path.read_bytes():
            if node.process.poll() is not None or time.monotonic() > deadline:
                tail = node.log_path.read_text(errors="replace")[-2000:]
                command = " ".join(node.command)
                raise RuntimeError(f"Ray {node.name} did not start ({command}):\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Kill every node this cluster started; remove its temporary directory."""
        for node in reversed(self.nodes):
            node.kill()
        self.nodes = []
        shutil.rmtree(self.temp_dir, ignore_errors=True)
