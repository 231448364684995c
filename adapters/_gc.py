"""Converting long histories into framework objects with the cyclic collector paused.

Reading a long history builds many small framework objects (pydantic models, their
dicts and lists). They hold no reference cycles, so reference counting frees them on
its own; Python's cyclic garbage collector, triggered again and again by so many new
objects, would only scan the process's whole heap each time. In a process that holds
much else (an application, other stores) that scanning was most of a 10,000-message
read, and made its cost depend on what else the process held. The collector is paused
only while the objects are built, only for long reads, and resumed at once, and only
if it was running.

This module imports no framework, so every adapter can use it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["PAUSE_FROM", "collector_paused"]

#: Conversions of at least this many messages run with the collector paused.
PAUSE_FROM = 1000


@contextlib.contextmanager
def collector_paused(count: int) -> Iterator[None]:
    """Pause the cyclic collector while ``count`` messages are converted, if it is
    running and ``count`` is at least :data:`PAUSE_FROM`; resume it afterwards."""
    if count < PAUSE_FROM or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
