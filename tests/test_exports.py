"""Pin the public names, so a change to the API is a deliberate one."""

from __future__ import annotations

import sessions

EXPECTED = {
    "MAX_SESSION_ID_BYTES", "BackendUnavailableError", "BaseSession", "ConfigurationError",
    "ConflictError", "CorruptRecordError", "DecryptionError", "InvalidArgumentError",
    "InvalidMessageError", "InvalidSessionIdError", "MemorySession", "Message",
    "MissingDependencyError", "SQLiteSession", "Session", "SessionError", "SessionInfo",
    "StoreURL", "__version__", "connect", "register_scheme", "registered_schemes",
}


def test_exported_names() -> None:
    assert set(sessions.__all__) == EXPECTED
    for name in sessions.__all__:
        assert hasattr(sessions, name), name


def test_backends_satisfy_the_protocol() -> None:
    assert isinstance(sessions.MemorySession(), sessions.Session)
    assert isinstance(sessions.SQLiteSession(":memory:"), sessions.Session)


def test_llamaindex_adapter_names() -> None:
    import pytest

    pytest.importorskip("llama_index.core")
    from adapters import llamaindex

    assert llamaindex.__all__ == sorted(llamaindex.__all__)
    assert set(llamaindex.__all__) == {
        "EXTRAS_KEY", "MEMORY_STATE_SUFFIX", "NAMESPACE", "SessionChatStore",
        "SessionDBChatStore", "from_canonical", "to_canonical",
    }
    for name in llamaindex.__all__:
        assert hasattr(llamaindex, name), name
