"""The shared history as LangChain 1.x agent middleware (``create_agent``).

Needs the ``langchain`` package (the ``langchain`` extra); see
:class:`SessionHistoryMiddleware` for the contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Final, Optional, cast

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, RemoveMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from typing_extensions import NotRequired

from sessions._base import Session
from sessions._errors import InvalidArgumentError, MissingDependencyError
from sessions._message import Message, check_limit, check_session_id, encode_messages

from ._batches import langchain_to_stored
from ._cache import DEFAULT_CACHE_SIZE, HistoryCache, read_history

try:
    from langchain.agents.middleware.types import (
        AgentMiddleware,
        AgentState,
        ExtendedModelResponse,
        ModelRequest,
        ModelResponse,
        PrivateStateAttr,
    )
    from langgraph.config import get_config
    from langgraph.graph.message import REMOVE_ALL_MESSAGES
    from langgraph.runtime import Runtime
    from langgraph.types import Command
except ImportError as error:  # langchain missing, or older than 1.3
    raise MissingDependencyError(
        "langchain>=1.3", "langchain", feature="adapters.langchain.SessionHistoryMiddleware"
    ) from error

__all__ = ["SessionHistoryMiddleware"]

STORED_KEY: Final = "session_history_stored"
"""Private state key: the session id, whether the run has a thread (and so may be kept by
a checkpointer), and the ids of the state's messages that are stored."""

RUN_KEY: Final = "session_history_run"
"""Private state key: ids of the messages of the run in progress (``None`` between runs)."""


class SessionHistoryState(AgentState[Any]):
    """The agent state with the middleware's private bookkeeping (never input or output)."""

    session_history_stored: NotRequired[Annotated[dict[str, Any] | None, PrivateStateAttr]]
    session_history_run: NotRequired[Annotated[list[str] | None, PrivateStateAttr]]


def _run_input(messages: Sequence[AnyMessage], stored: dict[str, Any] | None,
               run: list[str] | None) -> list[AnyMessage]:
    """The messages of the state that are this run's input.

    Without a checkpointer the state holds only the input. With one, it also holds
    what the thread's earlier runs left: the stored messages (known by id) and, when
    the last run did not complete (it failed, or was interrupted and then not resumed),
    that run's messages, which are not carried on (the run stored nothing). Results of
    tool calls that run made count as its messages even if they were not recorded
    (a model call after them failed).
    """
    if stored is None:
        return list(messages)
    known = set(stored["ids"])
    unknown = [message for message in messages if message.id not in known]
    if run is None:
        return unknown
    left = set(run)
    calls: set[Any] = set()
    carried = []
    for message in unknown:
        if message.id in left:
            if isinstance(message, AIMessage):
                calls.update(call.get("id") for call in (*message.tool_calls, *message.invalid_tool_calls))
        elif not (isinstance(message, ToolMessage) and message.tool_call_id in calls):
            carried.append(message)
    return carried


def _apart_from(history: list[BaseMessage], taken: set[Any]) -> list[BaseMessage]:
    """``history`` with a copy under a new id of each message whose id the run's input
    also has (the history's messages are shared between reads: never changed here)."""
    if taken.isdisjoint(message.id for message in history):
        return history
    prefix = f"session-{uuid.uuid4().hex}-"
    return [message.model_copy(update={"id": f"{prefix}{index}"}) if message.id in taken else message
            for index, message in enumerate(history)]


class SessionHistoryMiddleware(AgentMiddleware[SessionHistoryState, Any, Any]):
    """Keep a ``create_agent`` conversation in a :class:`sessions.Session`.

    ::

        from langchain.agents import create_agent
        from adapters.langchain import SessionHistoryMiddleware

        agent = create_agent(model, tools, middleware=[SessionHistoryMiddleware(store)])
        agent.invoke({"messages": [{"role": "user", "content": "Hi"}]},
                     {"configurable": {"session_id": "user-alice"}})

    **Which session.** ``config["configurable"]["session_id"]``, else
    ``config["configurable"]["thread_id"]``; or the ``session_id=`` given here, which
    is then the only one (a run configured with another ``session_id`` is refused). A
    run with neither raises :class:`sessions.InvalidArgumentError` before the model is
    called.

    **Before the agent runs**, the stored history (``get(session_id, limit=limit)``)
    replaces whatever history the state held and is put in front of the run's input.
    It is the *model view* of what is stored (:func:`sessions.view.model_view`): what
    other frameworks wrote reads as LangChain messages, and a ``limit`` window never
    starts inside a tool exchange. The store is the source of truth: with a LangGraph
    checkpointer, messages added to the session elsewhere since the thread's last run
    appear, and a session cleared or rewritten elsewhere is not brought back from the
    checkpoint. The run's input is checked before the model is called: a message that
    cannot be stored raises :class:`sessions.InvalidMessageError` naming its index.

    **After the agent finishes**, the messages this run added to the state - its input,
    every assistant message with its tool calls, every tool result, the final answer,
    in order - are appended in one batch. Messages read from the store are never
    appended again, with or without a checkpointer. System prompts given to
    ``create_agent`` are not stored. Messages that other middleware adds to the state
    during the run (a summary, say) are part of the run and are stored with it.

    **A run that does not complete stores nothing**, as the native runner's session
    option: a failing model or tool, an error from another middleware, a LangGraph
    ``interrupt`` (human-in-the-loop review) that is not resumed. A run interrupted
    and then resumed (``Command(resume=...)``) is one run: everything is stored once
    it completes. With a checkpointer, a failed run can be resumed (``invoke(None,
    config)``) and is then stored; if the thread is given new input instead, the
    unfinished run's messages are dropped from its state, so the model never sees a
    half turn that the store does not hold.

    **Reading again costs little.** Every run reads the session from the store afresh.
    The LangChain messages built from it are kept (up to ``cache_size`` stored messages
    over all sessions, about 2 kB each; the least recently read session is dropped
    first; ``0`` keeps none) and used
    again only where the fresh read holds a message equal to the one they were built
    from, so a turn converts only what changed since the last. They are shared between
    runs: treat them as read-only, as every LangGraph state value.

    Sync (``invoke``, ``stream``) and async (``ainvoke``, ``astream``) runs both work;
    the async hooks call the store's async methods. Put this middleware first in
    ``middleware=[...]``: its history is then in place before other middleware runs,
    and it stores the run after all of them have finished.

    Bookkeeping lives in two private state keys (never part of the input or output):
    the ids of the state's messages that are stored, and the ids of the run in progress.
    """

    state_schema = SessionHistoryState

    def __init__(self, session: Session, *, session_id: str | None = None,
                 limit: int | None = None, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__()
        self.session = session
        self.session_id = None if session_id is None else check_session_id(session_id, "middleware")
        self.limit = check_limit(limit, session_id or "", "middleware")
        if type(cache_size) is not int or cache_size < 0:
            raise InvalidArgumentError(f"cache_size must be an int >= 0, not {cache_size!r}",
                                       operation="middleware")
        self._cache = HistoryCache(cache_size)

    def __repr__(self) -> str:
        options = "".join(f", {name}={value!r}" for name, value in
                          (("session_id", self.session_id), ("limit", self.limit)) if value is not None)
        return f"{type(self).__name__}({self.session!r}{options})"

    # -- which session ------------------------------------------------------------------

    def _session_of(self, configurable: dict[str, Any]) -> str:
        asked = configurable.get("session_id")
        if self.session_id is not None:
            if asked is not None and asked != self.session_id:
                raise InvalidArgumentError(
                    f"this middleware keeps session {self.session_id!r}; the run is configured"
                    f" for session {asked!r}", session_id=self.session_id, operation="run",
                )
            return self.session_id
        if asked is None:
            asked = configurable.get("thread_id")
            if isinstance(asked, (int, uuid.UUID)) and not isinstance(asked, bool):
                asked = str(asked)
        if asked is None:
            raise InvalidArgumentError(
                "no session for this run: pass config={'configurable': {'session_id': ...}}"
                " (or 'thread_id'), or SessionHistoryMiddleware(store, session_id=...)",
                operation="run",
            )
        return check_session_id(asked, "run")

    # -- the steps shared by the sync and async hooks ------------------------------------

    def _start(self, state: SessionHistoryState, config: RunnableConfig | None
               ) -> tuple[dict[str, Any], list[AnyMessage]]:
        if config is None:
            config = get_config()
        configurable = config.get("configurable") or {}
        session_id = self._session_of(configurable)
        run_input = _run_input(state["messages"], state.get(STORED_KEY), state.get(RUN_KEY))
        # Input the store would refuse is refused now, before the model is called.
        checked = langchain_to_stored(run_input, session_id=session_id, operation="run")
        encode_messages(checked, session_id, "run")
        # Only a thread's checkpoint can keep an unfinished run, so only then is it recorded.
        record = {"session_id": session_id, "ids": [], "thread": configurable.get("thread_id") is not None}
        return record, run_input

    def _started(self, record: dict[str, Any], stored: list[Message], run_input: list[AnyMessage]
                 ) -> dict[str, Any]:
        history = read_history(stored, session_id=record["session_id"], operation="run", cache=self._cache)
        history = _apart_from(history, {message.id for message in run_input})
        record["ids"] = [message.id for message in history]
        return {
            "messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *history, *run_input],
            STORED_KEY: record,
            RUN_KEY: [message.id for message in run_input],
        }

    @staticmethod
    def _recorded(request: ModelRequest[Any], response: ModelResponse[Any]
                  ) -> ModelResponse[Any] | ExtendedModelResponse[Any]:
        """The response, with the run's messages so far recorded (see ``_run_input``)."""
        state = cast(SessionHistoryState, request.state)
        run, stored = state.get(RUN_KEY), state.get(STORED_KEY)
        if run is None or stored is None or not stored["thread"]:
            return response  # not started by this middleware's before_agent, or no thread
        known = set(run)
        messages = state["messages"]
        index = len(messages)
        while index and messages[index - 1].id not in known:  # the run's newest messages
            index -= 1
        if index:
            added = [message.id for message in messages[index:]]
        else:  # no message of the run is left in the state (empty input, or rewritten)
            stored_ids = set(stored["ids"])
            added = [m.id for m in messages if m.id not in stored_ids and m.id not in known]
        for message in response.result:
            if message.id is None:
                message.id = str(uuid.uuid4())
            added.append(message.id)
        record: Command[Any] = Command(update={RUN_KEY: [*run, *added]})
        return ExtendedModelResponse(model_response=response, command=record)

    @staticmethod
    def _finish(state: SessionHistoryState) -> tuple[str, list[Message], dict[str, Any]] | None:
        stored = state.get(STORED_KEY)
        if stored is None or state.get(RUN_KEY) is None:
            return None  # this middleware's before_agent did not start the run
        session_id: str = stored["session_id"]
        known = set(stored["ids"])
        messages = state["messages"]
        batch = langchain_to_stored([m for m in messages if m.id not in known], session_id=session_id,
                                    operation="append")
        done = {STORED_KEY: {**stored, "ids": [m.id for m in messages]}, RUN_KEY: None}
        return session_id, batch, done

    # -- hooks ---------------------------------------------------------------------------

    def before_agent(self, state: SessionHistoryState, runtime: Runtime[Any],
                     config: Optional[RunnableConfig] = None,  # noqa: UP045 - LangGraph injects by this annotation
                     ) -> dict[str, Any] | None:
        record, run_input = self._start(state, config)
        return self._started(record, self.session.get(record["session_id"], limit=self.limit), run_input)

    async def abefore_agent(self, state: SessionHistoryState, runtime: Runtime[Any],
                            config: Optional[RunnableConfig] = None,  # noqa: UP045 - as before_agent
                            ) -> dict[str, Any] | None:
        record, run_input = self._start(state, config)
        stored = await self.session.aget(record["session_id"], limit=self.limit)
        return self._started(record, stored, run_input)

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        return self._recorded(request, handler(request))

    async def awrap_model_call(
        self, request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        return self._recorded(request, await handler(request))

    def after_agent(self, state: SessionHistoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        finished = self._finish(state)
        if finished is None:
            return None
        session_id, batch, done = finished
        if batch:
            self.session.append(session_id, batch)
        return done

    async def aafter_agent(self, state: SessionHistoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        finished = self._finish(state)
        if finished is None:
            return None
        session_id, batch, done = finished
        if batch:
            await self.session.aappend(session_id, batch)
        return done
