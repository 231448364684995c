"""Where ``Memory``'s archive mark lives: a sibling session of the conversation."""

from __future__ import annotations

__all__ = ["MEMORY_STATE_SUFFIX"]

MEMORY_STATE_SUFFIX = "::llamaindex-memory"
"""Appended to a session id to name the sibling session holding ``Memory``'s archive mark."""
