"""Sessions on a Redis server or a Redis Cluster, through redis-py (extra ``redis``).

Each session is two keys in one Redis Cluster hash slot, a LIST of records and a HASH
of metadata, changed together by Lua scripts (see :mod:`sessions._redis_keys`). The
message count is the list's length, so it can never disagree with the messages.

* ``append`` is one round trip (``EVALSHA``): ``RPUSH`` of the batch, the metadata and
  the expiry, atomically. Its cost does not depend on the history length.
* ``get(limit=N)`` is ``LRANGE key -N -1``: O(N). ``pop``, ``replace``, ``clear`` are
  single scripts, hence atomic; ``delete`` removes both keys with one ``UNLINK``.
* ``list_sessions`` streams ``SCAN MATCH <prefix>{*}:meta`` (on a cluster, over every primary),
  never ``KEYS``. ``SCAN`` yields every session that exists for the whole iteration;
  as Redis documents for ``SCAN``, an id may come twice if the server shrinks its key
  table during the iteration, and sessions created or deleted meanwhile may or may not
  appear. Nothing is held in memory but the current page.
* TTL (``ttl=`` seconds): every write by a store with a TTL sets the same expiry on all
  of the session's keys, so the whole session expires at once. Reads do not refresh it.
  A store without a TTL never sets or removes one: a session that already has a TTL
  keeps its deadline (a re-created message list gets the same deadline as its metadata).
* Durability is the server's: an acknowledged append is in the server's memory, and
  survives a server restart only as far as its persistence (AOF ``appendfsync``,
  RDB snapshots) and replication are configured to keep it.
* Replicated acknowledgement (``min_replicas=N``): every write is followed, in the same
  pipeline on the same connection, by ``WAIT N timeout``, so it costs one round trip
  still and is acknowledged only once N replicas have confirmed it. On a cluster the
  pair goes to the primary of the session's slot, with MOVED, ASK and TRYAGAIN replies
  followed by the store (the script was not run; nothing is sent twice). Fewer
  confirmations in time raise :class:`BackendUnavailableError` saying how many came:
  the write is then applied on the primary, as Redis never rolls a write back, and is
  lost if the primary fails before a replica copies it.

The store never retries a command by itself: a failed write raises
:class:`BackendUnavailableError` and was applied completely or not at all (with
``min_replicas``: applied on the primary, or not at all).

This module is the store; its clients and connections live in
:mod:`sessions._redis_clients`, replicated writes in :mod:`sessions._redis_replicated`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from . import _fork
from ._base import BaseSession, SessionInfo
from ._errors import BackendUnavailableError, ConfigurationError, SessionError
from ._options import MAX_TTL, check_flag, check_int, check_seconds, check_text
from ._redis_clients import DRIVER_ERRORS, ConnectionSettings, RedisClients
from ._redis_keys import SCRIPTS, KeyLayout, Write, glob_escape, microseconds, session_info
from ._redis_replicated import NotEnoughReplicas, Replicas, areplicated, replicated
from ._registry import StoreURL

__all__ = ["NotEnoughReplicas", "RedisSession"]

#: A prefix as a literal in a ``SCAN MATCH`` pattern (kept importable from this module).
_glob_escape = glob_escape

_UNSET: Any = object()
_SCAN_COUNT = 1000
_NONE: list[str] = []


def _check_ttl(ttl: float | timedelta | None) -> int:
    if ttl is None:
        return 0
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    return max(1, round(check_seconds("ttl", seconds, maximum=MAX_TTL) * 1000))


def _seconds(text: str) -> float | None:
    value = float(text)
    return None if value == 0 else value


class RedisSession(BaseSession):
    """Sessions in Redis (standalone or Cluster), sync through ``redis.Redis`` and async
    through ``redis.asyncio`` (natively: async calls never block the event loop).

    Open it one of three ways::

        RedisSession("redis://:secret@127.0.0.1:6379/0?ttl=86400")
        RedisSession(host="127.0.0.1", port=6379, db=0, password="secret", ttl=86400)
        RedisSession(client=redis.Redis(...), async_client=redis.asyncio.Redis(...))

    With ``cluster=True`` (or a ``redis+cluster://`` URL) the clients are
    ``RedisCluster`` clients; given clients may be ``RedisCluster`` clients too.

    A store opened from a URL or settings creates its clients when first needed (one
    for sync calls, one per event loop for async calls) and closes them in
    :meth:`close`/:meth:`aclose`; an event loop's client is also closed when
    ``asyncio.run()`` shuts that loop down. Given clients are never closed by the store. With
    only ``client=``, async calls run the sync client in a worker thread; with only
    ``async_client=``, sync calls raise :class:`ConfigurationError`. A given async client
    serves the first event loop that uses it; other event loops, and forked children,
    get a client of their own made with its pool's settings (a given async
    ``RedisCluster`` cannot be copied: there they raise :class:`ConfigurationError`).
    Forked children make their own connections and never touch the parent's.

    :param prefix: the start of every key (must not contain ``{`` or ``}``: the store
        puts its own hash tag after it).
    :param ttl: seconds (or a ``timedelta``) after the last write when the whole session
        expires; ``None`` (default) never sets an expiry.
    :param socket_timeout: seconds to wait for a connection or an answer before raising
        :class:`BackendUnavailableError`.
    :param min_replicas: acknowledge a write (append, pop, replace, clear, delete) only
        once this many replicas have confirmed it (``WAIT``, pipelined with the write:
        still one round trip). ``0`` (default): acknowledged by the primary alone.
    :param replica_timeout: seconds a write waits for those confirmations (default 1;
        less than ``socket_timeout``) before raising :class:`BackendUnavailableError`
        with the count that came; the write is then applied on the primary and lost if
        the primary fails before a replica copies it.
    """

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = DRIVER_ERRORS

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | redis.cluster.RedisCluster | None = None,
        async_client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster | None = None,
        host: str = _UNSET,
        port: int = _UNSET,
        db: int = _UNSET,
        username: str | None = _UNSET,
        password: str | None = _UNSET,
        ssl: bool = _UNSET,
        cluster: bool = _UNSET,
        prefix: str = _UNSET,
        ttl: float | timedelta | None = _UNSET,
        socket_timeout: float = _UNSET,
        min_replicas: int = _UNSET,
        replica_timeout: float = _UNSET,
    ) -> None:
        given: dict[str, Any] = {name: value for name, value in (
            ("host", host), ("port", port), ("db", db), ("username", username),
            ("password", password), ("ssl", ssl), ("cluster", cluster),
        ) if value is not _UNSET}
        options: dict[str, Any] = {name: value for name, value in (
            ("prefix", prefix), ("ttl", ttl), ("socket_timeout", socket_timeout),
            ("min_replicas", min_replicas), ("replica_timeout", replica_timeout),
        ) if value is not _UNSET}
        if url is not None:
            if given or client is not None or async_client is not None:
                raise ConfigurationError(
                    "give either a URL, or connection settings, or clients, not several"
                )
            parsed = StoreURL.parse(url)
            given, from_url = _settings(parsed)
            for name in options.keys() & from_url.keys():
                raise ConfigurationError(f"{name!r} is given both in the URL and as an argument")
            options.update(from_url)
        elif given and (client is not None or async_client is not None):
            raise ConfigurationError("give either connection settings or clients, not both")
        if client is not None and not isinstance(client, (redis.Redis, redis.cluster.RedisCluster)):
            raise ConfigurationError(
                f"client must be a redis.Redis or RedisCluster, not {type(client).__name__}"
            )
        if async_client is not None and not isinstance(
                async_client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
            raise ConfigurationError(
                "async_client must be a redis.asyncio.Redis or RedisCluster, "
                f"not {type(async_client).__name__}"
            )

        key_prefix = check_text("prefix", options.get("prefix", "session:"), empty=True)
        self._layout = KeyLayout(key_prefix)
        self.prefix: str = key_prefix
        self.ttl_ms = _check_ttl(options.get("ttl"))
        self.socket_timeout = check_seconds("socket_timeout", options.get("socket_timeout", 5.0))
        self.min_replicas = check_int("min_replicas", options.get("min_replicas", 0), minimum=0,
                                      maximum=2**31 - 1)
        self.replica_timeout = check_seconds("replica_timeout", options.get("replica_timeout", 1.0))

        self.host: str = check_text("host", given.get("host", "localhost"))
        self.port = check_int("port", given.get("port", 6379), minimum=1, maximum=65535)
        self.db = check_int("db", given.get("db", 0), minimum=0, maximum=2**31 - 1)
        self.cluster = check_flag("cluster", given.get("cluster", False))
        settings = ConnectionSettings(
            host=self.host, port=self.port, db=self.db,
            username=check_text("username", given.get("username"), optional=True),
            password=check_text("password", given.get("password"), optional=True, empty=True),
            ssl=check_flag("ssl", given.get("ssl", False)), cluster=self.cluster,
            socket_timeout=self.socket_timeout,
        )
        if self.cluster and self.db != 0:
            raise ConfigurationError("Redis Cluster has only database 0")

        owned = client is None and async_client is None
        if self.min_replicas and owned and self.replica_timeout >= self.socket_timeout:
            raise ConfigurationError(
                f"replica_timeout ({self.replica_timeout:g}s) must be shorter than socket_timeout "
                f"({self.socket_timeout:g}s), which bounds the wait for the reply"
            )
        self._replicas = Replicas(self.min_replicas, self.replica_timeout)
        self._clients = RedisClients(settings, client, async_client, check=self._refuse_if_closed)
        _fork.register(self)
        self._ttl_arg = str(self.ttl_ms).encode()

    @classmethod
    def from_url(cls, url: StoreURL) -> RedisSession:
        """``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS),
        ``redis+cluster://host:port`` and ``rediss+cluster://`` (any node of a cluster).

        Options: ``?prefix=app:``, ``?ttl=86400`` (seconds, ``0`` for none),
        ``?socket_timeout=5``, ``?min_replicas=1`` and ``?replica_timeout=1`` (seconds).
        """
        given, options = _settings(url)
        return cls(**given, **options)

    def __repr__(self) -> str:
        where = "given client" if not self._clients.owned else f"{self.host}:{self.port}/{self.db}"
        kind = "cluster " if self.cluster else ""
        replicas = f", min_replicas={self.min_replicas}" if self.min_replicas else ""
        return f"RedisSession({kind}{where}, prefix={self.prefix!r}, ttl_ms={self.ttl_ms}{replicas})"

    def _keys(self, session_id: str) -> tuple[str, str]:
        return self._layout.keys(session_id)

    # -- sync record operations ---------------------------------------------------------------

    def _execute(self, *command: Any) -> Any:
        """Send one command and read its reply: on the store's own connections where it
        keeps them (a standalone server, clients of its own), else ``execute_command``."""
        clients = self._clients
        direct = clients.direct or clients.connections()
        if direct is not None:
            return direct.run(command)
        return clients.sync().execute_command(*command)

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        start = 0 if limit is None else -limit
        return self._execute("LRANGE", self._keys(session_id)[0], start, -1)  # type: ignore[no-any-return]

    def _script(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        return SCRIPTS[name].run(self._execute, self._keys(session_id), self._ttl_arg, *records)

    async def _ascript(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        client = await self._clients.for_loop()
        return await SCRIPTS[name].arun(client, self._keys(session_id), self._ttl_arg, *records)

    def _write(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        """Run a write script; with ``min_replicas``, acknowledged by that many replicas."""
        if not self.min_replicas:
            return self._script(name, session_id, records)
        keys = self._keys(session_id)
        return self._replicated(SCRIPTS[name].write(keys, self._ttl_arg, *records), keys[0])

    def _replicated(self, write: Write, key: str) -> Any:
        client = self._clients.sync()
        return replicated(client, self._clients.connections(), write, key, self._replicas)

    def _append(self, session_id: str, records: list[str]) -> None:
        self._write("append", session_id, records)

    def _pop(self, session_id: str) -> str | None:
        return self._write("pop", session_id)  # type: ignore[no-any-return]

    def _replace(self, session_id: str, records: list[str]) -> None:
        self._write("replace", session_id, records)

    def _clear(self, session_id: str) -> None:
        self._write("clear", session_id)

    def _delete(self, session_id: str) -> None:
        keys = self._keys(session_id)
        if self.min_replicas:
            self._replicated(Write(("UNLINK", *keys)), keys[0])
        else:
            self._clients.sync().unlink(*keys)

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return bool(self._write("delete_if_idle", session_id, microseconds(cutoff)))

    def _count(self, session_id: str) -> int:
        return int(self._clients.sync().llen(self._keys(session_id)[0]))

    def _info(self, session_id: str) -> SessionInfo | None:
        row = self._script("info", session_id)
        return None if row is None else session_info(session_id, row)

    def _iter_sessions(self) -> Iterator[str]:
        layout = self._layout
        for key in self._clients.sync().scan_iter(match=layout.scan_pattern, count=_SCAN_COUNT):
            session_id = layout.session_id_of(key)
            if session_id is not None:
                yield session_id

    # -- async record operations: redis.asyncio, or the sync client in a thread ----------------

    async def _aget(self, session_id: str, limit: int | None) -> list[str]:
        if not self._clients.native_async:
            return await super()._aget(session_id, limit)
        start = 0 if limit is None else -limit
        client = await self._clients.for_loop()
        return await client.lrange(self._keys(session_id)[0], start, -1)  # type: ignore[no-any-return]

    async def _awrite(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        if not self.min_replicas:
            return await self._ascript(name, session_id, records)
        keys = self._keys(session_id)
        return await self._areplicated(SCRIPTS[name].write(keys, self._ttl_arg, *records), keys[0])

    async def _areplicated(self, write: Write, key: str) -> Any:
        return await areplicated(await self._clients.for_loop(), write, key, self._replicas)

    async def _aappend(self, session_id: str, records: list[str]) -> None:
        if not self._clients.native_async:
            return await super()._aappend(session_id, records)
        await self._awrite("append", session_id, records)

    async def _apop(self, session_id: str) -> str | None:
        if not self._clients.native_async:
            return await super()._apop(session_id)
        return await self._awrite("pop", session_id)  # type: ignore[no-any-return]

    async def _areplace(self, session_id: str, records: list[str]) -> None:
        if not self._clients.native_async:
            return await super()._areplace(session_id, records)
        await self._awrite("replace", session_id, records)

    async def _aclear(self, session_id: str) -> None:
        if not self._clients.native_async:
            return await super()._aclear(session_id)
        await self._awrite("clear", session_id)

    async def _adelete(self, session_id: str) -> None:
        if not self._clients.native_async:
            return await super()._adelete(session_id)
        keys = self._keys(session_id)
        if self.min_replicas:
            await self._areplicated(Write(("UNLINK", *keys)), keys[0])
        else:
            await (await self._clients.for_loop()).unlink(*keys)

    async def _adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        if not self._clients.native_async:
            return await super()._adelete_if_idle(session_id, cutoff)
        return bool(await self._awrite("delete_if_idle", session_id, microseconds(cutoff)))

    async def _acount(self, session_id: str) -> int:
        if not self._clients.native_async:
            return await super()._acount(session_id)
        return int(await (await self._clients.for_loop()).llen(self._keys(session_id)[0]))

    async def _ainfo(self, session_id: str) -> SessionInfo | None:
        if not self._clients.native_async:
            return await super()._ainfo(session_id)
        row = await self._ascript("info", session_id)
        return None if row is None else session_info(session_id, row)

    async def _aiter_sessions(self) -> AsyncIterator[str]:
        if not self._clients.native_async:
            async for listed in super()._aiter_sessions():
                yield listed
            return
        layout = self._layout
        client = await self._clients.for_loop()
        async for key in client.scan_iter(match=layout.scan_pattern, count=_SCAN_COUNT):
            session_id = layout.session_id_of(key)
            if session_id is not None:
                yield session_id

    # -- closing --------------------------------------------------------------------------------

    def _close(self) -> None:
        self._clients.close()

    async def _aclose(self) -> None:
        await self._clients.aclose()

    def _after_fork(self) -> None:
        self._clients.after_fork()

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        where = "the given Redis client" if not self._clients.owned else f"Redis at {self.host}:{self.port}"
        return BackendUnavailableError(
            f"{where} failed: {type(error).__name__}: {error}",
            session_id=session_id, operation=operation,
        )


def _settings(url: StoreURL) -> tuple[dict[str, Any], dict[str, Any]]:
    """Connection settings and store options of a redis URL."""
    scheme = url.scheme
    if scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        raise ConfigurationError(f"not a Redis URL: {url.redacted!r}")
    options = url.options({"prefix": str, "ttl": _seconds, "socket_timeout": float,
                           "min_replicas": int, "replica_timeout": float})
    given: dict[str, Any] = {
        "host": url.host or "localhost",
        "port": url.port or 6379,
        "username": url.username,
        "password": url.password,
        "ssl": scheme.startswith("rediss"),
        "cluster": scheme.endswith("+cluster"),
    }
    path = url.path.strip("/")
    if path:
        try:
            given["db"] = int(path)
        except ValueError:
            raise ConfigurationError(
                f"Redis URL path must be a database number, got {url.path!r}"
            ) from None
    return given, options
