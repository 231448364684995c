"""Logic written once for the sync and the async contract.

A *flow* is a generator that yields calls (``call(store, "get", session_id, limit)``:
call that method of a store) and receives each result; it holds all the logic and does
no I/O. :func:`run` drives it through the stores' sync methods, :func:`arun` through
their async twins (``get`` -> ``aget``), so a rule lives in one place and cannot be
fixed in one twin only. An exception raised by a call is thrown into the flow at its
``yield``. (Calls are plain tuples: a flow step costs well under a microsecond.)
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

__all__ = ["Call", "Flow", "arun", "call", "run"]

T = TypeVar("T")

Call = tuple[Any, str, tuple[Any, ...], dict[str, Any]]
"""``(store, method name, args, kwargs)``, as made by :func:`call`."""

Flow = Generator[Call, Any, T]


def call(store: Any, name: str, *args: Any, **kwargs: Any) -> Call:
    """The step ``store.<name>(*args, **kwargs)``; on the async path
    ``await store.a<name>(*args, **kwargs)``."""
    return store, name, args, kwargs


def run(flow: Flow[T]) -> T:
    """Drive ``flow`` with the sync methods; return what it returns."""
    try:
        store, name, args, kwargs = next(flow)
        while True:
            try:
                result = getattr(store, name)(*args, **kwargs)
            except Exception as error:
                store, name, args, kwargs = flow.throw(error)
            else:
                store, name, args, kwargs = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def arun(flow: Flow[T]) -> T:
    """Drive ``flow`` with the async methods; return what it returns."""
    try:
        store, name, args, kwargs = next(flow)
        while True:
            try:
                result = await getattr(store, "a" + name)(*args, **kwargs)
            except Exception as error:
                store, name, args, kwargs = flow.throw(error)
            else:
                store, name, args, kwargs = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
