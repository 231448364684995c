"""Descriptor checks that work for every descriptor number.

``select.select()`` refuses descriptors of 1024 and above (``FD_SETSIZE``), which any
busy server process reaches; ``poll()`` has no such limit.
"""

from __future__ import annotations

import select
import sys

__all__ = ["readable_now"]


if sys.platform != "win32" and hasattr(select, "poll"):
    def readable_now(fileno: int) -> bool:
        """True when ``fileno`` has data, EOF or an error waiting (never blocks)."""
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        return bool(poller.poll(0))
else:  # pragma: no cover - Windows: select() takes any socket handle there
    def readable_now(fileno: int) -> bool:
        """True when ``fileno`` has data, EOF or an error waiting (never blocks)."""
        readable, _, _ = select.select([fileno], [], [], 0)
        return bool(readable)
