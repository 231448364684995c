"""A store's life in a real process, on every backend and wrapper stack: after
``close()``, across event loops, across ``fork()``, and past 1,024 open descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sessions
from sessions import Session
from tests.backends import Backend
from tests.conformance.messages import USER, text


def _talks_to_a_server(backend: Backend) -> bool:
    base = backend.name.split("+")[-1]
    return base in ("conversations", "postgres") or base.startswith("redis")


def contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages]


def tagged(tag: str, count: int) -> list[str]:
    return [f"{tag}:{i}" for i in range(count)]


def user(content: str) -> dict[str, Any]:
    return {"role": "user", "content": content}


# -- after close() ---------------------------------------------------------------------------


def _sync_calls(store: Session) -> dict[str, Any]:
    return {
        "get": lambda: store.get("s"), "append": lambda: store.append("s", [USER]),
        "pop": lambda: store.pop("s"), "replace": lambda: store.replace("s", [USER]),
        "clear": lambda: store.clear("s"), "delete": lambda: store.delete("s"),
        "count": lambda: store.count("s"), "info": lambda: store.info("s"),
        "list_sessions": lambda: list(store.list_sessions()),
    }


def _async_calls(store: Session) -> dict[str, Any]:
    async def listed() -> list[str]:
        return [session_id async for session_id in store.alist_sessions()]

    return {
        "get": lambda: store.aget("s"), "append": lambda: store.aappend("s", [USER]),
        "pop": lambda: store.apop("s"), "replace": lambda: store.areplace("s", [USER]),
        "clear": lambda: store.aclear("s"), "delete": lambda: store.adelete("s"),
        "count": lambda: store.acount("s"), "info": lambda: store.ainfo("s"),
        "list_sessions": listed,
    }


def _operations(store: Session, operation: str) -> set[str]:
    """The operation a refusal names: a wrapper's pop (and an encrypting wrapper's
    replace and clear) reads the last messages first, and that read is refused."""
    return {operation, "get"} if isinstance(store, sessions.EncryptedSession | sessions.CompressedSession) \
        else {operation}


def test_a_closed_store_refuses_every_call(store: Session) -> None:
    store.append("s", [USER])
    asyncio.run(store.aappend("s", [USER]))  # async clients exist too
    store.close()
    for operation, call in _sync_calls(store).items():
        with pytest.raises(getattr(sessions, "StoreClosedError", sessions.SessionError)) as caught:
            call()
        assert caught.value.operation in _operations(store, operation)
    store.close()  # again: nothing happens

    async def refused() -> None:
        for operation, call in _async_calls(store).items():
            with pytest.raises(getattr(sessions, "StoreClosedError", sessions.SessionError)) as caught:
                await call()
            assert caught.value.operation in _operations(store, operation)
        await store.aclose()

    asyncio.run(refused())


async def test_an_async_closed_store_refuses_every_call(store: Session) -> None:
    await store.aappend("s", [USER])
    store.append("s", [USER])
    await store.aclose()
    await store.aclose()
    for call in _async_calls(store).values():
        with pytest.raises(getattr(sessions, "StoreClosedError", sessions.SessionError)):
            await call()
    for call in _sync_calls(store).values():
        with pytest.raises(getattr(sessions, "StoreClosedError", sessions.SessionError)):
            call()
    store.close()


def test_closing_during_calls_never_reopens(store: Session) -> None:
    """Calls racing with close() either complete or raise StoreClosedError; once one
    was refused, none succeeds again (a reopened connection would let it)."""
    errors: list[BaseException] = []
    started = threading.Barrier(4)

    def hammer(n: int) -> None:
        started.wait(30)
        refusals, i = 0, 0
        deadline = time.monotonic() + 60
        while refusals < 3 and time.monotonic() < deadline:
            try:
                store.append(f"t{n}", [text(i)])
                store.get(f"t{n}", limit=2)
            except sessions.StoreClosedError:
                refusals += 1
                continue
            except BaseException as error:  # anything else is a defect
                errors.append(error)
                return
            if refusals:
                errors.append(AssertionError("a call succeeded after the store was closed"))
                return
            i += 1
        if refusals < 3:
            errors.append(AssertionError("calls were still accepted long after close()"))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    started.wait(30)
    time.sleep(0.05)
    store.close()
    for thread in threads:
        thread.join(90)
    assert errors == []


def test_context_managers_close_the_store(backend: Backend, tmp_path: Path) -> None:
    with backend.open(tmp_path) as store, store as same:
        same.append("s", [USER])
    with pytest.raises(getattr(sessions, "StoreClosedError", sessions.SessionError)):
        store.get("s")

    async def use() -> Session:
        (tmp_path / "async").mkdir()
        with backend.open(tmp_path / "async") as opened:
            async with opened as same:
                await same.aappend("s", [USER])
            return opened

    closed = asyncio.run(use())
    with pytest.raises(getattr(sessions, "StoreClosedError", sessions.SessionError)):
        closed.count("s")


# -- event loops -------------------------------------------------------------------------------


async def _use_in_a_loop(store: Session, tag: str) -> None:
    await store.aappend("loops", [user(f"{tag}:{i}") for i in range(3)])
    await store.aappend(tag, [user(f"{tag}:{i}") for i in range(4)])
    assert contents(await store.aget(tag)) == tagged(tag, 4)
    assert contents(await store.aget(tag, limit=1)) == [f"{tag}:3"]
    assert await store.apop(tag) == user(f"{tag}:3")
    assert await store.acount(tag) == 3
    info = await store.ainfo(tag)
    assert info is not None and info.message_count == 3
    assert tag in [session_id async for session_id in store.alist_sessions()]


def test_asyncio_run_twice_and_more(store: Session) -> None:
    for round_ in range(3):
        asyncio.run(_use_in_a_loop(store, f"run{round_}"))
        store.append("loops", [user(f"sync{round_}")])
    expected = []
    for round_ in range(3):
        expected += [*tagged(f"run{round_}", 3), f"sync{round_}"]
    assert contents(store.get("loops")) == expected
    assert store.count("loops") == len(expected)


def test_an_event_loop_per_thread(store: Session) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def in_thread(n: int) -> None:
        async def main() -> None:
            await asyncio.to_thread(barrier.wait, 30)
            for round_ in range(2):
                await _use_in_a_loop(store, f"thread{n}-{round_}")

        try:
            asyncio.run(main())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    got = contents(store.get("loops"))
    assert len(got) == 4 * 2 * 3 == store.count("loops")
    for n in range(4):
        for round_ in range(2):
            tag = f"thread{n}-{round_}"
            assert [c for c in got if c.startswith(tag + ":")] == tagged(tag, 3)


def test_loops_that_outlive_each_other(store: Session) -> None:
    """Two loops driven by hand, alternately, both still open: each keeps its own
    connections (nothing is shared between them)."""
    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        for round_ in range(3):
            for n, loop in enumerate(loops):
                loop.run_until_complete(store.aappend("hand", [user(f"{round_}:{n}")]))
        for loop in loops:
            assert len(loop.run_until_complete(store.aget("hand"))) == 6
        loops[0].run_until_complete(store.aclose())
    finally:
        for loop in loops:
            loop.close()
    with pytest.raises(getattr(sessions, "StoreClosedError", sessions.SessionError)):
        store.get("hand")


# -- fork --------------------------------------------------------------------------------------


def _child(store: Session, tag: str, private: bool) -> None:
    """Runs in a forked child: writes and reads through the inherited store object."""
    for i in range(20):
        store.append(tag, [user(f"{tag}:{i}")])
    store.append("shared", [user(f"{tag}:{i}") for i in range(20, 25)])

    async def more() -> None:
        await store.aappend(tag, [user(f"{tag}:{i}") for i in range(20, 25)])
        assert await store.acount(tag) == 25

    asyncio.run(more())
    assert contents(store.get(tag)) == tagged(tag, 25)
    assert store.count(tag) == 25
    if private:
        assert contents(store.get("shared", limit=5)) == [f"{tag}:{i}" for i in range(20, 25)]
    store.close()  # closes the child's own connections, never the parent's


def test_forked_children_never_share_the_parents_connections(store: Session, backend: Backend) -> None:
    """Children forked while a parent thread is busy with the store (its locks and
    connections in use) each use connections of their own; the parent goes on."""
    store.append("shared", [user("parent:start")])
    asyncio.run(store.aappend("shared", [user("parent:async")]))
    stop = threading.Event()
    written: list[str] = []
    errors: list[BaseException] = []

    def busy_parent() -> None:
        i = 0
        while not stop.is_set():
            try:
                store.append("parent", [user(f"parent:{i}")])
                written.append(f"parent:{i}")
                store.get("parent", limit=3)
            except BaseException as error:
                errors.append(error)
                return
            i += 1

    thread = threading.Thread(target=busy_parent)
    thread.start()
    context = multiprocessing.get_context("fork")
    children = []
    try:
        while len(written) < 5 and thread.is_alive():
            threading.Event().wait(0.001)
        for n in range(3):
            child = context.Process(target=_child, args=(store, f"child{n}", backend.private_to_process))
            child.start()
            children.append(child)
        deadline = time.monotonic() + 120
        for child in children:
            child.join(max(0.0, deadline - time.monotonic()))
    finally:
        stop.set()
        thread.join(60)
        for child in children:
            if child.is_alive():
                child.kill()
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert errors == []
    assert contents(store.get("parent")) == written
    store.append("shared", [user("parent:end")])
    shared = contents(store.get("shared"))
    assert store.count("shared") == len(shared)
    if backend.private_to_process:
        assert shared == ["parent:start", "parent:async", "parent:end"]
        return
    for n in range(3):
        tag = f"child{n}"
        assert contents(store.get(tag)) == tagged(tag, 25)
        assert [c for c in shared if c.startswith(tag + ":")] == [f"{tag}:{i}" for i in range(20, 25)]
    assert shared[:2] == ["parent:start", "parent:async"] and shared[-1] == "parent:end"
    assert len(shared) == 3 + 3 * 5


# -- many open descriptors -----------------------------------------------------------------------


@contextlib.contextmanager
def descriptors_in_use(count: int = 1100) -> Iterator[None]:
    """Keep ``count`` descriptors open, so that what is opened next gets numbers past
    1024, where ``select()`` fails."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)


def _socket_numbers() -> list[int]:
    numbers = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                numbers.append(int(name))
    return numbers


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_descriptors_past_1024(backend: Backend, tmp_path: Path) -> None:
    with descriptors_in_use(), backend.open(tmp_path) as store:
        for i in range(5):  # later calls reuse idle connections, which are checked first
            store.append("s", [text(i)])
            assert store.get("s", limit=1) == [text(i)]
        assert store.count("s") == 5
        assert list(store.list_sessions()) == ["s"]

        async def more() -> None:
            for i in range(5, 10):
                await store.aappend("s", [text(i)])
                assert await store.aget("s", limit=1) == [text(i)]
            assert await store.acount("s") == 10
            assert [s async for s in store.alist_sessions()] == ["s"]

        asyncio.run(more())
        asyncio.run(store.aappend("s", [text(10)]))  # a second loop: new async connections
        assert store.get("s") == [text(i) for i in range(11)]
        if _talks_to_a_server(backend):
            assert max(_socket_numbers()) >= 1024


# -- exactly as appended: key order ----------------------------------------------------------------


def _reordered(message: dict[str, Any]) -> dict[str, Any]:
    """The same message with every dict's keys in reverse order."""
    def flip(value: Any) -> Any:
        if type(value) is dict:
            return {key: flip(value[key]) for key in reversed(list(value))}
        if type(value) is list:
            return [flip(item) for item in value]
        return value

    return flip(message)  # type: ignore[no-any-return]


MODEL_DUMP_TOOL_CALL = {  # openai-python's model_dump() order: id, function, type
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "call_9", "function": {"arguments": "{}", "name": "now"}, "type": "function"}],
}


def test_messages_read_back_with_their_keys_in_order(store: Session, backend: Backend) -> None:
    from tests.conformance.messages import ALL_SHAPES

    if "unknown_keys" in backend.lacks:
        pytest.skip(f"{backend.name} does not offer 'unknown_keys' (documented)")
    messages = [MODEL_DUMP_TOOL_CALL, *ALL_SHAPES, *(_reordered(m) for m in ALL_SHAPES)]
    store.append("order", messages)
    exact = [json.dumps(m) for m in messages]
    assert [json.dumps(m) for m in store.get("order")] == exact
    assert [json.dumps(m) for m in asyncio.run(store.aget("order", limit=len(messages)))] == exact
