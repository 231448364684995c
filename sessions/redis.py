"""Sessions on a Redis server or a Redis Cluster, through redis-py (extra ``redis``).

Key layout, for a session id ``sid`` and the key prefix ``P`` (``"session:"`` by default)::

    P{<tag>}:messages   a LIST of records (compact JSON), oldest first
    P{<tag>}:meta       a HASH: created_at, updated_at (microseconds since the epoch,
                        from the server's clock)

``<tag>`` is the session id with ``%``, ``{`` and ``}`` percent-escaped: readable, and
injective, so two ids never share keys, and the braces around it are an exact Redis
Cluster hash tag: both keys of a session live in one hash slot, and every change to a
session is one Lua script on that slot. The message count is the list's length, so it
can never disagree with the messages.

* ``append`` is one round trip (``EVALSHA``): ``RPUSH`` of the batch, the metadata and
  the expiry, atomically. Its cost does not depend on the history length.
* ``get(limit=N)`` is ``LRANGE key -N -1``: O(N). ``pop``, ``replace``, ``clear`` are
  single scripts, hence atomic; ``delete`` removes both keys with one ``UNLINK``.
* ``list_sessions`` streams ``SCAN MATCH P{*}:meta`` (on a cluster, over every primary),
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
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.asyncio.cluster import PipelineCommand
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from . import _fork
from ._base import BaseSession, SessionInfo
from ._errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptRecordError,
    SessionError,
    StoreClosedError,
    shown,
)
from ._io import readable_now
from ._loops import PerLoop
from ._options import MAX_TTL, check_flag, check_int, check_seconds, check_text
from ._registry import StoreURL

__all__ = ["NotEnoughReplicas", "RedisSession"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNSET: Any = object()
_SCAN_COUNT = 1000
_NONE: list[str] = []

# KEYS[1] = the messages list, KEYS[2] = the meta hash; ARGV[1] = TTL in ms (0: none).
# Redis freezes the clock while a script runs, so both keys get the same deadline.
_COMMON = """
local function now()
  local t = redis.call('TIME')
  return t[1] .. string.sub('00000' .. t[2], -6)
end
local function touch()
  local stamp = now()
  redis.call('HSETNX', KEYS[2], 'created_at', stamp)
  redis.call('HSET', KEYS[2], 'updated_at', stamp)
  local ttl = tonumber(ARGV[1])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
  else
    local left = redis.call('PTTL', KEYS[2])
    if left > 0 then redis.call('PEXPIRE', KEYS[1], left) end
  end
end
local function push(first)
  local n = #ARGV
  for i = first, n, 4000 do
    redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 3999, n)))
  end
end
"""

# The hot path, written out: the session's creation time and a TTL carried over from
# its metadata only matter when the list was empty before this batch.
_APPEND = """
local n = #ARGV
local length
for i = 2, n, 4000 do
  length = redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 3999, n)))
end
local t = redis.call('TIME')
local stamp = t[1] .. string.sub('00000' .. t[2], -6)
local ttl = tonumber(ARGV[1])
if length == n - 1 then
  redis.call('HSETNX', KEYS[2], 'created_at', stamp)
  if ttl == 0 then
    local left = redis.call('PTTL', KEYS[2])
    if left > 0 then redis.call('PEXPIRE', KEYS[1], left) end
  end
end
redis.call('HSET', KEYS[2], 'updated_at', stamp)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return length
"""
_POP = _COMMON + """
local record = redis.call('RPOP', KEYS[1])
if record then touch() end
return record
"""
_REPLACE = _COMMON + "redis.call('UNLINK', KEYS[1]) push(2) touch() return 1"
_CLEAR = _COMMON + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('UNLINK', KEYS[1])
  touch()
end
return 1
"""
# ARGV[2] = the cutoff (microseconds since the epoch): delete only a session last
# updated before it, in the same step as the check.
_DELETE_IF_IDLE = """
local meta = redis.call('HMGET', KEYS[2], 'updated_at', 'created_at')
local updated = tonumber(meta[1] or meta[2] or '')
if not updated or updated >= tonumber(ARGV[2]) then return 0 end
redis.call('UNLINK', KEYS[1], KEYS[2])
return 1
"""
_INFO = """
local meta = redis.call('HMGET', KEYS[2], 'created_at', 'updated_at')
if not meta[1] then return false end
return {meta[1], meta[2] or meta[1], redis.call('LLEN', KEYS[1])}
"""


class _Script:
    """A Lua script run by ``EVALSHA``, loaded with ``EVAL`` where the server lacks it."""

    def __init__(self, source: str) -> None:
        import hashlib

        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest().encode()

    def run(self, execute: Callable[..., Any], keys: tuple[str, str], *args: Any) -> Any:
        try:
            return execute("EVALSHA", self.sha, 2, *keys, *args)
        except NoScriptError:
            return execute("EVAL", self.source, 2, *keys, *args)

    def write(self, keys: tuple[str, str], *args: Any) -> _Write:
        return _Write(("EVALSHA", self.sha, 2, *keys, *args), ("EVAL", self.source, 2, *keys, *args))

    async def arun(self, client: Any, keys: tuple[str, str], *args: Any) -> Any:
        try:
            return await client.execute_command("EVALSHA", self.sha, 2, *keys, *args)
        except NoScriptError:
            return await client.execute_command("EVAL", self.source, 2, *keys, *args)


_SCRIPTS = {name: _Script(source) for name, source in
            (("append", _APPEND), ("pop", _POP), ("replace", _REPLACE),
             ("clear", _CLEAR), ("info", _INFO), ("delete_if_idle", _DELETE_IF_IDLE))}


# -- replicated writes: what is sent and how the replies are judged (no I/O) -------------

#: Redirections (MOVED, ASK, TRYAGAIN) one replicated write follows before giving up.
_REDIRECTS = 16
_TRYAGAIN_PAUSE = 0.1
_NODE_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class NotEnoughReplicas(RedisError):
    """Fewer replicas than ``min_replicas`` confirmed a write within ``replica_timeout``
    (the cause of the :class:`BackendUnavailableError` a store raises then)."""

    def __init__(self, acknowledged: int, required: int, timeout: float, primary: str) -> None:
        self.acknowledged, self.required = acknowledged, required
        super().__init__(
            f"{acknowledged} of the {required} replica(s) required confirmed the write within "
            f"{timeout:g}s; it is applied on {primary}, and lost if that primary fails before "
            f"a replica copies it"
        )


@dataclass(frozen=True)
class _Write:
    """One write command, and the command to send instead if the server lacks a script."""

    command: tuple[Any, ...]
    fallback: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class _Next:
    """What a replicated write does after one pipeline: return ``result``, or send
    ``command`` again (to the ASK target, after a topology refresh, after a pause)."""

    done: bool
    result: Any = None
    command: tuple[Any, ...] = ()
    ask: tuple[str, int] | None = None
    refresh: bool = False
    pause: float = 0.0


def _settle(replies: list[Any], command: tuple[Any, ...], ask: tuple[str, int] | None,
            write: _Write, required: int, timeout: float, primary: str) -> _Next:
    """Judge the replies to ``[ASKING,] command, WAIT`` (``ASKING`` when ``ask``).

    A redirection or a missing script means the command was not run, so it is sent
    again (a script the node lacks as its source, to the same node); any other error is
    raised; a WAIT count under ``required`` raises :class:`NotEnoughReplicas`.
    """
    result, acknowledged = replies[-2], replies[-1]
    for reply in replies:
        if isinstance(reply, _NODE_FAILURES):
            raise reply  # the connection broke: the outcome of the write is unknown
    if isinstance(result, NoScriptError) and write.fallback is not None and command != write.fallback:
        return _Next(False, command=write.fallback, ask=ask)
    if isinstance(result, AskError):
        return _Next(False, command=command, ask=(result.host, int(result.port)))
    if isinstance(result, MovedError):
        return _Next(False, command=command, refresh=True)
    if isinstance(result, TryAgainError):
        return _Next(False, command=command, pause=_TRYAGAIN_PAUSE)
    if isinstance(result, Exception):
        raise result
    if isinstance(acknowledged, Exception):
        raise acknowledged
    if int(acknowledged) < required:
        raise NotEnoughReplicas(int(acknowledged), required, timeout, primary)
    return _Next(True, result=result)


def _pipelined(command: tuple[Any, ...], asking: bool, wait: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return [("ASKING",), command, wait] if asking else [command, wait]


# -- key names (no I/O: shared by the sync and async paths) ----------------------------


def _escape_id(session_id: str) -> str:
    return session_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _unescape_id(tag: str) -> str | None:
    """The session id of a key tag, or None if the tag is not one this store writes."""
    if "{" in tag or "}" in tag:
        return None
    pieces = tag.split("%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        code = piece[:2]
        if code == "25":
            out.append("%")
        elif code == "7B":
            out.append("{")
        elif code == "7D":
            out.append("}")
        else:
            return None
        out.append(piece[2:])
    return "".join(out)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\*?[]^" else c for c in text)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8")


def _time(value: str | bytes) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def _microseconds(moment: datetime) -> list[str]:
    """``moment`` as the script argument list of :data:`_DELETE_IF_IDLE`."""
    return [str((moment - _EPOCH) // timedelta(microseconds=1))]


def _check_ttl(ttl: float | timedelta | None) -> int:
    if ttl is None:
        return 0
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    return max(1, round(check_seconds("ttl", seconds, maximum=MAX_TTL) * 1000))


def _seconds(text: str) -> float | None:
    value = float(text)
    return None if value == 0 else value


class _IdleChecked:
    """A connection whose idle check also asks the socket itself.

    redis.asyncio's pool checks an idle connection before handing it out, but only
    through what the event loop has read so far: when the loop has not run since the
    server closed the connection (a loop driven by ``run_until_complete`` from call to
    call), the EOF is still unread and the next command is sent on a dead connection.
    Polling the socket (any descriptor number) sees it, and the pool reconnects before
    sending anything.
    """

    _writer: asyncio.StreamWriter | None

    def _socket_has_data(self) -> bool:
        writer = self._writer
        if writer is None:
            return False
        sock = writer.transport.get_extra_info("socket")
        return sock is not None and readable_now(sock.fileno())

    async def can_read(self) -> bool:
        return await super().can_read() or self._socket_has_data()  # type: ignore[misc]

    async def can_read_destructive(self) -> bool:  # redis-py before 8 asks this one
        return await super().can_read_destructive() or self._socket_has_data()  # type: ignore[misc]


class _CheckedConnection(_IdleChecked, redis.asyncio.Connection):
    pass


class _CheckedSSLConnection(_IdleChecked, redis.asyncio.SSLConnection):
    pass


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

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (
        RedisError, RedisClusterException, OSError,
    )

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
        if "{" in key_prefix or "}" in key_prefix:
            raise ConfigurationError(f"prefix must be a str without '{{' or '}}', got {shown(key_prefix)}")
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
        self._username: str | None = check_text("username", given.get("username"), optional=True)
        self._password: str | None = check_text("password", given.get("password"), optional=True,
                                                empty=True)
        self._ssl = check_flag("ssl", given.get("ssl", False))
        if self.cluster and self.db != 0:
            raise ConfigurationError("Redis Cluster has only database 0")

        self._owns_clients = client is None and async_client is None
        if self.min_replicas and self._owns_clients and self.replica_timeout >= self.socket_timeout:
            raise ConfigurationError(
                f"replica_timeout ({self.replica_timeout:g}s) must be shorter than socket_timeout "
                f"({self.socket_timeout:g}s), which bounds the wait for the reply"
            )
        self._wait = ("WAIT", self.min_replicas, max(1, round(self.replica_timeout * 1000)))
        self._direct = self._owns_clients and not self.cluster
        self._client: Any = client
        self._direct_connections: _DirectConnections | None = None
        self._async_given: Any = async_client
        self._async_clients: PerLoop[Any] = PerLoop(
            self._own_async_client, _aclose_client, given=async_client, copy=_copy_async_client,
            check=self._refuse_if_closed, prepare=_prepare_client,
        )
        self._lock = threading.Lock()
        _fork.register(self)
        self._ttl_arg = str(self.ttl_ms).encode()
        self._scan_pattern = _glob_escape(self.prefix) + "{*}:meta"

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
        where = "given client" if not self._owns_clients else f"{self.host}:{self.port}/{self.db}"
        kind = "cluster " if self.cluster else ""
        replicas = f", min_replicas={self.min_replicas}" if self.min_replicas else ""
        return f"RedisSession({kind}{where}, prefix={self.prefix!r}, ttl_ms={self.ttl_ms}{replicas})"

    # -- clients --------------------------------------------------------------------------

    def _connection_kwargs(self, asynchronous: bool = False) -> dict[str, Any]:
        return {
            "host": self.host, "port": self.port, "username": self._username,
            "password": self._password, "ssl": self._ssl,
            "socket_timeout": self.socket_timeout, "socket_connect_timeout": self.socket_timeout,
            # No retries: a write that failed must not be sent twice behind the caller's
            # back. RESP2: the replies read here need nothing from RESP3.
            "retry": (redis.asyncio.retry.Retry if asynchronous else Retry)(NoBackoff(), 0),
            "protocol": 2,
        }

    def _sync(self) -> Any:
        client = self._client
        if client is not None:
            return client
        if not self._owns_clients:
            raise ConfigurationError(
                "this RedisSession was given only an async client; pass client= for sync calls"
            )
        with self._lock:
            self._refuse_if_closed()
            if self._client is None:
                kwargs = self._connection_kwargs()
                if self.cluster:
                    self._client = redis.cluster.RedisCluster(**kwargs)
                else:
                    self._client = redis.Redis(db=self.db, **kwargs)
            return self._client

    async def _async(self) -> Any:
        return await self._async_clients.get()

    def _own_async_client(self) -> Any:
        kwargs = self._connection_kwargs(asynchronous=True)
        if self.cluster:
            return redis.asyncio.cluster.RedisCluster(**kwargs)
        connection_class = _CheckedSSLConnection if kwargs.pop("ssl") else _CheckedConnection
        own = redis.asyncio.ConnectionPool(connection_class=connection_class, db=self.db, **kwargs)
        return redis.asyncio.Redis.from_pool(own)

    @property
    def _native_async(self) -> bool:
        return self._owns_clients or self._async_given is not None

    def _keys(self, session_id: str) -> tuple[str, str]:
        base = f"{self.prefix}{{{_escape_id(session_id)}}}:"
        return base + "messages", base + "meta"

    def _session_id_of(self, key: str | bytes) -> str | None:
        """The session id a listed key names, or None for a key this store did not
        write (another program's, under the same prefix): those are skipped."""
        try:
            name = _text(key)
        except UnicodeDecodeError:
            return None
        start = len(self.prefix) + 1
        if not name.startswith(self.prefix + "{") or not name.endswith("}:meta"):
            return None
        tag = name[start:-6]
        session_id = _unescape_id(tag)
        if session_id is None or _escape_id(session_id) != tag:
            return None
        return session_id

    # -- sync record operations ---------------------------------------------------------------

    def _execute(self, *command: Any) -> Any:
        """Send one command and read its reply.

        On a standalone server with clients of its own, the store sends its commands on
        connections it keeps itself (see :class:`_DirectConnections`): they need no
        reply callbacks and no retries, and skipping redis-py's generic command and pool
        layers saves about 8 µs of an append. Otherwise: ``execute_command``.
        """
        direct = self._direct_connections or self._own_connections()
        if direct is not None:
            return direct.run(command)
        return self._sync().execute_command(*command)

    def _own_connections(self) -> _DirectConnections | None:
        """The store's own connections (made on first use), or None if the store does
        not keep its own: a cluster, or clients it was given."""
        client = self._sync()
        if not self._direct:
            return None
        with self._lock:
            self._refuse_if_closed()
            if self._direct_connections is None:
                pool = client.connection_pool
                self._direct_connections = _DirectConnections(pool.connection_class, pool.connection_kwargs)
            return self._direct_connections

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        start = 0 if limit is None else -limit
        return self._execute("LRANGE", self._keys(session_id)[0], start, -1)  # type: ignore[no-any-return]

    def _script(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        return _SCRIPTS[name].run(self._execute, self._keys(session_id), self._ttl_arg, *records)

    async def _ascript(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        client = await self._async()
        return await _SCRIPTS[name].arun(client, self._keys(session_id), self._ttl_arg, *records)

    def _write(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        """Run a write script; with ``min_replicas``, acknowledged by that many replicas."""
        if not self.min_replicas:
            return self._script(name, session_id, records)
        keys = self._keys(session_id)
        return self._replicated(_SCRIPTS[name].write(keys, self._ttl_arg, *records), keys[0])

    def _replicated(self, write: _Write, key: str) -> Any:
        """``write`` then ``WAIT``, pipelined on one connection to the primary of ``key``."""
        client = self._sync()
        cluster = isinstance(client, redis.cluster.RedisCluster)
        command, ask = write.command, None
        for _ in range(_REDIRECTS):
            if cluster:
                node = client.get_node(*ask) if ask else client.get_node_from_key(key)
                if node is None:  # an ASK target the client does not know yet
                    raise RedisClusterException(f"unknown cluster node {ask!r}")
                target, where = client.get_redis_connection(node), f"the primary {node.name}"
            else:
                target, where = self._own_connections() or client, "the primary"
            try:
                parts = _pipelined(command, ask is not None, self._wait)
                if isinstance(target, _DirectConnections):
                    replies = target.pipeline(parts)
                else:
                    with target.pipeline(transaction=False) as pipe:
                        for part in parts:
                            pipe.execute_command(*part)
                        replies = pipe.execute(raise_on_error=False)
                step = _settle(replies, command, ask, write, self.min_replicas, self.replica_timeout, where)
            except (*_NODE_FAILURES, ClusterDownError):
                if cluster:  # the slot may have a new primary: learn the topology again
                    with contextlib.suppress(*self.driver_errors):
                        client.nodes_manager.initialize()
                raise
            if step.done:
                return step.result
            command, ask = step.command, step.ask
            if step.refresh:
                client.nodes_manager.initialize()
            if step.pause:
                time.sleep(step.pause)
        raise RedisClusterException(f"a write to {key!r} was redirected more than {_REDIRECTS} times")

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
            self._replicated(_Write(("UNLINK", *keys)), keys[0])
        else:
            self._sync().unlink(*keys)

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return bool(self._write("delete_if_idle", session_id, _microseconds(cutoff)))

    def _count(self, session_id: str) -> int:
        return int(self._sync().llen(self._keys(session_id)[0]))

    def _info(self, session_id: str) -> SessionInfo | None:
        row = self._script("info", session_id)
        return None if row is None else _info(session_id, row)

    def _iter_sessions(self) -> Iterator[str]:
        for key in self._sync().scan_iter(match=self._scan_pattern, count=_SCAN_COUNT):
            session_id = self._session_id_of(key)
            if session_id is not None:
                yield session_id

    # -- async record operations: redis.asyncio, or the sync client in a thread ----------------

    async def _aget(self, session_id: str, limit: int | None) -> list[str]:
        if not self._native_async:
            return await super()._aget(session_id, limit)
        start = 0 if limit is None else -limit
        return await (await self._async()).lrange(self._keys(session_id)[0], start, -1)  # type: ignore[no-any-return]

    async def _awrite(self, name: str, session_id: str, records: list[str] = _NONE) -> Any:
        if not self.min_replicas:
            return await self._ascript(name, session_id, records)
        keys = self._keys(session_id)
        return await self._areplicated(_SCRIPTS[name].write(keys, self._ttl_arg, *records), keys[0])

    async def _areplicated(self, write: _Write, key: str) -> Any:
        """The async twin of :meth:`_replicated`."""
        client = await self._async()
        cluster = isinstance(client, redis.asyncio.cluster.RedisCluster)
        command, ask = write.command, None
        for _ in range(_REDIRECTS):
            parts = _pipelined(command, ask is not None, self._wait)
            try:
                if cluster:
                    node = client.get_node(*ask) if ask else client.get_node_from_key(key)
                    if node is None:  # an ASK target the client does not know yet
                        raise RedisClusterException(f"unknown cluster node {ask!r}")
                    where = f"the primary {node.name}"
                    queued = [PipelineCommand(n, *part) for n, part in enumerate(parts)]
                    await node.execute_pipeline(queued)
                    replies = [entry.result for entry in queued]
                else:
                    where = "the primary"
                    async with client.pipeline(transaction=False) as pipe:
                        for part in parts:
                            pipe.execute_command(*part)
                        replies = await pipe.execute(raise_on_error=False)
                step = _settle(replies, command, ask, write, self.min_replicas, self.replica_timeout, where)
            except (*_NODE_FAILURES, ClusterDownError):
                if cluster:
                    with contextlib.suppress(*self.driver_errors):
                        await client.nodes_manager.initialize()
                raise
            if step.done:
                return step.result
            command, ask = step.command, step.ask
            if step.refresh:
                await client.nodes_manager.initialize()
            if step.pause:
                await asyncio.sleep(step.pause)
        raise RedisClusterException(f"a write to {key!r} was redirected more than {_REDIRECTS} times")

    async def _aappend(self, session_id: str, records: list[str]) -> None:
        if not self._native_async:
            return await super()._aappend(session_id, records)
        await self._awrite("append", session_id, records)

    async def _apop(self, session_id: str) -> str | None:
        if not self._native_async:
            return await super()._apop(session_id)
        return await self._awrite("pop", session_id)  # type: ignore[no-any-return]

    async def _areplace(self, session_id: str, records: list[str]) -> None:
        if not self._native_async:
            return await super()._areplace(session_id, records)
        await self._awrite("replace", session_id, records)

    async def _aclear(self, session_id: str) -> None:
        if not self._native_async:
            return await super()._aclear(session_id)
        await self._awrite("clear", session_id)

    async def _adelete(self, session_id: str) -> None:
        if not self._native_async:
            return await super()._adelete(session_id)
        keys = self._keys(session_id)
        if self.min_replicas:
            await self._areplicated(_Write(("UNLINK", *keys)), keys[0])
        else:
            await (await self._async()).unlink(*keys)

    async def _adelete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        if not self._native_async:
            return await super()._adelete_if_idle(session_id, cutoff)
        return bool(await self._awrite("delete_if_idle", session_id, _microseconds(cutoff)))

    async def _acount(self, session_id: str) -> int:
        if not self._native_async:
            return await super()._acount(session_id)
        return int(await (await self._async()).llen(self._keys(session_id)[0]))

    async def _ainfo(self, session_id: str) -> SessionInfo | None:
        if not self._native_async:
            return await super()._ainfo(session_id)
        row = await self._ascript("info", session_id)
        return None if row is None else _info(session_id, row)

    async def _aiter_sessions(self) -> AsyncIterator[str]:
        if not self._native_async:
            async for listed in super()._aiter_sessions():
                yield listed
            return
        async for key in (await self._async()).scan_iter(match=self._scan_pattern, count=_SCAN_COUNT):
            session_id = self._session_id_of(key)
            if session_id is not None:
                yield session_id

    # -- closing --------------------------------------------------------------------------------

    def _close(self) -> None:
        with self._lock:
            client = self._client if self._owns_clients else None
            if self._owns_clients:
                self._client = None
            direct, self._direct_connections = self._direct_connections, None
        if client is not None:
            client.close()
        if direct is not None:
            direct.close()
        self._async_clients.close()

    async def _aclose(self) -> None:
        await self._async_clients.aclose()
        self._close()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        if self._owns_clients:  # a given sync client's pools check the pid themselves
            _fork.abandon(self._client, self._direct_connections)
            self._client = self._direct_connections = None
        self._async_clients.forget()

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        where = "the given Redis client" if not self._owns_clients else f"Redis at {self.host}:{self.port}"
        return BackendUnavailableError(
            f"{where} failed: {type(error).__name__}: {error}",
            session_id=session_id, operation=operation,
        )


class _DirectConnections:
    """The idle connections of a store's sync hot path, one in use per thread at a time.

    Each call takes an idle connection (or makes one with the client's own connection
    class and settings), checks that it is still usable, sends the command and reads
    its reply, and puts it back. A connection that has data or EOF waiting while idle
    (a server restart, an idle timeout) is reconnected before the command is sent, as
    redis-py's pool does; one whose reply may still be pending after an error is closed
    and dropped, so a later call never reads another command's reply. Once closed, it
    refuses commands and closes connections given back.
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


def _info(session_id: str, row: list[Any]) -> SessionInfo:
    try:
        created, updated, count = row
        return SessionInfo(session_id, int(count), _time(created), _time(updated))
    except (TypeError, ValueError, OverflowError) as error:
        raise CorruptRecordError(
            f"the session's metadata hash holds {shown(row, 120)}, not times in microseconds",
            session_id=session_id, operation="info",
        ) from error


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
