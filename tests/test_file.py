"""FileSession specifics: names, permissions, the file format, crash repair, URLs."""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessions
from sessions import FileSession
from sessions import file as file_module
from tests.conformance.messages import text

NAME = re.compile(r"^(s-[a-z2-7]+|h-[0-9a-f]{64})\.(jsonl|meta)$")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileSession]:
    with FileSession(tmp_path / "store") as opened:
        yield opened


def data_file(store: FileSession, session_id: str) -> Path:
    return Path(store._paths(session_id)[0])


def meta_file(store: FileSession, session_id: str) -> Path:
    return Path(store._paths(session_id)[1])


def every_path(root: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(root):
        found += [Path(directory, name) for name in dirs + files]
    return found


# -- names: no id leaves the directory ---------------------------------------------------------

ADVERSARIAL = [
    "../escape", "../../../../../../tmp/escape", "/etc/passwd", "/", "./", "..", ".", "a/../../b",
    "C:\\x", "\\\\server\\share", "~root", "$HOME", "CON", "nul", "s-abc.jsonl", "x.meta",
    ".tmp-0000", "🦜" * 256, "é" * 512, "x" * 1024, "x" * 154, "x" * 155, "\n\r\t", "A", "a",
]


def test_adversarial_ids_never_create_anything_outside(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with FileSession(root) as store:
        for i, session_id in enumerate(ADVERSARIAL):
            store.append(session_id, [text(i)])
            store.replace(session_id, [text(i), text(i + 100)])
            store.pop(session_id)
        for i, session_id in enumerate(ADVERSARIAL):
            assert store.get(session_id) == [text(i)], session_id
        assert sorted(store.list_sessions()) == sorted(ADVERSARIAL)
    for path in every_path(tmp_path):
        assert path.parent == root or path == root, path
        if path != root:
            assert NAME.match(path.name), path.name
            assert len(path.name.encode()) <= 255
    assert len(list(root.glob("*.jsonl"))) == len(ADVERSARIAL)  # "A" and "a" are two files
    with FileSession(root) as store:
        for session_id in ADVERSARIAL:
            store.delete(session_id)
    assert list(root.iterdir()) == []


def test_long_ids_use_a_digest_name_and_keep_the_exact_id(store: FileSession) -> None:
    short, long = "x" * 154, "x" * 155
    store.append(short, [text(0)])
    store.append(long, [text(1)])
    assert data_file(store, short).name.startswith("s-")
    assert data_file(store, long).name.startswith("h-")
    header = json.loads(data_file(store, long).read_bytes().split(b"\n")[0])
    assert header["session_id"] == long
    assert sorted(store.list_sessions()) == [short, long]


def test_digest_file_of_another_id_is_refused(store: FileSession) -> None:
    mine, other = "m" * 200, "o" * 200
    store.append(other, [text(1)])
    os.rename(data_file(store, other), data_file(store, mine))
    with pytest.raises(sessions.CorruptRecordError, match="another session id") as caught:
        store.get(mine)
    assert caught.value.session_id == mine and caught.value.operation == "get"
    with pytest.raises(sessions.CorruptRecordError):
        store.append(mine, [text(2)])
    with pytest.raises(sessions.CorruptRecordError):
        store.delete(mine)
    assert data_file(store, mine).exists()
    assert list(store.list_sessions()) == []  # the file does not name the id its digest names


def test_foreign_files_are_not_listed(store: FileSession) -> None:
    store.append("real", [text(0)])
    directory = Path(store.directory)
    for name in ["notes.txt", "s-!!!.jsonl", "s-MFRGG.jsonl", "h-zz.jsonl", "other.jsonl"]:
        (directory / name).write_text("{}\n")
    assert list(store.list_sessions()) == ["real"]


# -- permissions --------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_directory_0700_and_files_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with FileSession(tmp_path / "deep" / "store") as store:
            store.append("a", [text(0)])
            store.replace("b", [text(1)])
            store.replace("a", [text(2)])
            store.clear("b")
            paths = every_path(Path(store.directory))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "deep" / "store").stat().st_mode) == 0o700
    assert len(paths) == 4
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_existing_directory_is_used_as_it_is(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir(mode=0o750)
    os.chmod(target, 0o750)
    FileSession(target).append("s", [text(0)])
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    with pytest.raises(sessions.ConfigurationError):
        FileSession(target / next(target.iterdir()).name)


# -- the file format ---------------------------------------------------------------------------


def test_every_line_is_json_and_batches_are_marked(store: FileSession) -> None:
    store.append("s", [text(0), text(1), text(2)])
    store.append("s", [text(3)])
    lines = data_file(store, "s").read_bytes().split(b"\n")
    assert lines[-1] == b""
    header = json.loads(lines[0])
    assert header["session_layer"] == "file" and header["session_id"] == "s"
    assert [json.loads(line) for line in lines[1:-1]] == [text(i) for i in range(4)]
    assert [line.endswith(b" ") for line in lines[1:-1]] == [True, True, False, False]


def test_append_only_appends(store: FileSession) -> None:
    store.append("s", [text(i) for i in range(50)])
    path = data_file(store, "s")
    before, inode = path.read_bytes(), path.stat().st_ino
    store.append("s", [text(50)])
    after = path.read_bytes()
    assert path.stat().st_ino == inode
    assert after.startswith(before) and after[len(before):] == json.dumps(
        text(50), separators=(",", ":")).encode() + b"\n"


# -- crash safety ------------------------------------------------------------------------------

TORN_TAILS = {
    "partial line": b'{"role":"user","cont',
    "unfinished batch": b'{"role":"user","content":"x"} \n{"role":"user","content":"y"} \n',
    "unfinished batch and partial line": b'{"role":"user","content":"x"} \n{"role":"us',
    "invalid JSON last line": b'{"role":"user","content":"x\x00\x00\x00\n',
    "zeros": b"\x00" * 700,
    "batch ending in invalid JSON": b'{"role":"user","content":"x"} \n{"role":"user","c}\n',
}


@pytest.mark.parametrize("tail", TORN_TAILS.values(), ids=TORN_TAILS.keys())
def test_torn_tail_is_ignored_then_repaired(store: FileSession, tail: bytes) -> None:
    store.append("s", [text(0), text(1)])
    store.append("s", [text(2)])
    path = data_file(store, "s")
    clean = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(tail)
    assert store.get("s") == [text(0), text(1), text(2)]
    assert store.get("s", limit=2) == [text(1), text(2)]
    assert store.count("s") == 3
    assert path.read_bytes() == clean + tail  # readers never write
    store.append("s", [text(3)])
    assert store.get("s") == [text(i) for i in range(4)]
    assert path.read_bytes() == clean + json.dumps(text(3), separators=(",", ":")).encode() + b"\n"
    assert store.count("s") == 4


def test_torn_tail_with_a_stale_cache_counts_right(store: FileSession) -> None:
    store.append("s", [text(0)])
    cached = meta_file(store, "s").read_bytes()
    store.append("s", [text(1), text(2)])  # "crash" before the cache is written:
    meta_file(store, "s").write_bytes(cached)
    with data_file(store, "s").open("ab") as handle:
        handle.write(b'{"role":"user","content":"x"} \n{"rol')
    assert store.count("s") == 3
    store.pop("s")
    assert store.get("s") == [text(0), text(1)] and store.count("s") == 2


@pytest.mark.parametrize("damage", ["missing", "garbage", "other file"])
def test_a_lost_or_wrong_cache_is_recomputed(store: FileSession, damage: str) -> None:
    store.append("s", [text(0), text(1)])
    store.append("s", [text(2)])
    created = store.info("s")
    assert created is not None
    meta = meta_file(store, "s")
    if damage == "missing":
        meta.unlink()
    elif damage == "garbage":
        meta.write_bytes(b"\x00garbage")
    else:
        store.append("t", [text(9)] * 7)
        meta.write_bytes(meta_file(store, "t").read_bytes())
    info = store.info("s")
    assert info is not None and info.message_count == 3 and info.created_at == created.created_at
    store.append("s", [text(3)])
    assert store.count("s") == 4 and store.get("s") == [text(i) for i in range(4)]


def test_corrupt_line_in_the_middle_raises(store: FileSession) -> None:
    store.append("s", [text(0), text(1), text(2)])
    store.append("s", [text(3)])
    path = data_file(store, "s")
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"role": broken} '
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(sessions.CorruptRecordError) as caught:
        store.get("s")
    assert caught.value.session_id == "s" and caught.value.operation == "get"
    assert store.get("s", limit=2) == [text(2), text(3)]  # the tail is still readable
    with pytest.raises(sessions.CorruptRecordError):
        store.get("s", limit=3)
    lines[2] = b"\xff\xfe not utf-8 "
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(sessions.CorruptRecordError):
        store.get("s")


def test_a_file_without_header_raises(store: FileSession) -> None:
    store.append("s", [text(0)])
    data_file(store, "s").write_bytes(b'{"role":"user","content":"no header"}\n')
    meta_file(store, "s").unlink()
    for call in (lambda: store.get("s"), lambda: store.count("s"), lambda: store.append("s", [text(1)])):
        with pytest.raises(sessions.CorruptRecordError, match="header"):
            call()


def test_pop_splits_a_batch_in_place(store: FileSession) -> None:
    store.append("s", [text(0), text(1), text(2)])
    inode = data_file(store, "s").stat().st_ino
    assert store.pop("s") == text(2)
    assert data_file(store, "s").stat().st_ino == inode
    assert store.get("s") == [text(0), text(1)] and store.count("s") == 2
    store.append("s", [text(3)])
    assert store.get("s") == [text(0), text(1), text(3)]
    assert [store.pop("s") for _ in range(4)] == [text(3), text(1), text(0), None]
    assert store.info("s") is not None and store.get("s") == []


def test_an_interrupted_pop_leaves_every_record(store: FileSession) -> None:
    store.append("s", [text(0), text(1), text(2)])
    path = data_file(store, "s")
    # The state between a pop's two steps: the batch ends early, then a blank line.
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:-1] + b"\n"
    path.write_bytes(b"\n".join(lines))
    meta_file(store, "s").write_bytes(b" " * 10)
    assert store.get("s") == [text(0), text(1), text(2)] and store.count("s") == 3
    assert store.get("s", limit=3) == [text(0), text(1), text(2)]
    assert store.pop("s") == text(2)
    assert store.pop("s") == text(1)
    assert store.get("s") == [text(0)]
    assert path.read_bytes().endswith(json.dumps(text(0), separators=(",", ":")).encode() + b"\n")


def test_replace_swaps_the_file_and_keeps_creation_time(store: FileSession) -> None:
    store.append("s", [text(0)])
    before = store.info("s")
    store.replace("s", [text(5), text(6)])
    after = store.info("s")
    assert before is not None and after is not None
    assert after.created_at == before.created_at and after.message_count == 2
    assert not [p for p in Path(store.directory).iterdir() if p.name.startswith(".tmp-")]


def test_big_last_record_and_limit(store: FileSession) -> None:
    big = {"role": "user", "content": "y" * 200_000}
    store.append("s", [text(i) for i in range(1000)])
    store.append("s", [big])
    assert store.get("s", limit=2) == [text(999), big]
    assert store.get("s", limit=1001)[0] == text(0)
    assert store.pop("s") == big and store.count("s") == 1000


# -- fsync and options -------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [True, False])
def test_fsync_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: bool) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(file_module.os, "fsync", counting_fsync)
    store = FileSession(tmp_path / "store", fsync=flag)
    store.append("s", [text(0)])  # new file: the file and the directory
    created = len(synced)
    store.append("s", [text(1)])
    appended = len(synced) - created
    store.pop("s")
    store.clear("s")
    store.delete("s")
    if flag:
        assert created == 2 and appended == 1 and len(synced) > created + appended
    else:
        assert synced == []
    assert FileSession(tmp_path / "store", fsync=flag).get("s") == []


def test_bad_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(sessions.ConfigurationError):
        FileSession(tmp_path, fsync="yes")  # type: ignore[arg-type]
    monkeypatch.setattr(file_module, "_LOCKING", False)
    with pytest.raises(sessions.ConfigurationError, match="SQLiteSession"):
        FileSession(tmp_path)


def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = sessions.connect(f"file://{tmp_path}/abs")
    assert isinstance(absolute, FileSession)
    assert absolute.directory == str(tmp_path / "abs") and absolute.fsync is False
    monkeypatch.chdir(tmp_path)
    relative = sessions.connect("file:rel/dir?fsync=true")
    assert isinstance(relative, FileSession) and relative.fsync is True
    assert relative.directory == str(tmp_path / "rel" / "dir")
    relative.append("s", [text(0)])
    assert FileSession("rel/dir").get("s") == [text(0)]
    spaced = sessions.connect("file:with%20space")
    assert isinstance(spaced, FileSession) and spaced.directory == str(tmp_path / "with space")
    for bad in ["file://host/dir", "file:", "file:///x?fsync=maybe", "file:///x?colour=blue"]:
        with pytest.raises(sessions.ConfigurationError):
            sessions.connect(bad)


@pytest.mark.parametrize("change", ["replaced", "deleted"])
def test_a_writer_that_waited_for_a_changed_file_uses_the_new_one(store: FileSession, change: str) -> None:
    """flock locks an open file, not a name: a writer that opened the file, then waited
    while another process replaced or removed it, must not write into the old one."""
    store.append("s", [text(0)])
    path = data_file(store, "s")
    holder = os.open(path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process in the middle of a change
    writer = threading.Thread(target=store.append, args=("s", [text(1)]))
    writer.start()
    time.sleep(0.3)  # the writer has opened the old file and waits for its lock
    if change == "replaced":
        staged = path.with_name(".tmp-test")
        staged.write_bytes(path.read_bytes())
        os.replace(staged, path)
    else:
        meta_file(store, "s").unlink()
        path.unlink()
    fcntl.flock(holder, fcntl.LOCK_UN)
    os.close(holder)
    writer.join(10)
    assert not writer.is_alive()
    expected = [text(0), text(1)] if change == "replaced" else [text(1)]
    assert store.get("s") == expected and store.count("s") == len(expected)


def test_append_and_windowed_reads_touch_only_the_end(store: FileSession,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """O(batch) appends and O(N) windowed reads, checked by the bytes read, not by a clock."""
    store.append("s", [text(i) for i in range(20_000)])
    size = data_file(store, "s").stat().st_size
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        data = real_pread(fd, length, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    store.append("s", [text(20_000)])
    assert sum(read) <= 1024  # the cache only
    read.clear()
    assert store.get("s", limit=50) == [text(i) for i in range(19_951, 20_001)]
    assert store.count("s") == 20_001
    assert sum(read) <= 64 * 1024 < size // 10
    read.clear()
    assert store.get("s", limit=2000)[0] == text(18_001)
    line = size / 20_000
    assert sum(read) <= 4 * 2000 * line < size  # blocks double: at most 4x what is needed


def _sleep_in_child(seconds: float) -> None:
    time.sleep(seconds)


def test_a_forked_child_never_holds_the_parents_file_locks(tmp_path: Path) -> None:
    """A thread holds a session's lock when another thread forks: the child closes its
    copy of that descriptor at once, so the parent's next writer does not wait for the
    child to exit."""
    import multiprocessing

    store = FileSession(tmp_path / "s")
    store.append("s", [{"role": "user", "content": "first"}])
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with store._locked("s", os.O_RDWR, exclusive=True):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait(10)
    child = multiprocessing.get_context("fork").Process(target=_sleep_in_child, args=(5,))
    child.start()
    release.set()
    holder.join(10)
    started = time.monotonic()
    store.append("s", [{"role": "user", "content": "second"}])
    waited = time.monotonic() - started
    child.join(30)
    assert waited < 2, f"the append waited {waited:.1f}s for the child's copy of the lock"
    assert [m["content"] for m in store.get("s")] == ["first", "second"]
