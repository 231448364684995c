"""The clients and connections :class:`~sessions.redis.RedisSession` talks through.

A store opened from a URL or settings makes its own, when first needed
(:class:`RedisClients`): one sync client, one async client per event loop (see
:mod:`sessions._loops`), and on a standalone server the connections of its sync hot
path (:class:`DirectConnections`). None of them retries a command: a write that failed
must not be sent twice behind the caller's back. A forked child drops them all,
unclosed, and makes its own.

An idle connection the server has closed (a restart, an idle timeout) is replaced
before a command is sent on it, never after: once sent, a command that fails may have
run. The sync connections poll their socket before use. redis.asyncio judges an idle
connection only by what its event loop has read so far, so the async connections the
store ask the socket itself (:class:`_IdleCheck`): on a standalone server when the
pool hands one out, on a cluster when a node takes one.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from . import _fork
from ._errors import ConfigurationError, StoreClosedError
from ._io import readable_now
from ._loops import PerLoop

__all__ = ["DRIVER_ERRORS", "ConnectionSettings", "DirectConnections", "RedisClients"]

#: What redis-py raises when a server, a cluster or a connection fails.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)


# -- async connections checked before use ------------------------------------------------------


class _IdleCheck:
    """Asks the socket of an idle connection whether the server has closed it.

    redis.asyncio notices a closed connection only once its event loop has read the
    EOF: when the loop has not run since (a loop driven by ``run_until_complete`` from
    call to call), the next command would be sent on a dead connection. Polling the
    socket (any descriptor number) sees the EOF, and the connection is replaced first.
    """

    _writer: asyncio.StreamWriter | None

    def _socket_has_data(self) -> bool:
        writer = self._writer
        if writer is None:
            return False
        sock = writer.transport.get_extra_info("socket")
        return sock is not None and readable_now(sock.fileno())


class _PoolChecked(_IdleCheck):
    """On a standalone server: the pool's check of an idle connection it hands out."""

    async def can_read(self) -> bool:
        return await super().can_read() or self._socket_has_data()  # type: ignore[misc]

    async def can_read_destructive(self) -> bool:  # redis-py before 8 asks this one
        return await super().can_read_destructive() or self._socket_has_data()  # type: ignore[misc]


class _NodeChecked(_IdleCheck):
    """On a cluster: a node asks ``should_reconnect()`` of the connection it takes, and
    reconnects it if so, before sending on it (redis-py 7.2 and later). It asks again
    once the replies are read, when data or EOF waiting also means a dead connection."""

    def should_reconnect(self) -> bool:
        return super().should_reconnect() or self._socket_has_data()  # type: ignore[misc]


class _CheckedConnection(_PoolChecked, redis.asyncio.Connection):
    pass


class _CheckedSSLConnection(_PoolChecked, redis.asyncio.SSLConnection):
    pass


class _CheckedNodeConnection(_NodeChecked, redis.asyncio.Connection):
    pass


class _CheckedNodeSSLConnection(_NodeChecked, redis.asyncio.SSLConnection):
    pass


def _check_node_connections(client: redis.asyncio.cluster.RedisCluster, ssl: bool) -> None:
    """Make the nodes of a new async cluster client open checked connections.

    The async ``RedisCluster`` takes no connection class: it is set in the settings the
    client makes its nodes from, and on the startup nodes made already, before any of
    them has opened a connection."""
    checked = _CheckedNodeSSLConnection if ssl else _CheckedNodeConnection
    client.connection_kwargs["connection_class"] = checked
    client.nodes_manager.connection_kwargs["connection_class"] = checked
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = checked


# -- making clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how a store's own clients connect."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None = field(repr=False)
    ssl: bool
    cluster: bool
    socket_timeout: float

    def _kwargs(self, retry: Any) -> dict[str, Any]:
        return {
            "host": self.host, "port": self.port, "username": self.username,
            "password": self.password, "ssl": self.ssl,
            "socket_timeout": self.socket_timeout, "socket_connect_timeout": self.socket_timeout,
            # No retries (see the module docstring). RESP2: the replies read here need
            # nothing from RESP3.
            "retry": retry, "protocol": 2,
        }

    def sync_client(self) -> Any:
        kwargs = self._kwargs(Retry(NoBackoff(), 0))
        if self.cluster:
            return redis.cluster.RedisCluster(**kwargs)
        return redis.Redis(db=self.db, **kwargs)

    def async_client(self) -> Any:
        kwargs = self._kwargs(redis.asyncio.retry.Retry(NoBackoff(), 0))
        if self.cluster:
            client = redis.asyncio.cluster.RedisCluster(**kwargs)
            _check_node_connections(client, self.ssl)
            return client
        connection_class = _CheckedSSLConnection if kwargs.pop("ssl") else _CheckedConnection
        own = redis.asyncio.ConnectionPool(connection_class=connection_class, db=self.db, **kwargs)
        return redis.asyncio.Redis.from_pool(own)


def _copy_async_client(given: Any) -> Any:
    """A client like a given one, for another event loop or a forked child."""
    if isinstance(given, redis.asyncio.cluster.RedisCluster):
        raise ConfigurationError(
            "the given async RedisCluster client serves the first event loop that used it; "
            "for more event loops or forked processes, give the store a URL or settings so "
            "that it makes clients of its own"
        )
    pool = given.connection_pool
    return redis.asyncio.Redis.from_pool(
        redis.asyncio.ConnectionPool(connection_class=pool.connection_class, **pool.connection_kwargs)
    )


async def _aclose_client(client: Any) -> None:
    await client.aclose()


async def _prepare_client(client: Any) -> None:
    # A cluster client learns the topology once, before any concurrent use: redis-py's
    # async cluster client may drop connections that concurrent first calls are opening
    # while it refreshes its node table.
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.initialize()


class RedisClients:
    """The clients of one store: its own (made on first use from ``settings``, closed
    by :meth:`close`), or those it was given (never closed here).

    With only a sync client given, :attr:`native_async` is false (async calls run it in
    a worker thread); with only an async client given, :meth:`sync` raises
    :class:`ConfigurationError`. A given async client serves the first event loop that
    uses it; other loops, and forked children, get a copy made with its pool's settings.
    ``check`` runs before anything new is made (a closed store refuses).
    """

    def __init__(self, settings: ConnectionSettings, client: Any, async_client: Any,
                 check: Callable[[], None]) -> None:
        self.settings = settings
        self.owned = client is None and async_client is None
        self._client: Any = client
        self._async_given: Any = async_client
        #: The store's own connections of the sync hot path, once made (:meth:`connections`).
        self.direct: DirectConnections | None = None
        self._keeps_direct = self.owned and not settings.cluster
        self._check = check
        self._lock = threading.Lock()
        self._async_clients: PerLoop[Any] = PerLoop(
            settings.async_client, _aclose_client, given=async_client, copy=_copy_async_client,
            check=check, prepare=_prepare_client,
        )

    @property
    def native_async(self) -> bool:
        """Whether async calls have an async client (else they run :meth:`sync` in a thread)."""
        return self.owned or self._async_given is not None

    def sync(self) -> Any:
        """The sync client."""
        client = self._client
        if client is not None:
            return client
        if not self.owned:
            raise ConfigurationError(
                "this RedisSession was given only an async client; pass client= for sync calls"
            )
        with self._lock:
            self._check()
            if self._client is None:
                self._client = self.settings.sync_client()
            return self._client

    def connections(self) -> DirectConnections | None:
        """The store's own connections (made on first use), or None if the store does
        not keep its own: a cluster, or clients it was given."""
        client = self.sync()
        if not self._keeps_direct:
            return None
        with self._lock:
            self._check()
            if self.direct is None:
                pool = client.connection_pool
                self.direct = DirectConnections(pool.connection_class, pool.connection_kwargs)
            return self.direct

    async def for_loop(self) -> Any:
        """The running event loop's async client."""
        return await self._async_clients.get()

    def close(self) -> None:
        with self._lock:
            client = self._client if self.owned else None
            if self.owned:
                self._client = None
            direct, self.direct = self.direct, None
        if client is not None:
            client.close()
        if direct is not None:
            direct.close()
        self._async_clients.close()

    async def aclose(self) -> None:
        await self._async_clients.aclose()
        self.close()

    def after_fork(self) -> None:
        """In a forked child: drop the parent's clients and connections, unclosed."""
        self._lock = threading.Lock()
        if self.owned:  # a given sync client's pools check the pid themselves
            _fork.abandon(self._client, self.direct)
            self._client = self.direct = None
        self._async_clients.forget()


# -- the sync hot path's own connections --------------------------------------------------------------


class DirectConnections:
    """The idle connections of a store's sync hot path, one in use per thread at a time.

    Each call takes an idle connection (or makes one with the client's own connection
    class and settings), checks that it is still usable, sends the command and reads
    its reply, and puts it back. A connection that has data or EOF waiting while idle
    (a server restart, an idle timeout) is reconnected before the command is sent, as
    redis-py's pool does; one whose reply may still be pending after an error is closed
    and dropped, so a later call never reads another command's reply. Once closed, it
    refuses commands and closes connections given back.

    They need no reply callbacks and no retries, and skipping redis-py's generic command
    and pool layers saves about 8 µs of an append.
    """

    def __init__(self, connection_class: Any, connection_kwargs: dict[str, Any]) -> None:
        self._make = functools.partial(connection_class, **connection_kwargs)
        self._idle: collections.deque[Any] = collections.deque()
        self._closed = False

    def run(self, command: tuple[Any, ...]) -> Any:
        """Send one command and read its reply; an error reply is raised."""
        reply = self.pipeline((command,))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def pipeline(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write on one connection and read their replies in
        order; an error reply takes its command's place (it was read whole, so the
        connection stays clean)."""
        if self._closed:
            raise StoreClosedError("RedisSession is closed; open a new store")
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._make()
        replies: list[Any] = []
        try:
            connection.connect()  # a no-op while connected
            try:
                stale = connection.can_read()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                stale = True
            if stale:
                connection.disconnect()
                connection.connect()
            if len(commands) == 1:
                connection.send_command(*commands[0])
            else:
                connection.send_packed_command(connection.pack_commands(commands))
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ResponseError as error:
                    replies.append(error)
        except BaseException:
            connection.disconnect()
            raise
        self._put_back(connection)
        return replies

    def _put_back(self, connection: Any) -> None:
        self._idle.append(connection)
        if self._closed:  # closed during the command
            self.close()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:
                return
            connection.disconnect()
