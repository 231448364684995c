"""Redis servers the tests start themselves: on loopback, on free ports, stopped by pid.

The shared server at 127.0.0.1:6379 is never stopped or flushed; tests that need to
stop a server, or a Redis Cluster, start their own with the installed ``redis-server``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

SHARED_HOST, SHARED_PORT = "127.0.0.1", 6379


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(also_free: int = 0) -> int:
    """A free loopback port; with ``also_free=N``, port+N is free too (cluster bus)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if also_free == 0:
            return port
        if port + also_free < 65536:
            with socket.socket() as probe, contextlib.suppress(OSError):
                probe.bind(("127.0.0.1", port + also_free))
                return port
    raise RuntimeError("no free port pair found")


def _redis_error() -> type[Exception]:
    import redis

    return redis.RedisError


class RedisServer:
    """One ``redis-server`` process in its own temporary directory."""

    def __init__(self, port: int | None = None, *, directory: Path | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.directory = directory or Path(tempfile.mkdtemp(prefix="session-layer-redis-"))
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self, timeout: float = 10.0) -> RedisServer:
        log = open(self.directory / f"redis-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.directory), "--save", "", "--daemonize", "no", *self.args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited: see {self.directory}")
            with contextlib.suppress(OSError, _redis_error()), self.client() as client:
                if client.ping():
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def client(self) -> redis.Redis:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2,
                           socket_connect_timeout=2)

    def stop(self) -> None:
        """Kill the server (SIGKILL: no shutdown save) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisCluster:
    """A real Redis Cluster of ``masters`` primaries (no replicas) on loopback ports."""

    def __init__(self, masters: int = 3) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="session-layer-cluster-"))
        self.servers: list[RedisServer] = []
        self.masters = masters

    @property
    def port(self) -> int:
        return self.servers[0].port

    def start(self, timeout: float = 30.0) -> RedisCluster:
        try:
            for n in range(self.masters):
                node_dir = self.directory / str(n)
                node_dir.mkdir()
                self.servers.append(RedisServer(
                    free_port(also_free=10000), directory=node_dir,
                    args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                          "--cluster-node-timeout", "5000", "--appendonly", "no"),
                ).start())
            subprocess.run(
                ["redis-cli", "--cluster", "create",
                 *[f"127.0.0.1:{s.port}" for s in self.servers],
                 "--cluster-replicas", "0", "--cluster-yes"],
                check=True, capture_output=True, timeout=timeout,
            )
            deadline = time.monotonic() + timeout
            while not all(self._ok(s) for s in self.servers):
                if time.monotonic() > deadline:
                    raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        except BaseException:
            self.remove()
            raise
        return self

    @staticmethod
    def _ok(server: RedisServer) -> bool:
        with server.client() as client:
            return client.cluster("INFO").get("cluster_state") == "ok"  # type: ignore[no-any-return]

    def remove(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


_cluster: RedisCluster | None = None


def shared_cluster() -> RedisCluster:
    """The test run's cluster, started on first use and removed by :func:`stop_cluster`."""
    global _cluster
    if _cluster is None:
        _cluster = RedisCluster().start()
    return _cluster


def stop_cluster() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.remove()
        _cluster = None
