"""The native runner: an agent loop over OpenAI Chat Completions with the session option.

::

    from openai import AsyncOpenAI
    from adapters.runner import Agent, Runner, function_tool
    import sessions

    agent = Agent("Assistant", instructions="You remember context.")
    runner = Runner(AsyncOpenAI())
    store = sessions.connect()
    result = await runner.run(agent, "My name is Alice", session=store, session_id="user-alice")
    result.final_output

Clients: :meth:`Runner.run` and :meth:`Runner.run_streamed` take an ``openai.AsyncOpenAI``
(an ``openai.OpenAI`` also works: its calls run in a worker thread); :meth:`Runner.run_sync`
needs an ``openai.OpenAI``.

The session option (``session=`` any :class:`sessions.Session`, ``session_id=``):

* before the run, ``get(session_id, limit=history_limit)`` loads the history (``aget`` in
  the async forms), which is placed after the system instructions and before the input;
* after a successful run, the new messages - the caller's input, every assistant message
  with its tool calls, every tool result and the final answer - are appended in one
  batch (``aappend`` in the async forms). System instructions are never stored;
* a failed run (model error, :class:`MaxTurnsExceeded`, cancellation) stores nothing, so
  the stored history never holds a half turn (e.g. tool calls without their results).
  If the final append itself fails, its :class:`sessions.SessionError` is raised.

What the model is sent is the *model view* of the history and the input
(:func:`sessions.view.model_view`): a valid Chat Completions request whatever other
frameworks stored. Messages that only carry Responses items are left out, parts and keys
the API does not take are removed, messages with nothing readable are skipped, and tool
results whose call lies outside the ``history_limit`` window (or calls whose results
were never stored) are dropped, so a window never starts inside a tool exchange. The
store keeps everything as it was.

A completion's ``audio`` (``id``, ``data``, ``expires_at``, ``transcript``) and
``annotations`` are stored with the assistant message; a later turn sends the audio's
transcript as the message's text (audio ids expire) and leaves the annotations out.

Errors derive from :class:`RunnerError`, itself a :class:`sessions.SessionError`::

    SessionError
    └── RunnerError
        ├── MaxTurnsExceeded   the tool-call loop did not end within max_turns
        └── ModelCallError     the model call failed (openai's exception is __cause__)

A tool that raises does not fail the run: the error text goes back to the model as the
tool's result, as do unknown tool names and invalid arguments.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union, cast

from sessions import InvalidArgumentError, MissingDependencyError, Session, SessionError
from sessions._message import Message, check_limit, encode_messages
from sessions.view import model_message, model_view

from ._tools import FunctionTool, ToolArgumentsError, function_tool

try:
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
except ImportError as error:
    raise MissingDependencyError("openai", "openai", feature="adapters.runner") from error

__all__ = [
    "Agent",
    "FunctionTool",
    "MaxTurnsExceeded",
    "ModelCallError",
    "RunComplete",
    "RunResult",
    "Runner",
    "RunnerError",
    "StreamEvent",
    "TextDelta",
    "ToolCallEvent",
    "ToolOutputEvent",
    "Usage",
    "function_tool",
]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_MAX_TURNS = 10
_RESERVED_SETTINGS = frozenset({"model", "messages", "tools", "stream", "stream_options"})


class RunnerError(SessionError):
    """Root of the runner's own errors."""


class MaxTurnsExceeded(RunnerError):
    """The model still asked for tools after ``max_turns`` model calls; nothing was stored."""

    def __init__(self, max_turns: int, *, session_id: str | None = None) -> None:
        self.max_turns = max_turns
        super().__init__(
            f"the run did not finish within max_turns={max_turns} model calls",
            session_id=session_id, operation="run",
        )


class ModelCallError(RunnerError):
    """The Chat Completions call failed or returned no choice; nothing was stored."""


# -- agents, results, events ------------------------------------------------------------


@dataclass
class Agent:
    """What the model is told and may do.

    ``instructions`` is a string or a function of the agent returning one; it becomes the
    system message of every request and is never stored. ``tools`` holds
    :class:`FunctionTool` objects (plain functions are wrapped with :func:`function_tool`).
    ``model_settings`` are passed to ``chat.completions.create`` as they are
    (``temperature``, ``max_tokens``, ``parallel_tool_calls``, ...).
    """

    name: str
    instructions: str | Callable[[Agent], str] | None = None
    model: str = DEFAULT_MODEL
    tools: Sequence[FunctionTool | Callable[..., Any]] = ()
    model_settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tools = [t if isinstance(t, FunctionTool) else function_tool(t) for t in self.tools]
        names = [t.name for t in tools]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise InvalidArgumentError(f"agent {self.name!r} has several tools named {duplicated}")
        reserved = sorted(_RESERVED_SETTINGS & set(self.model_settings))
        if reserved:
            raise InvalidArgumentError(f"model_settings may not set {reserved}; the runner sets them")
        self.tools = tools

    def tool_map(self) -> dict[str, FunctionTool]:
        return {t.name: t for t in self.tools if isinstance(t, FunctionTool)}

    def system_messages(self) -> list[Message]:
        text = self.instructions(self) if callable(self.instructions) else self.instructions
        return [{"role": "system", "content": text}] if text else []

    def request(self) -> dict[str, Any]:
        """The request parameters besides ``messages``."""
        params: dict[str, Any] = {"model": self.model, **self.model_settings}
        if self.tools:
            params["tools"] = [t.definition() for t in self.tool_map().values()]
        return params


@dataclass
class Usage:
    """Tokens summed over every model call of a run."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def add(self, usage: Any) -> None:
        self.requests += 1
        if usage is not None:
            self.input_tokens += usage.prompt_tokens or 0
            self.output_tokens += usage.completion_tokens or 0
            self.total_tokens += usage.total_tokens or 0


@dataclass
class RunResult:
    """The outcome of a run.

    ``new_messages`` is what was (or, without a session, would be) stored: the input,
    assistant messages, tool results and the final answer. ``messages`` is the whole
    conversation the model saw on its last call plus its answer: system instructions,
    history, input and new messages.
    """

    final_output: str | None
    new_messages: list[Message]
    messages: list[Message]
    usage: Usage
    turns: int


@dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's text as it arrives."""

    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """The model called a tool (emitted when its arguments are complete)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolOutputEvent:
    """A tool finished; ``output`` is what goes back to the model."""

    call_id: str
    name: str
    output: str
    is_error: bool


@dataclass(frozen=True)
class RunComplete:
    """The last event of a streamed run, after the new messages were stored."""

    result: RunResult


StreamEvent = Union[  # noqa: UP007 - a runtime alias on Python 3.10
    TextDelta, ToolCallEvent, ToolOutputEvent, RunComplete]


# -- the run itself, free of I/O: a generator that yields what it needs done ------------


@dataclass(frozen=True)
class _LoadHistory:
    limit: int | None


@dataclass(frozen=True)
class _CallModel:
    request: dict[str, Any]


@dataclass(frozen=True)
class _CallTools:
    calls: list[dict[str, Any]]


@dataclass(frozen=True)
class _SaveMessages:
    messages: list[Message]


_Step = Union[  # noqa: UP007
    _LoadHistory, _CallModel, _CallTools, _SaveMessages]
_Flow = Generator[_Step, Any, RunResult]


def _input_messages(input: str | Sequence[Message]) -> list[Message]:
    if isinstance(input, str):
        return [{"role": "user", "content": input}]
    messages = list(input)
    encode_messages(messages, operation="run")  # raises InvalidMessageError before any call
    return messages


def _run_flow(agent: Agent, new: list[Message], *, stored: bool, history_limit: int | None,
              max_turns: int, session_id: str | None) -> _Flow:
    """The tool-call loop. Yields steps; the shells perform them and send back results."""
    history: list[Message] = (yield _LoadHistory(history_limit)) if stored else []
    messages = agent.system_messages() + model_view([*history, *new])
    new = list(new)
    base = agent.request()
    usage = Usage()
    for turn in range(1, max_turns + 1):
        assistant, turn_usage = yield _CallModel({**base, "messages": messages})
        usage.add(turn_usage)
        sent = model_message(assistant)
        if sent is not None:
            messages.append(sent)
        new.append(assistant)
        calls = assistant.get("tool_calls")
        if not calls:
            if stored:
                yield _SaveMessages(new)
            return RunResult(assistant.get("content"), new, messages, usage, turn)
        results: list[Message] = yield _CallTools(calls)
        messages.extend(results)
        new.extend(results)
    raise MaxTurnsExceeded(max_turns, session_id=session_id)


def _assistant_message(completion: ChatCompletion) -> tuple[Message, Any]:
    if not completion.choices:
        raise ModelCallError("the model returned no choices", operation="run")
    reply = completion.choices[0].message
    message: Message = {"role": "assistant", "content": reply.content}
    if reply.refusal is not None:
        message["refusal"] = reply.refusal
    if reply.tool_calls:
        message["tool_calls"] = [call.model_dump(mode="json", exclude_none=True) for call in reply.tool_calls]
    if reply.audio is not None:
        message["audio"] = reply.audio.model_dump(mode="json", exclude_none=True)
    if reply.annotations:
        message["annotations"] = [note.model_dump(mode="json", exclude_none=True)
                                  for note in reply.annotations]
    return message, completion.usage


class _StreamAssembler:
    """Builds the assistant message of a streamed turn from its chunks."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: Any = None

    def add(self, chunk: ChatCompletionChunk) -> str | None:
        if chunk.usage is not None:
            self.usage = chunk.usage
        if not chunk.choices:
            return None
        delta = chunk.choices[0].delta
        for call in delta.tool_calls or ():
            entry = self.calls.setdefault(
                call.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if call.id:
                entry["id"] = call.id
            if call.function is not None:
                entry["function"]["name"] += call.function.name or ""
                entry["function"]["arguments"] += call.function.arguments or ""
        if delta.refusal:
            self.refusal.append(delta.refusal)
        if delta.content:
            self.text.append(delta.content)
            return delta.content
        return None

    def message(self) -> Message:
        message: Message = {"role": "assistant", "content": "".join(self.text) if self.text else None}
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return message


def _tool_message(call_id: str, output: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _error_text(error: BaseException) -> str:
    if isinstance(error, ToolArgumentsError):
        return f"Error: {error.message}"
    return f"Error: {type(error).__name__}: {error}"


def _output_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump_json"):
        return str(value.model_dump_json())
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class _PreparedCall:
    call_id: str
    name: str
    arguments: str
    tool: FunctionTool | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def result(self, value: Any = None, error: BaseException | None = None) -> ToolOutputEvent:
        if self.error is not None:
            return ToolOutputEvent(self.call_id, self.name, self.error, True)
        if error is not None:
            return ToolOutputEvent(self.call_id, self.name, _error_text(error), True)
        return ToolOutputEvent(self.call_id, self.name, _output_text(value), False)


def _prepare_calls(agent: Agent, calls: list[dict[str, Any]]) -> list[_PreparedCall]:
    tools = agent.tool_map()
    prepared = []
    for call in calls:
        function = call.get("function") or {}
        entry = _PreparedCall(str(call.get("id", "")), str(function.get("name", "")),
                              str(function.get("arguments") or ""))
        entry.tool = tools.get(entry.name)
        if entry.tool is None:
            entry.error = f"Error: there is no tool named {entry.name!r}"
        else:
            try:
                entry.kwargs = entry.tool.parse_arguments(entry.arguments)
            except ToolArgumentsError as error:
                entry.error = _error_text(error)
        prepared.append(entry)
    return prepared


async def _invoke_async(call: _PreparedCall) -> ToolOutputEvent:
    if call.tool is None or call.error is not None:
        return call.result()
    try:
        if call.tool.is_async:
            value = await call.tool.function(**call.kwargs)
        else:
            value = await asyncio.to_thread(call.tool.function, **call.kwargs)
    except Exception as error:
        return call.result(error=error)
    return call.result(value)


def _invoke_sync(call: _PreparedCall) -> ToolOutputEvent:
    if call.tool is None or call.error is not None:
        return call.result()
    try:
        value = call.tool.function(**call.kwargs)
    except Exception as error:
        return call.result(error=error)
    return call.result(value)


def _start(agent: Agent, input: str | Sequence[Message], session: Session | None,
           session_id: str | None, history_limit: int | None, max_turns: int) -> _Flow:
    """Check a run's options and input, and return its flow (nothing has run yet)."""
    if (session is None) != (session_id is None):
        raise InvalidArgumentError("pass both session= and session_id=, or neither", operation="run")
    if type(max_turns) is not int or max_turns < 1:
        raise InvalidArgumentError(f"max_turns must be an int >= 1, got {max_turns!r}", operation="run")
    check_limit(history_limit, session_id or "", "run")
    return _run_flow(agent, _input_messages(input), stored=session is not None,
                     history_limit=history_limit, max_turns=max_turns, session_id=session_id)


def _model_error(error: openai.OpenAIError) -> ModelCallError:
    return ModelCallError(f"the model call failed: {error}", operation="run")


# -- the I/O shells ---------------------------------------------------------------------


class Runner:
    """Runs agents over an ``openai`` client (see the module docstring for which client).

    Every run method takes ``session=`` and ``session_id=`` (both or neither),
    ``history_limit=`` (load only the last N stored messages) and ``max_turns=`` (model
    calls allowed in the tool-call loop, default 10).
    """

    def __init__(self, client: openai.OpenAI | openai.AsyncOpenAI) -> None:
        if not isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
            raise InvalidArgumentError(
                f"Runner needs an openai.OpenAI or openai.AsyncOpenAI client, not {type(client).__name__}"
            )
        self.client = client

    # -- async ----------------------------------------------------------------------

    async def _complete(self, request: dict[str, Any]) -> ChatCompletion:
        try:
            client = self.client
            if isinstance(client, openai.AsyncOpenAI):
                return cast(ChatCompletion, await client.chat.completions.create(**request))
            return cast(ChatCompletion, await asyncio.to_thread(
                lambda: client.chat.completions.create(**request)))
        except openai.OpenAIError as error:
            raise _model_error(error) from error

    async def _drive(self, agent: Agent, flow: _Flow, session: Session | None, session_id: str | None,
                     model_call: Callable[[dict[str, Any]], AsyncIterator[TextDelta | tuple[Message, Any]]],
                     ) -> AsyncIterator[StreamEvent]:
        """Perform the flow's steps, yielding every event; the last one is RunComplete."""
        value: Any = None
        while True:
            try:
                step = flow.send(value)
            except StopIteration as stop:
                yield RunComplete(stop.value)
                return
            if isinstance(step, _LoadHistory):
                assert session is not None and session_id is not None
                value = await session.aget(session_id, limit=step.limit)
            elif isinstance(step, _CallModel):
                async for event in model_call(step.request):
                    if isinstance(event, TextDelta):
                        yield event
                    else:
                        value = event
            elif isinstance(step, _CallTools):
                prepared = _prepare_calls(agent, step.calls)
                for call in prepared:
                    yield ToolCallEvent(call.call_id, call.name, call.arguments)
                outputs = await asyncio.gather(*(_invoke_async(c) for c in prepared))
                for output in outputs:
                    yield output
                value = [_tool_message(o.call_id, o.output) for o in outputs]
            else:
                assert session is not None and session_id is not None
                await session.aappend(session_id, step.messages)
                value = None

    async def run(self, agent: Agent, input: str | Sequence[Message], *,
                  session: Session | None = None, session_id: str | None = None,
                  history_limit: int | None = None, max_turns: int = DEFAULT_MAX_TURNS) -> RunResult:
        """Run ``agent`` on ``input`` (a string or a list of canonical messages).

        Async tools run concurrently on the event loop, sync tools in worker threads.
        """
        flow = _start(agent, input, session, session_id, history_limit, max_turns)

        async def call(request: dict[str, Any]) -> AsyncIterator[tuple[Message, Any]]:
            yield _assistant_message(await self._complete(request))

        async for event in self._drive(agent, flow, session, session_id, call):
            if isinstance(event, RunComplete):
                return event.result
        raise AssertionError("unreachable: the run flow always ends with a result")  # pragma: no cover

    async def run_streamed(self, agent: Agent, input: str | Sequence[Message], *,
                           session: Session | None = None, session_id: str | None = None,
                           history_limit: int | None = None,
                           max_turns: int = DEFAULT_MAX_TURNS) -> AsyncIterator[StreamEvent]:
        """Run like :meth:`run`, yielding events as they arrive.

        :class:`TextDelta` for each piece of text, :class:`ToolCallEvent` for each tool
        call once its arguments are complete, :class:`ToolOutputEvent` when the tools of
        a turn have finished, and last :class:`RunComplete` with the result (after the
        session was written). Needs an ``openai.AsyncOpenAI`` client.
        """
        if not isinstance(self.client, openai.AsyncOpenAI):
            raise InvalidArgumentError("run_streamed needs an openai.AsyncOpenAI client", operation="run")
        client = self.client
        flow = _start(agent, input, session, session_id, history_limit, max_turns)

        async def call(request: dict[str, Any]) -> AsyncIterator[TextDelta | tuple[Message, Any]]:
            assembler = _StreamAssembler()
            try:
                stream = await client.chat.completions.create(
                    **request, stream=True, stream_options={"include_usage": True}
                )
                async for chunk in stream:
                    text = assembler.add(chunk)
                    if text:
                        yield TextDelta(text)
            except openai.OpenAIError as error:
                raise _model_error(error) from error
            yield assembler.message(), assembler.usage

        async for event in self._drive(agent, flow, session, session_id, call):
            yield event

    # -- sync -------------------------------------------------------------------------

    def run_sync(self, agent: Agent, input: str | Sequence[Message], *,
                 session: Session | None = None, session_id: str | None = None,
                 history_limit: int | None = None, max_turns: int = DEFAULT_MAX_TURNS) -> RunResult:
        """The blocking form of :meth:`run`; needs an ``openai.OpenAI`` client.

        Sync tools run one after the other; async tools of one turn run concurrently on a
        private event loop (in a worker thread when called from inside a running loop).
        """
        if not isinstance(self.client, openai.OpenAI):
            raise InvalidArgumentError("run_sync needs an openai.OpenAI client", operation="run")
        client = self.client
        flow = _start(agent, input, session, session_id, history_limit, max_turns)
        value: Any = None
        while True:
            try:
                step = flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(step, _LoadHistory):
                assert session is not None and session_id is not None
                value = session.get(session_id, limit=step.limit)
            elif isinstance(step, _CallModel):
                try:
                    completion = client.chat.completions.create(**step.request)
                except openai.OpenAIError as error:
                    raise _model_error(error) from error
                value = _assistant_message(completion)
            elif isinstance(step, _CallTools):
                value = [_tool_message(o.call_id, o.output) for o in _run_tools_sync(agent, step.calls)]
            else:
                assert session is not None and session_id is not None
                session.append(session_id, step.messages)
                value = None


def _run_tools_sync(agent: Agent, calls: list[dict[str, Any]]) -> list[ToolOutputEvent]:
    prepared = _prepare_calls(agent, calls)
    outputs: dict[int, ToolOutputEvent] = {}
    concurrent_calls = [i for i, c in enumerate(prepared)
                        if c.tool is not None and c.error is None and c.tool.is_async]
    for index, call in enumerate(prepared):
        if index not in concurrent_calls:
            outputs[index] = _invoke_sync(call)
    if concurrent_calls:
        async def gather() -> list[ToolOutputEvent]:
            return await asyncio.gather(*(_invoke_async(prepared[i]) for i in concurrent_calls))

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            gathered = asyncio.run(gather())
        else:  # called from async code: the private loop needs a thread of its own
            with concurrent.futures.ThreadPoolExecutor(1) as worker:
                gathered = worker.submit(asyncio.run, gather()).result()
        for index, output in zip(concurrent_calls, gathered, strict=True):
            outputs[index] = output
    return [outputs[i] for i in range(len(prepared))]
