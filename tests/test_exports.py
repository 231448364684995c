"""Pin the public names, so a change to the API is a deliberate one."""

from __future__ import annotations

from pathlib import Path

import sessions

EXPECTED = {
    "MAX_SESSION_ID_BYTES", "BackendUnavailableError", "BaseSession", "ConfigurationError",
    "ConflictError", "ConversationsSession", "CorruptRecordError", "DecryptionError", "FileSession",
    "InvalidArgumentError",
    "InvalidMessageError", "InvalidSessionIdError", "MemorySession", "Message",
    "MissingDependencyError", "PostgresSession", "RedisSession", "SQLiteSession", "Session",
    "SessionError", "SessionInfo", "StoreClosedError",
    "StoreURL", "SupportsDeleteIfIdle", "__version__", "connect", "register_scheme", "registered_schemes",
    # wrappers, migration, maintenance
    "CompressedSession", "EncryptedSession", "MigrationReport", "amigrate", "aprune", "key_id",
    "migrate", "prune", "with_compression", "with_encryption",
    # what a model may be sent
    "model_view",
}


def test_exported_names() -> None:
    assert set(sessions.__all__) == EXPECTED
    for name in sessions.__all__:
        assert hasattr(sessions, name), name


def test_backends_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(sessions.MemorySession(), sessions.Session)
    assert isinstance(sessions.SQLiteSession(":memory:"), sessions.Session)
    assert isinstance(sessions.FileSession(tmp_path / "files"), sessions.Session)
    assert isinstance(sessions.with_compression(sessions.MemorySession()), sessions.Session)
    assert isinstance(sessions.with_encryption(sessions.MemorySession(), bytes(16)), sessions.Session)


def test_langchain_adapter_names() -> None:
    import pytest

    langchain = pytest.importorskip("adapters.langchain")
    assert set(langchain.__all__) == {
        "EXTRAS_KEY", "NAMESPACE", "SessionChatMessageHistory", "SessionHistoryMiddleware",
        "from_canonical", "session_history_factory", "to_canonical",
    }
    assert langchain.__all__ == sorted(langchain.__all__)



def test_llamaindex_adapter_names() -> None:
    import pytest

    pytest.importorskip("llama_index.core")
    from adapters import llamaindex

    assert llamaindex.__all__ == sorted(llamaindex.__all__)
    assert set(llamaindex.__all__) == {
        "MEMORY_STATE_SUFFIX", "NAMESPACE", "SessionChatStore",
        "SessionDBChatStore", "from_canonical", "to_canonical",
    }
    for name in llamaindex.__all__:
        assert hasattr(llamaindex, name), name



def test_runner_exported_names() -> None:
    import adapters.runner

    assert set(adapters.runner.__all__) == {
        "Agent", "FunctionTool", "MaxTurnsExceeded", "ModelCallError", "RunComplete", "RunResult",
        "Runner", "RunnerError", "StreamEvent", "TextDelta", "ToolCallEvent", "ToolOutputEvent",
        "Usage", "function_tool",
    }
    assert adapters.runner.__all__ == sorted(adapters.runner.__all__)
    for name in adapters.runner.__all__:
        assert hasattr(adapters.runner, name), name


def test_openai_agents_exported_names() -> None:
    import adapters.openai_agents

    assert adapters.openai_agents.__all__ == ["AgentsSession", "items_to_messages", "messages_to_items"]
    for name in adapters.openai_agents.__all__:
        assert hasattr(adapters.openai_agents, name), name
