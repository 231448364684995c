"""Logic written once for the sync and the async contract.

A *flow* is a generator that yields calls (``call(store, "get", session_id, limit)``:
call that method of a store) and receives each result; it holds all the logic and does
no I/O. :func:`run` drives it through the stores' sync methods, :func:`arun` through
their async twins (``get`` -> ``aget``), so a rule lives in one place and cannot be
fixed in one twin only. An exception raised by a call is thrown into the flow at its
``yield``. (Calls are plain tuples: a flow step costs well under a microsecond.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = ["Call", "Flow", "adrive", "arun", "call", "drive", "run"]

T = TypeVar("T")
S = TypeVar("S")

Call = tuple[Any, str, tuple[Any, ...], dict[str, Any]]
"""``(store, method name, args, kwargs)``, as made by :func:`call`."""

Flow = Generator[Call, Any, T]


def call(store: Any, name: str, *args: Any, **kwargs: Any) -> Call:
    """The step ``store.<name>(*args, **kwargs)``; on the async path
    ``await store.a<name>(*args, **kwargs)``."""
    return store, name, args, kwargs


def drive(flow: Generator[S, Any, T], do: Callable[[S], Any]) -> T:
    """Drive ``flow``, performing each step it yields with ``do``; return what it returns.
    An exception ``do`` raises is thrown into the flow at the step's ``yield``."""
    try:
        step = next(flow)
        while True:
            try:
                result = do(step)
            except Exception as error:
                step = flow.throw(error)
            else:
                step = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(flow: Generator[S, Any, T], do: Callable[[S], Awaitable[Any]]) -> T:
    """:func:`drive`, awaiting each step."""
    try:
        step = next(flow)
        while True:
            try:
                result = await do(step)
            except Exception as error:
                step = flow.throw(error)
            else:
                step = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def _sync(step: Call) -> Any:
    store, name, args, kwargs = step
    return getattr(store, name)(*args, **kwargs)


def _async(step: Call) -> Awaitable[Any]:
    store, name, args, kwargs = step
    return getattr(store, "a" + name)(*args, **kwargs)  # type: ignore[no-any-return]


def run(flow: Flow[T]) -> T:
    """Drive ``flow`` with the sync methods; return what it returns."""
    return drive(flow, _sync)


async def arun(flow: Flow[T]) -> T:
    """Drive ``flow`` with the async methods; return what it returns."""
    return await adrive(flow, _async)
