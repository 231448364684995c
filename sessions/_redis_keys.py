"""What :class:`~sessions.redis.RedisSession` stores where, and the Lua scripts that
change it (no I/O: shared by the sync and async paths).

Key layout, for a session id ``sid`` and the key prefix ``P`` (``"session:"`` by default)::

    P{<tag>}:messages   a LIST of records (compact JSON), oldest first
    P{<tag>}:meta       a HASH: created_at, updated_at (microseconds since the epoch,
                        from the server's clock)

``<tag>`` is the session id with ``%``, ``{`` and ``}`` percent-escaped: readable, and
injective, so two ids never share keys, and the braces around it are an exact Redis
Cluster hash tag: both keys of a session live in one hash slot, and every change to a
session is one Lua script on that slot. The message count is the list's length, so it
can never disagree with the messages.

Every script takes ``KEYS = (messages, meta)`` and the TTL in milliseconds (``0``:
none) as its first argument; a script runs as one step on the server, so a change and
its metadata and expiry are applied together or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from redis.exceptions import NoScriptError

from ._base import SessionInfo
from ._errors import ConfigurationError, CorruptRecordError, shown

__all__ = ["SCRIPTS", "KeyLayout", "Script", "Write", "glob_escape", "microseconds", "session_info"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

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


@dataclass(frozen=True)
class Write:
    """One write command, and the command to send instead if the server lacks a script."""

    command: tuple[Any, ...]
    fallback: tuple[Any, ...] | None = None


class Script:
    """A Lua script run by ``EVALSHA``, loaded with ``EVAL`` where the server lacks it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest().encode()

    def run(self, execute: Callable[..., Any], keys: tuple[str, str], *args: Any) -> Any:
        try:
            return execute("EVALSHA", self.sha, 2, *keys, *args)
        except NoScriptError:
            return execute("EVAL", self.source, 2, *keys, *args)

    def write(self, keys: tuple[str, str], *args: Any) -> Write:
        return Write(("EVALSHA", self.sha, 2, *keys, *args), ("EVAL", self.source, 2, *keys, *args))

    async def arun(self, client: Any, keys: tuple[str, str], *args: Any) -> Any:
        try:
            return await client.execute_command("EVALSHA", self.sha, 2, *keys, *args)
        except NoScriptError:
            return await client.execute_command("EVAL", self.source, 2, *keys, *args)


SCRIPTS = {name: Script(source) for name, source in
           (("append", _APPEND), ("pop", _POP), ("replace", _REPLACE),
            ("clear", _CLEAR), ("info", _INFO), ("delete_if_idle", _DELETE_IF_IDLE))}


# -- key names ---------------------------------------------------------------------------------


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


def glob_escape(text: str) -> str:
    """``text`` as a literal in a ``SCAN MATCH`` pattern."""
    return "".join("\\" + c if c in "\\*?[]^" else c for c in text)


class KeyLayout:
    """The keys of every session under one prefix."""

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"prefix must be a str without '{{' or '}}', got {shown(prefix)}")
        self.prefix = prefix
        #: ``SCAN MATCH`` pattern of the metadata key of every session under the prefix.
        self.scan_pattern = glob_escape(prefix) + "{*}:meta"

    def keys(self, session_id: str) -> tuple[str, str]:
        """The messages list and the metadata hash of a session."""
        base = f"{self.prefix}{{{_escape_id(session_id)}}}:"
        return base + "messages", base + "meta"

    def session_id_of(self, key: str | bytes) -> str | None:
        """The session id a listed key names, or None for a key this store did not
        write (another program's, under the same prefix): those are skipped."""
        try:
            name = key if isinstance(key, str) else key.decode("utf-8")
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


# -- script arguments and replies ------------------------------------------------------------------


def microseconds(moment: datetime) -> list[str]:
    """``moment`` as the script argument list of the ``delete_if_idle`` script."""
    return [str((moment - _EPOCH) // timedelta(microseconds=1))]


def _time(value: str | bytes) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def session_info(session_id: str, row: list[Any]) -> SessionInfo:
    """The reply of the ``info`` script as a :class:`SessionInfo`."""
    try:
        created, updated, count = row
        return SessionInfo(session_id, int(count), _time(created), _time(updated))
    except (TypeError, ValueError, OverflowError) as error:
        raise CorruptRecordError(
            f"the session's metadata hash holds {shown(row, 120)}, not times in microseconds",
            session_id=session_id, operation="info",
        ) from error
