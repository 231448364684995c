"""One append-only JSON Lines file per session, in one private directory.

Layout of the directory (mode 0700; every file 0600)::

    s-<base32 of the id>.jsonl     the session's messages (ids up to 154 UTF-8 bytes)
    h-<sha256 of the id>.jsonl     the same for longer ids
    <same stem>.meta               a small cache: message count, times, committed size

A data file starts with a header line ``{"session_layer":"file","v":1,"session_id":...,
"created_at":...}`` followed by one record per line. The name is lowercase base32 of the
id's UTF-8 bytes (reversible, safe on case-insensitive file systems) or, when that would
not fit a 255-byte file name, a SHA-256 digest; either way no id can name a path outside
the directory, and the header holds the exact id.

Batches: every record of a batch but the last ends with a space before its newline
(``{...} \\n``), the last ends with ``}\\n``. A batch is committed once its last line is
complete, so a batch cut short by a crash is recognised as a whole and ignored: the
*torn tail* (trailing lines of an unfinished batch, a line without newline, or a last
line that is not valid JSON) is skipped on read and truncated by the next writer. Any
other line that is not a record raises :class:`CorruptRecordError`. Every line remains
valid JSON, so ``jq`` reads the files as they are.

Locking: each call opens its own descriptors and takes a ``flock`` on the data file,
shared for reads and exclusive for writes, so threads and processes may share the
directory. A writer that waited for a file which was replaced or deleted meanwhile opens
the new one. New files are built under a temporary name and linked into place, so a
visible data file always has its header and its first batch.

The ``.meta`` file caches the count and times and names the data file (inode) and size
it describes; it is rewritten in place (one ``pwrite``) after each change, and checked on
every use: when it does not describe the current file (after a crash), the count is
recomputed from the data file, from the cached size on if only appends happened since.

Forks: a forked child inherits the descriptors that other threads of the parent had
open at that moment, and with them their ``flock`` locks, which would stay held until
the child exits. The child closes them at once (closing a copy never releases the
parent's lock); the store holds nothing else between calls.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime

from ._base import BaseSession, SessionInfo, stored_info, timestamp_before
from ._errors import BackendUnavailableError, ConfigurationError, CorruptRecordError, SessionError
from ._options import check_flag, check_path
from ._registry import StoreURL, parse_bool

if sys.platform == "win32":  # pragma: no cover - no flock on Windows
    _LOCKING = False
else:
    import fcntl

    _LOCKING = True

__all__ = ["FileSession"]

_DATA = ".jsonl"
_META = ".meta"
_MAX_NAMED_ID_BYTES = 154  # "s-" + 247 base32 characters + ".jsonl" = 255 bytes
_HEADER_MAX = 16 * 1024  # a header holds an id of at most 1024 bytes, JSON-escaped
_META_SIZE = 256
_TAIL_BLOCK = 32 * 1024
_CHUNK = 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_INVALID_META = b" " * (_META_SIZE - 1) + b"\n"


# Every descriptor this module has open, so that a forked child can close the copies
# it inherited. Opening and closing happen under the lock, and a fork waits for it.
_descriptors: set[int] = set()
_descriptors_lock = threading.Lock()


def _open(path: str, flags: int, mode: int = 0o777) -> int:
    with _descriptors_lock:
        fd = os.open(path, flags, mode)
        _descriptors.add(fd)
    return fd


def _close(fd: int) -> None:
    with _descriptors_lock:
        _descriptors.discard(fd)
        os.close(fd)


def _close_inherited() -> None:
    # The forking thread took the lock before the fork: no other thread was between an
    # open and its registration.
    for fd in _descriptors:
        with contextlib.suppress(OSError):
            os.close(fd)
    _descriptors.clear()
    _descriptors_lock.release()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(before=_descriptors_lock.acquire,
                        after_in_parent=_descriptors_lock.release,
                        after_in_child=_close_inherited)


class _CorruptFile(Exception):
    """A data file that is not in our format (mapped to CorruptRecordError)."""


@dataclasses.dataclass(frozen=True)
class _Meta:
    ino: int
    size: int
    count: int
    created_at: float
    updated_at: float


@functools.lru_cache(maxsize=1024)
def _stem(session_id: str) -> str:
    raw = session_id.encode("utf-8")
    if len(raw) <= _MAX_NAMED_ID_BYTES:
        return "s-" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    return "h-" + hashlib.sha256(raw).hexdigest()


def _id_from_stem(stem: str) -> str | None:
    """The id named by an ``s-`` stem, or None if the name is not one of ours."""
    text = stem[2:]
    try:
        session_id = base64.b32decode(text.upper() + "=" * (-len(text) % 8)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return session_id if session_id and _stem(session_id) == stem else None


def _header(session_id: str, created_at: float) -> bytes:
    value = {"session_layer": "file", "v": 1, "session_id": session_id, "created_at": created_at}
    return (json.dumps(value, separators=(",", ":")) + "\n").encode("ascii")


def _batch(records: list[str]) -> bytes:
    return (" \n".join(records) + "\n").encode("utf-8") if records else b""


def _dump_meta(meta: _Meta) -> bytes:
    text = (f'{{"v":1,"ino":{meta.ino},"size":{meta.size},"count":{meta.count},'
            f'"created_at":{meta.created_at!r},"updated_at":{meta.updated_at!r}}}').encode("ascii")
    return text.ljust(_META_SIZE - 1) + b"\n"


def _load_meta(data: bytes) -> _Meta | None:
    try:
        value = json.loads(data)
        if type(value) is not dict or value.get("v") != 1:
            return None
        return _Meta(int(value["ino"]), int(value["size"]), int(value["count"]),
                     float(value["created_at"]), float(value["updated_at"]))
    except (ValueError, KeyError, TypeError):
        return None


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _unfinished(line: bytes) -> bool:
    """A blank line, or a line of a batch that goes on (it ends with a space)."""
    return not line or line[-1:] == b" "


def _committed(lines: list[bytes]) -> int:
    """How many of ``lines`` (complete lines up to the end of a file) are committed.

    Dropped from the end: the lines of an unfinished batch and, if the last complete
    batch ends in a line that is not JSON (a write torn by a crash), that batch.
    """
    k = len(lines)
    while k and _unfinished(lines[k - 1]):
        k -= 1
    if k and not _is_json(lines[k - 1]):
        k -= 1
        while k and _unfinished(lines[k - 1]):
            k -= 1
    return k


def _records(lines: list[bytes]) -> list[str]:
    try:
        return [(line[:-1] if line[-1:] == b" " else line).decode("utf-8") for line in lines if line]
    except UnicodeDecodeError as error:
        raise _CorruptFile(f"a stored record is not UTF-8: {error}") from error


def _read_lines(fd: int, start: int, end: int) -> list[bytes]:
    """The complete lines between two offsets; a last line without newline is left out."""
    lines: list[bytes] = []
    rest = b""
    offset = start
    while offset < end:
        chunk = os.pread(fd, min(_CHUNK, end - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        lines.extend(parts)
    return lines


class FileSession(BaseSession):
    """Sessions as append-only JSON Lines files in ``directory``.

    An append writes its whole batch with one ``write`` under an exclusive file lock and
    never rewrites the file, so it costs O(batch) whatever the history length;
    ``get(limit=N)`` reads the file backwards in blocks until it has N messages. ``pop``
    and ``clear`` truncate in place; ``replace`` writes a new file and renames it over the
    old one. All of them are atomic under the lock, also between processes.

    :param directory: created with mode 0700 if missing (an existing directory keeps its
        permissions); files are created with mode 0600.
    :param fsync: also ``fsync`` each change (and the directory when a file is created,
        renamed or removed), so acknowledged writes survive a power loss or OS crash. By
        default a killed process loses nothing acknowledged, but the OS may lose the
        last writes if the machine itself goes down.

    Needs POSIX ``flock`` and hard links (local file systems on Linux, macOS, BSD); on
    Windows use :class:`~sessions.SQLiteSession`.
    """

    driver_errors = (OSError, _CorruptFile)

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False) -> None:
        if not _LOCKING:
            raise ConfigurationError(
                "FileSession needs POSIX file locks (fcntl.flock), which this platform lacks; "
                "use SQLiteSession instead"
            )
        self.fsync = check_flag("fsync", fsync)
        self.directory = os.path.abspath(check_path("directory", directory))
        self._call("open", None, self._open_directory)

    @classmethod
    def from_url(cls, url: StoreURL) -> FileSession:
        """``file:///absolute/dir`` or ``file:relative/dir``; option ``?fsync=true``."""
        options = url.options({"fsync": parse_bool})
        if url.host or url.username or url.password or url.port:
            raise ConfigurationError(
                f"file URL {url.redacted!r} names a host or credentials; "
                "use file:///absolute/dir or file:relative/dir"
            )
        if not url.path:
            raise ConfigurationError(f"file URL {url.redacted!r} names no directory")
        return cls(url.path, **options)

    def __repr__(self) -> str:
        return f"FileSession({self.directory!r}, fsync={self.fsync})"

    def _open_directory(self) -> None:
        parent = os.path.dirname(self.directory)
        os.makedirs(parent, exist_ok=True)
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(self.directory):
                raise ConfigurationError(f"{self.directory} exists and is not a directory") from None
        else:
            os.chmod(self.directory, 0o700)  # exactly 0700, whatever the umask

    # -- files and locks ------------------------------------------------------------------

    def _paths(self, session_id: str) -> tuple[str, str]:
        stem = os.path.join(self.directory, _stem(session_id))
        return stem + _DATA, stem + _META

    @contextlib.contextmanager
    def _locked(self, session_id: str, flags: int,
                exclusive: bool) -> Iterator[tuple[int, os.stat_result] | None]:
        """The session's data file open and locked, or None if the session is missing.

        flock locks the open file, not the name: if the file was replaced or removed while
        we waited for the lock, the lock is worthless, so open the current one again.
        """
        path = self._paths(session_id)[0]
        while True:
            try:
                fd = _open(path, flags | _NOFOLLOW)
            except FileNotFoundError:
                yield None
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                opened = os.fstat(fd)
                try:
                    current = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev):
                    continue
                if len(session_id.encode("utf-8")) > _MAX_NAMED_ID_BYTES:
                    self._read_header(fd, session_id)  # a digest name: make sure it is this id
                yield fd, opened
                return
            finally:
                _close(fd)

    @contextlib.contextmanager
    def _meta_file(self, session_id: str, writable: bool) -> Iterator[int | None]:
        path = self._paths(session_id)[1]
        try:
            fd = _open(path, (os.O_RDWR if writable else os.O_RDONLY) | _NOFOLLOW)
        except FileNotFoundError:
            if not writable:
                yield None
                return
            fd = self._create_private(path, exclusive=False)
        try:
            yield fd
        finally:
            _close(fd)

    def _create_private(self, path: str, exclusive: bool = True) -> int:
        flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | (os.O_EXCL if exclusive else 0)
        fd = _open(path, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        except BaseException:
            _close(fd)
            raise
        return fd

    def _fsync_directory(self) -> None:
        fd = _open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            _close(fd)

    def _read_header(self, fd: int, session_id: str) -> tuple[float, int]:
        """``(created_at, offset of the first record)``, after checking the file's id."""
        head = os.pread(fd, _HEADER_MAX, 0)
        end = head.find(b"\n")
        try:
            value = json.loads(head[:end]) if end >= 0 else None
        except ValueError:
            value = None
        if (type(value) is not dict or value.get("session_layer") != "file" or value.get("v") != 1
                or type(value.get("created_at")) not in (int, float)):
            raise _CorruptFile("the session file has no valid header line")
        if value.get("session_id") != session_id:
            raise _CorruptFile(f"the session file belongs to another session id: {value.get('session_id')!r}")
        return float(value["created_at"]), end + 1

    def _state(self, fd: int, opened: os.stat_result, meta_fd: int | None,
               session_id: str) -> tuple[_Meta, bool]:
        """The session's committed size, count and times, and whether the cache was right.

        ``size`` is where the committed records end: anything after it is a torn tail.
        """
        meta = None if meta_fd is None else _load_meta(os.pread(meta_fd, _META_SIZE, 0))
        rebuilt = meta is None or meta.ino != opened.st_ino or meta.size > opened.st_size
        if meta is not None and not rebuilt:
            if meta.size == opened.st_size:
                return meta, True
            # Only appends can have happened since: count what follows the cached size.
            start, count, created, updated = meta.size, meta.count, meta.created_at, meta.updated_at
        else:
            created, start = self._read_header(fd, session_id)
            count, updated = 0, created
        lines = _read_lines(fd, start, opened.st_size)
        k = _committed(lines)
        added = sum(1 for line in lines[:k] if line)
        if added or rebuilt:
            updated = max(updated, opened.st_mtime)  # the best estimate after a crash
        size = start + sum(len(line) + 1 for line in lines[:k])
        return _Meta(opened.st_ino, size, count + added, created, updated), False

    def _repaired(self, fd: int, opened: os.stat_result, meta_fd: int, session_id: str) -> _Meta:
        """For a writer holding the lock: the state, with any torn tail truncated."""
        meta, _ = self._state(fd, opened, meta_fd, session_id)
        if meta.size < opened.st_size:
            os.ftruncate(fd, meta.size)
            if self.fsync:
                os.fsync(fd)
        return meta

    def _save_meta(self, meta_fd: int, meta: _Meta) -> None:
        os.pwrite(meta_fd, _dump_meta(meta), 0)

    def _invalidate_meta(self, meta_fd: int) -> None:
        """Before a change that is not an append: a crash midway must not leave a cache
        that looks valid for the changed file."""
        os.pwrite(meta_fd, _INVALID_META, 0)
        if self.fsync:
            os.fsync(meta_fd)

    def _write_all(self, fd: int, payload: bytes, size: int) -> None:
        """Write ``payload`` at the end of a file of ``size`` bytes; on failure cut it back."""
        try:
            written = os.write(fd, payload)
            while written < len(payload):  # a short write (full disk, signal): finish or fail
                written += os.write(fd, memoryview(payload)[written:])
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise

    def _now(self, meta: _Meta) -> float:
        return max(time.time(), meta.created_at)

    def _install(self, session_id: str, records: list[str], created_at: float | None) -> bool:
        """Build a complete file (header and records) under a temporary name and put it in
        place: linked if ``created_at`` is None (a new session; False if one appeared
        meanwhile), renamed over the current file otherwise (the caller holds its lock)."""
        data_path, _ = self._paths(session_id)
        now = time.time()
        content = _header(session_id, now if created_at is None else created_at) + _batch(records)
        temporary = os.path.join(self.directory, f".tmp-{secrets.token_hex(8)}")
        fd = self._create_private(temporary)
        installed = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # newcomers wait until the cache is written
            self._write_all(fd, content, 0)
            if self.fsync:
                os.fsync(fd)
            try:
                if created_at is None:
                    os.link(temporary, data_path)
                else:
                    os.replace(temporary, data_path)
                installed = True
            except FileExistsError:
                return False
            with self._meta_file(session_id, writable=True) as meta_fd:
                assert meta_fd is not None
                meta = _Meta(os.fstat(fd).st_ino, len(content), len(records),
                             now if created_at is None else created_at, now)
                self._save_meta(meta_fd, meta)
            if self.fsync:
                self._fsync_directory()
            return True
        finally:
            if created_at is None or not installed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
            _close(fd)

    # -- the record operations -------------------------------------------------------------

    def _get(self, session_id: str, limit: int | None) -> list[str]:
        with self._locked(session_id, os.O_RDONLY, exclusive=False) as opened:
            if opened is None:
                return []
            fd, stat = opened
            if limit is None:
                start = self._read_header(fd, session_id)[1]
                lines = _read_lines(fd, start, stat.st_size)
                return _records(lines[:_committed(lines)])
            return self._tail(fd, stat.st_size, limit)

    def _tail(self, fd: int, size: int, limit: int) -> list[str]:
        """The last ``limit`` records, reading backwards in growing blocks."""
        position, buffer, block = size, b"", _TAIL_BLOCK
        while True:
            start = max(0, position - block)
            buffer = os.pread(fd, position - start, start) + buffer
            position = start
            # The first part is cut (or, at offset 0, the header); the last is after the
            # final newline (empty, or a torn line).
            complete = buffer.split(b"\n")[1:-1]
            lines = [line for line in complete[:_committed(complete)] if line]
            if len(lines) >= limit or position == 0:
                return _records(lines[-limit:])
            block *= 2

    def _append(self, session_id: str, records: list[str]) -> None:
        payload = _batch(records)
        while True:
            with self._locked(session_id, os.O_RDWR | os.O_APPEND, exclusive=True) as opened:
                if opened is None:
                    if self._install(session_id, records, None):
                        return
                    continue
                fd, stat = opened
                with self._meta_file(session_id, writable=True) as meta_fd:
                    assert meta_fd is not None
                    meta = self._repaired(fd, stat, meta_fd, session_id)
                    self._write_all(fd, payload, meta.size)
                    if self.fsync:
                        os.fsync(fd)
                    self._save_meta(meta_fd, dataclasses.replace(
                        meta, size=meta.size + len(payload), count=meta.count + len(records),
                        updated_at=self._now(meta),
                    ))
                return

    def _pop(self, session_id: str) -> str | None:
        with self._locked(session_id, os.O_RDWR, exclusive=True) as opened:
            if opened is None:
                return None
            fd, stat = opened
            with self._meta_file(session_id, writable=True) as meta_fd:
                assert meta_fd is not None
                meta = self._repaired(fd, stat, meta_fd, session_id)
                if meta.count == 0:
                    return None
                header_end = self._read_header(fd, session_id)[1]
                # The last line, and what precedes it (its newline must stay).
                block = _TAIL_BLOCK
                while True:
                    start = max(header_end - 1, meta.size - block)
                    tail = os.pread(fd, meta.size - start, start)
                    line_start = tail.rfind(b"\n", 0, len(tail) - 1)
                    if line_start >= 0 and (line_start >= 1 or start == header_end - 1):
                        break
                    block *= 2
                record = _records([tail[line_start + 1:-1]])[0]
                end = start + line_start + 1
                self._invalidate_meta(meta_fd)
                if tail[line_start - 1:line_start] == b" ":
                    # The new last line ended a batch that went on: make it a batch end
                    # before cutting ("{b} \n{c}\n" -> "{b}\n\n{c}\n" -> "{b}\n").
                    os.pwrite(fd, b"\n", end - 2)
                    end -= 1
                else:
                    while end - 2 >= max(header_end, start) and tail[end - 2 - start] == 0x0A:
                        end -= 1  # a blank line left by an interrupted pop
                os.ftruncate(fd, end)
                if self.fsync:
                    os.fsync(fd)
                self._save_meta(meta_fd, dataclasses.replace(
                    meta, size=end, count=meta.count - 1, updated_at=self._now(meta)))
                return record

    def _replace(self, session_id: str, records: list[str]) -> None:
        while True:
            with self._locked(session_id, os.O_RDWR, exclusive=True) as opened:
                if opened is None:
                    if self._install(session_id, records, None):
                        return
                    continue
                created_at = self._read_header(opened[0], session_id)[0]
                self._install(session_id, records, created_at)
                return

    def _clear(self, session_id: str) -> None:
        with self._locked(session_id, os.O_RDWR, exclusive=True) as opened:
            if opened is None:
                return
            fd, stat = opened
            created_at, header_end = self._read_header(fd, session_id)
            with self._meta_file(session_id, writable=True) as meta_fd:
                assert meta_fd is not None
                self._invalidate_meta(meta_fd)
                os.ftruncate(fd, header_end)
                if self.fsync:
                    os.fsync(fd)
                meta = _Meta(stat.st_ino, header_end, 0, created_at, created_at)
                self._save_meta(meta_fd, dataclasses.replace(meta, updated_at=self._now(meta)))

    def _delete(self, session_id: str) -> None:
        self._delete_locked(session_id, None)

    def _delete_if_idle(self, session_id: str, cutoff: datetime) -> bool:
        return self._delete_locked(session_id, timestamp_before(cutoff))

    def _delete_locked(self, session_id: str, before: float | None) -> bool:
        """Remove the session's files under its exclusive lock; with ``before``, only
        if it was last updated before that time (checked under the same lock)."""
        data_path, meta_path = self._paths(session_id)
        with self._locked(session_id, os.O_RDONLY, exclusive=True) as opened:
            if opened is None:
                return False
            if before is not None:
                with self._meta_file(session_id, writable=False) as meta_fd:
                    meta = self._state(opened[0], opened[1], meta_fd, session_id)[0]
                if meta.updated_at >= before:
                    return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(meta_path)
            os.unlink(data_path)
            if self.fsync:
                self._fsync_directory()
            return True

    def _current(self, session_id: str) -> _Meta | None:
        with self._locked(session_id, os.O_RDONLY, exclusive=False) as opened:
            if opened is None:
                return None
            with self._meta_file(session_id, writable=False) as meta_fd:
                return self._state(opened[0], opened[1], meta_fd, session_id)[0]

    def _count(self, session_id: str) -> int:
        meta = self._current(session_id)
        return 0 if meta is None else meta.count

    def _info(self, session_id: str) -> SessionInfo | None:
        meta = self._current(session_id)
        if meta is None:
            return None
        return stored_info(session_id, meta.count, meta.created_at, meta.updated_at)

    def _iter_sessions(self) -> Iterator[str]:
        with os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(_DATA):
                    continue
                stem = name[: -len(_DATA)]
                if stem.startswith("s-"):
                    session_id = _id_from_stem(stem)
                elif stem.startswith("h-"):
                    session_id = self._id_in_header(entry.path, stem)
                else:
                    continue
                if session_id is not None:
                    yield session_id

    def _id_in_header(self, path: str, stem: str) -> str | None:
        """The id in the header of a digest-named file (None if it vanished or is foreign)."""
        try:
            fd = _open(path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            head = os.pread(fd, _HEADER_MAX, 0)
        finally:
            _close(fd)
        try:
            value = json.loads(head[: head.find(b"\n")])
        except ValueError:
            return None
        session_id = value.get("session_id") if type(value) is dict else None
        if type(session_id) is not str or _stem(session_id) != stem:
            return None
        return session_id

    def _translate_error(self, error: BaseException, session_id: str | None,
                         operation: str) -> SessionError:
        if isinstance(error, _CorruptFile):
            return CorruptRecordError(f"{error} (in {self.directory})", session_id=session_id,
                                      operation=operation)
        return BackendUnavailableError(
            f"session directory {self.directory}: {error}", session_id=session_id, operation=operation
        )
