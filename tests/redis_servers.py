"""Redis servers the tests start themselves: on loopback, on free ports, stopped by pid.

The shared server at 127.0.0.1:6379 is never stopped or flushed; tests that need to
stop a server, a primary with a replica, or a Redis Cluster start their own with the
installed ``redis-server``.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections open and answers nothing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def remove(self) -> None:
        self.resume()
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def command(self, *args: object) -> object:
        """Send one command; its raw reply (no reply callbacks of redis-py)."""
        import redis

        connection: Any = redis.Connection(host="127.0.0.1", port=self.port, socket_timeout=2,  # type: ignore[no-untyped-call]
                                           socket_connect_timeout=2)
        try:
            connection.send_command(*args)
            return connection.read_response()
        finally:
            connection.disconnect()

    def info(self, section: str) -> dict[str, object]:
        with self.client() as client:
            return client.info(section)  # type: ignore[no-any-return]


def wait_until(condition: Callable[[], object], what: str, timeout: float) -> float:
    """Poll ``condition`` until it holds; the seconds it took. Errors count as "not yet"."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(OSError, _redis_error()):
            if condition():
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def in_sync(primary: RedisServer, replicas: int) -> bool:
    """``primary`` has ``replicas`` replicas online (their initial sync done, streaming)."""
    info = primary.info("replication")
    online = [value for key, value in info.items()
              if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"]
    return len(online) == replicas


class ReplicatedServer:
    """A standalone primary with replicas, each a :class:`RedisServer` on loopback."""

    def __init__(self, replicas: int = 1) -> None:
        self.primary = RedisServer()
        self.replicas = [RedisServer() for _ in range(replicas)]

    def start(self, timeout: float = 30.0) -> ReplicatedServer:
        try:
            self.primary.start()
            for replica in self.replicas:
                replica.args = ("--replicaof", "127.0.0.1", str(self.primary.port))
                replica.start()
            wait_until(lambda: in_sync(self.primary, len(self.replicas)), "the replicas", timeout)
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        for server in (self.primary, *self.replicas):
            server.remove()


@dataclass(frozen=True)
class ClusterNodeView:
    """One line of ``CLUSTER NODES``."""

    id: str
    port: int
    primary: bool
    failed: bool
    master: str  # the id of its primary, "-" for a primary
    slots: tuple[tuple[int, int], ...]


class RedisCluster:
    """A real Redis Cluster of ``masters`` primaries, each with ``replicas`` replicas, on
    loopback ports. A failed primary is replaced by its replica after about
    ``node_timeout_ms`` plus an election; a killed node restarted on its port and
    directory rejoins (a former primary as a replica of its successor). With
    ``persistent=True`` every node fsyncs each write to its append-only file, so a
    node restarted within ``node_timeout_ms`` comes back as it was."""

    def __init__(self, masters: int = 3, replicas: int = 0, node_timeout_ms: int = 5000,
                 persistent: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="session-layer-cluster-"))
        self.servers: list[RedisServer] = []
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.persistence = (("--appendonly", "yes", "--appendfsync", "always") if persistent
                            else ("--appendonly", "no"))

    @property
    def port(self) -> int:
        return self.servers[0].port

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def start(self, timeout: float = 60.0) -> RedisCluster:
        try:
            for n in range(self.masters * (1 + self.replicas)):
                node_dir = self.directory / str(n)
                node_dir.mkdir()
                self.servers.append(RedisServer(
                    free_port(also_free=10000), directory=node_dir,
                    args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                          "--cluster-node-timeout", str(self.node_timeout_ms), *self.persistence,
                          # A rejoining replica is synced at once, not after the default 5 s
                          # wait for more replicas to share a diskless transfer.
                          "--repl-diskless-sync-delay", "0"),
                ).start())
            subprocess.run(
                ["redis-cli", "--cluster", "create",
                 *[f"127.0.0.1:{s.port}" for s in self.servers],
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                check=True, capture_output=True, timeout=timeout,
            )
            wait_until(self.healthy, "a healthy test Redis Cluster", timeout)
        except BaseException:
            self.remove()
            raise
        return self

    def server(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def nodes(self, seen_from: RedisServer | None = None) -> list[ClusterNodeView]:
        """``CLUSTER NODES`` as seen by one running node (the first, by default)."""
        asked = seen_from or next(server for server in self.servers if server.running)
        text = asked.command("CLUSTER", "NODES")
        assert isinstance(text, bytes)
        views = []
        for line in text.decode().splitlines():
            fields = line.split()
            flags = fields[2].split(",")
            slots = []
            for entry in fields[8:]:
                if not entry.startswith("["):
                    first, _, last = entry.partition("-")
                    slots.append((int(first), int(last or first)))
            views.append(ClusterNodeView(
                id=fields[0], port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                primary="master" in flags, failed="fail" in flags or "fail?" in flags,
                master=fields[3], slots=tuple(slots),
            ))
        return views

    def primaries(self) -> list[RedisServer]:
        return [self.server(node.port) for node in self.nodes() if node.primary and not node.failed]

    def replica_of(self, primary: RedisServer) -> RedisServer:
        nodes = self.nodes()
        primary_id = next(node.id for node in nodes if node.port == primary.port)
        return next(self.server(node.port) for node in nodes
                    if node.master == primary_id and not node.failed)

    def primary_for(self, key: str) -> RedisServer:
        """The primary serving the hash slot of ``key`` (as the first running node sees it)."""
        slot = int(next(s for s in self.servers if s.running).command("CLUSTER", "KEYSLOT", key))  # type: ignore[call-overload]
        for node in self.nodes():
            if node.primary and any(first <= slot <= last for first, last in node.slots):
                return self.server(node.port)
        raise AssertionError(f"no primary serves slot {slot}")

    def healthy(self) -> bool:
        """Every node runs and says cluster_state:ok, all agree on the roles, and each
        primary has its replicas online and in sync."""
        if not all(server.running and self._ok(server) for server in self.servers):
            return False
        views = [sorted((n.port, n.primary, n.failed) for n in self.nodes(s)) for s in self.servers]
        if any(view != views[0] for view in views):
            return False
        primaries = [node for node in self.nodes() if node.primary]
        return len(primaries) == self.masters and all(
            in_sync(self.server(node.port), self.replicas) for node in primaries
        )

    @staticmethod
    def _ok(server: RedisServer) -> bool:
        return b"cluster_state:ok" in server.command("CLUSTER", "INFO")  # type: ignore[operator]

    def remove(self) -> None:
        for server in self.servers:
            server.resume()
            server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


_cluster: RedisCluster | None = None
_replicated: ReplicatedServer | None = None


def shared_cluster() -> RedisCluster:
    """The test run's cluster (3 primaries with a replica each), started on first use
    and removed by :func:`stop_cluster`. Tests never stop or pause its nodes."""
    global _cluster
    if _cluster is None:
        _cluster = RedisCluster(replicas=1).start()
    return _cluster


def shared_replicated_server() -> ReplicatedServer:
    """The test run's standalone primary with one replica, started on first use and
    removed by :func:`stop_cluster`. Tests never stop or pause it."""
    global _replicated
    if _replicated is None:
        _replicated = ReplicatedServer().start()
    return _replicated


def stop_cluster() -> None:
    """Remove the servers :func:`shared_cluster` and :func:`shared_replicated_server` started."""
    global _cluster, _replicated
    if _cluster is not None:
        _cluster.remove()
        _cluster = None
    if _replicated is not None:
        _replicated.remove()
        _replicated = None
