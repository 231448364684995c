"""Property test: any sequence of operations gives the same results as MemorySession."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import sessions
from sessions import Session

SESSION_IDS = st.sampled_from(["alice", "bob", "../x", "🦜"])
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False)
)
EXTRAS = st.dictionaries(
    st.text(min_size=1, max_size=6).filter(
        lambda k: k not in ("role", "content", "tool_call_id", "name", "tool_calls")
    ),
    st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=6,
    ),
    max_size=2,
)


@st.composite
def messages(draw: st.DrawFn, with_extras: bool) -> dict[str, Any]:
    role = draw(st.sampled_from(["system", "user", "assistant", "tool", "developer"]))
    message: dict[str, Any] = {"role": role, "content": draw(st.text(max_size=20))}
    if role == "tool":
        message["tool_call_id"] = draw(st.text(min_size=1, max_size=8))
    if role == "assistant" and draw(st.booleans()):
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": draw(st.text(max_size=10))},
            }
        ]
    if with_extras:
        message.update(draw(EXTRAS))
    return message


def run_against_memory(store: Session, with_extras: bool = True, examples: int = 25) -> None:
    batches = st.lists(messages(with_extras), max_size=4)

    class Compare(RuleBasedStateMachine):
        @initialize()
        def reset(self) -> None:
            self.model = sessions.MemorySession()
            for session_id in list(store.list_sessions()):
                store.delete(session_id)

        @rule(session_id=SESSION_IDS, batch=batches)
        def append(self, session_id: str, batch: list[dict[str, Any]]) -> None:
            store.append(session_id, batch)
            self.model.append(session_id, batch)

        @rule(session_id=SESSION_IDS, limit=st.none() | st.integers(0, 6))
        def get(self, session_id: str, limit: int | None) -> None:
            assert store.get(session_id, limit=limit) == self.model.get(session_id, limit=limit)

        @rule(session_id=SESSION_IDS)
        def pop(self, session_id: str) -> None:
            assert store.pop(session_id) == self.model.pop(session_id)

        @rule(session_id=SESSION_IDS, batch=batches)
        def replace(self, session_id: str, batch: list[dict[str, Any]]) -> None:
            store.replace(session_id, batch)
            self.model.replace(session_id, batch)

        @rule(session_id=SESSION_IDS)
        def clear(self, session_id: str) -> None:
            store.clear(session_id)
            self.model.clear(session_id)

        @rule(session_id=SESSION_IDS)
        def delete(self, session_id: str) -> None:
            store.delete(session_id)
            self.model.delete(session_id)

        @invariant()
        def same_sessions_and_counts(self) -> None:
            if not hasattr(self, "model"):
                return
            assert sorted(store.list_sessions()) == sorted(self.model.list_sessions())
            for session_id in self.model.list_sessions():
                assert store.count(session_id) == self.model.count(session_id)

    run_state_machine_as_test(
        Compare,
        settings=settings(
            max_examples=examples,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_backend_behaves_like_memory(store: Session, backend: Any) -> None:
    run_against_memory(store, with_extras="unknown_keys" not in backend.lacks)
