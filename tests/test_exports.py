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
