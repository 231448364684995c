"""The fidelity matrix: message kind, writer, rewriter and reader, every combination.

Each case writes one short conversation holding one kind of message through one
framework (the *writer*), lets a framework read the session and write it back unchanged
(the *rewriter*: what ``set_messages(get_messages())``, ``ChatMemoryBuffer.set``,
``Memory.aset``, ``history.messages = history.messages`` or an Agents SDK
``pop_item`` + ``add_items`` do), then reads it through a framework that hands it to a
model (the *reader*): the native runner, LangChain's ``ChatOpenAI`` (given the legacy
chat history, and as a ``create_agent`` agent with ``SessionHistoryMiddleware``), the
Agents SDK's Chat Completions model (all four against the local Chat Completions server, which
refuses invalid requests as the API does) and LlamaIndex's ``ChatMemoryBuffer`` and
``Memory`` (converted the way llama-index's OpenAI LLM converts messages). Every case
asserts:

* every write, read and write-back succeeds (readers are total);
* a write-back of an unchanged history leaves the store exactly as it was (a framework
  that re-added a message itself — the Agents SDK's pop and add — keeps its meaning);
* what the reader sends the model is a valid Chat Completions request (the strict
  validator of ``tests/chat_validator.py``);
* the reader sends what the model view of the stored history says, message for message:
  nothing lost, nothing duplicated, content preserved.

Known limits of the frameworks themselves (not of the adapters) are written down here
and checked as such: ``SDK_CHAT_LIMITS`` lists items the Agents SDK's Chat Completions
converter refuses (the Agents SDK reader must still get every item back exactly);
``framework_form`` says how a framework necessarily re-expresses a message it has no
form for (LangChain sends a custom tool call as langchain-openai reads one, the Agents
SDK sends a legacy function call as a tool call); ``LANGCHAIN_OPENAI_DROPS_REFUSAL``:
langchain-openai sends an assistant refusal as empty content (it keeps the refusal in
``additional_kwargs`` and never sends it), so those cases check that the refusal is
read, not what is sent.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import agents
import openai
import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from llama_index.core.memory import ChatMemoryBuffer, Memory

import sessions
from adapters.langchain import SessionChatMessageHistory, SessionHistoryMiddleware
from adapters.llamaindex import SessionChatStore, SessionDBChatStore
from adapters.openai_agents import AgentsSession, messages_to_items
from adapters.runner import Agent, Runner
from sessions.view import model_view
from tests.chat_server import ChatServer, Reply
from tests.chat_validator import problems
from tests.fidelity_kinds import agents_kinds, canonical_kinds, langchain_kinds, llamaindex_kinds
from tests.llamaindex_requests import FETCHED, openai_messages

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

SID = "matrix"
NEXT = "And now?"


# -- writers --------------------------------------------------------------------------------

async def _write_canonical(store: sessions.Session, conversation: list[Any]) -> None:
    store.append(SID, conversation)


async def _write_langchain(store: sessions.Session, conversation: list[Any]) -> None:
    SessionChatMessageHistory(store, SID).add_messages(conversation)


async def _write_llamaindex(store: sessions.Session, conversation: list[Any]) -> None:
    chat_store = SessionChatStore(store)
    for message in conversation:
        chat_store.add_message(SID, message)


async def _write_agents(store: sessions.Session, conversation: list[Any]) -> None:
    await AgentsSession(store, SID).add_items(conversation)


WRITERS: dict[str, tuple[Callable[[], dict[str, list[Any]]], Callable[..., Awaitable[None]]]] = {
    "canonical": (canonical_kinds, _write_canonical),
    "langchain": (langchain_kinds, _write_langchain),
    "llamaindex": (llamaindex_kinds, _write_llamaindex),
    "agents": (agents_kinds, _write_agents),
}


# -- rewriters: read, then write back unchanged -----------------------------------------------

async def _rewrite_none(store: sessions.Session) -> None:
    return None


async def _rewrite_langchain(store: sessions.Session) -> None:
    history = SessionChatMessageHistory(store, SID)
    history.messages = history.messages


async def _rewrite_llamaindex_store(store: sessions.Session) -> None:
    chat_store = SessionChatStore(store)
    chat_store.set_messages(SID, chat_store.get_messages(SID))


async def _rewrite_llamaindex_buffer(store: sessions.Session) -> None:
    memory = ChatMemoryBuffer.from_defaults(chat_store=SessionChatStore(store), chat_store_key=SID,
                                            token_limit=1_000_000)
    memory.set(memory.get_all())


async def _rewrite_llamaindex_memory(store: sessions.Session) -> None:
    memory = Memory.from_defaults(session_id=SID, chat_store=SessionDBChatStore(store), token_limit=1_000_000)
    await memory.aset(await memory.aget_all())


async def _rewrite_agents(store: sessions.Session) -> None:
    session = AgentsSession(store, SID)
    item = await session.pop_item()
    if item is not None:
        await session.add_items([item])


# name -> (rewrite, whether the store must come back exactly as it was)
REWRITERS: dict[str, tuple[Callable[[sessions.Session], Awaitable[None]], bool]] = {
    "none": (_rewrite_none, True),
    "langchain": (_rewrite_langchain, True),
    "llamaindex-store": (_rewrite_llamaindex_store, True),
    "llamaindex-buffer": (_rewrite_llamaindex_buffer, True),
    "llamaindex-memory": (_rewrite_llamaindex_memory, True),
    "agents-pop-add": (_rewrite_agents, False),
}


# -- readers: what each framework sends a model ------------------------------------------------

class Readers:
    """Every reader over one local Chat Completions server."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        self.langchain_model = ChatOpenAI(base_url=server.base_url, api_key="test",  # type: ignore[arg-type]
                                          model="test-model", max_retries=0)

    def _last_request(self) -> list[dict[str, Any]]:
        assert not self.server.invalid, f"the model was sent an invalid request: {self.server.invalid}"
        messages: list[dict[str, Any]] = self.server.requests[-1]["messages"]
        assert messages[-1]["role"] == "user", messages[-1]
        return messages[:-1]

    async def runner(self, store: sessions.Session) -> list[dict[str, Any]]:
        self.server.script(Reply("ok"))
        await Runner(self.client).run(Agent("matrix"), NEXT, session=store, session_id=SID)
        return self._last_request()

    async def langchain(self, store: sessions.Session) -> list[dict[str, Any]]:
        self.server.script(Reply("ok"))
        history = SessionChatMessageHistory(store, SID)
        # The sync client: langchain-openai shares one async HTTP client per process,
        # which cannot move between the tests' event loops.
        self.langchain_model.invoke([*history.messages, HumanMessage(NEXT)])
        return self._last_request()

    async def langchain_agent(self, store: sessions.Session) -> list[dict[str, Any]]:
        self.server.script(Reply("ok"))
        agent = create_agent(self.langchain_model, [], middleware=[SessionHistoryMiddleware(store)])
        agent.invoke({"messages": [HumanMessage(NEXT)]}, {"configurable": {"session_id": SID}})
        return self._last_request()

    async def llamaindex_buffer(self, store: sessions.Session) -> list[dict[str, Any]]:
        memory = ChatMemoryBuffer.from_defaults(chat_store=SessionChatStore(store), chat_store_key=SID,
                                                token_limit=1_000_000)
        return _checked(openai_messages(await memory.aget()))

    async def llamaindex_memory(self, store: sessions.Session) -> list[dict[str, Any]]:
        memory = Memory.from_defaults(session_id=SID, chat_store=SessionDBChatStore(store),
                                      token_limit=1_000_000)
        return _checked(openai_messages(await memory.aget()))

    async def agents(self, store: sessions.Session) -> list[dict[str, Any]]:
        self.server.script(Reply("ok"))
        model = agents.OpenAIChatCompletionsModel(model="test-model", openai_client=self.client)
        await agents.Runner.run(agents.Agent(name="matrix", model=model), NEXT,
                                session=AgentsSession(store, SID))
        return self._last_request()


def _checked(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = problems([*messages, {"role": "user", "content": NEXT}])
    assert not found, f"the model would be sent an invalid request: {found}"
    return messages


READERS = ["runner", "langchain", "langchain_agent", "llamaindex_buffer", "llamaindex_memory", "agents"]
LANGCHAIN_READERS = {"langchain", "langchain_agent"}

# Items the Agents SDK's own Chat Completions converter refuses (agents 0.24,
# ``Converter.items_to_messages``): a session holding them can only be sent to a Responses
# model. The adapter must still return them exactly.
SDK_CHAT_LIMITS = {("agents", "image-file-id"), ("agents", "hosted-tools"), ("agents", "custom-tool-call"),
                   ("canonical", "custom-tool-call")}
LANGCHAIN_OPENAI_DROPS_REFUSAL = {"refusal"}
# llama-index's OpenAI LLM sends a legacy function message without its name, which the
# API refuses: LlamaIndex reads such a history, but cannot send it to an OpenAI model.
LLAMAINDEX_OPENAI_LIMITS = {"legacy-function"}
LLAMAINDEX_READERS = {"llamaindex_buffer", "llamaindex_memory"}


def framework_form(reader: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` as ``reader``'s framework must express them to a model."""
    out = []
    for message in messages:
        if reader in LANGCHAIN_READERS and message.get("tool_calls"):
            message = {**message, "tool_calls": [
                {"id": c["id"], "type": "function", "function": {
                    "name": c["custom"]["name"], "arguments": json.dumps({"__arg1": c["custom"]["input"]})}}
                if c["type"] == "custom" else c for c in message["tool_calls"]]}
        if reader == "agents" and message.get("function_call"):
            call = message["function_call"]
            message = {"role": "assistant", "content": message.get("content"), "tool_calls": [
                {"id": call["name"], "type": "function", "function": call}]}
        if reader == "agents" and message["role"] == "function":
            message = {"role": "tool", "tool_call_id": message["name"], "content": message["content"]}
        if reader in LLAMAINDEX_READERS and message.get("refusal"):  # LlamaIndex has no refusal
            text = "".join(p for p in (message.get("content") or "", message["refusal"]) if p)
            message = {k: v for k, v in message.items() if k != "refusal"} | {"content": text}
        out.append(message)
    return out


# -- comparing what a model reads --------------------------------------------------------------

def _arguments(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def gist(message: dict[str, Any]) -> tuple[Any, ...]:
    """What a model reads in a message, with equivalent spellings made equal."""
    content = message.get("content")
    texts: list[str] = []
    media: list[str] = []
    refusal = message.get("refusal") or ""
    for part in ([{"type": "text", "text": content}] if isinstance(content, str) else content or []):
        if part["type"] == "text":
            texts.append(part["text"])
        elif part["type"] == "refusal":
            refusal += part["refusal"]
        else:
            body = dict(part[part["type"]])
            body.pop("detail", None)
            media.append(json.dumps([part["type"], body], sort_keys=True))
    calls = tuple(
        (call["id"], call.get("type", "function"),
         json.dumps((call.get("function") and {"name": call["function"]["name"],
                                              "arguments": _arguments(call["function"]["arguments"])})
                    or call.get("custom"), sort_keys=True))
        for call in message.get("tool_calls") or ())
    return (message["role"], "".join("".join(texts).split()), tuple(media), calls,
            message.get("tool_call_id"), "".join(refusal.split()), json.dumps(message.get("function_call")))


# -- the matrix -----------------------------------------------------------------------------------

def _cases() -> Iterator[Any]:
    for writer, (kinds, _) in WRITERS.items():
        for kind in kinds():
            for rewriter in REWRITERS:
                for reader in READERS:
                    yield pytest.param(writer, kind, rewriter, reader,
                                       id=f"{writer}-{kind}-{rewriter}-{reader}")


CASES = list(_cases())


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    agents.set_tracing_disabled(True)
    with ChatServer() as running:
        yield running


@pytest.fixture
async def readers(server: ChatServer) -> AsyncIterator[Readers]:
    """Readers with clients of this test's event loop."""
    server.invalid.clear()
    made = Readers(server)
    yield made
    await made.client.close()


@pytest.mark.parametrize(("writer", "kind", "rewriter", "reader"), CASES)
async def test_matrix(readers: Readers, writer: str, kind: str, rewriter: str, reader: str) -> None:
    store = sessions.MemorySession()
    kinds, write = WRITERS[writer]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await write(store, kinds()[kind])
        written = store.get(SID)
        rewrite, exact = REWRITERS[rewriter]
        await rewrite(store)
        rewritten = store.get(SID)
        if exact:
            assert rewritten == written, "a write-back of an unchanged history changed the store"
        else:
            assert rewritten[:-1] == written[:-1], "a write-back changed messages it did not touch"
        expected = [gist(m) for m in model_view(rewritten)]
        assert expected == [gist(m) for m in model_view(written)], "the write-back changed what a model reads"
        items = messages_to_items(rewritten)
        assert await AgentsSession(store, SID).get_items() is not None
        if reader == "agents" and (writer, kind) in SDK_CHAT_LIMITS:
            with pytest.raises(agents.UserError):
                await readers.agents(store)
            assert messages_to_items(store.get(SID)[: len(rewritten)]) == items
            return
        if reader in LLAMAINDEX_READERS and kind in LLAMAINDEX_OPENAI_LIMITS:
            read = SessionChatStore(store).get_messages(SID)
            assert len(read) == len(model_view(rewritten)), "LlamaIndex did not read the history"
            return
        if reader in LANGCHAIN_READERS and kind in LANGCHAIN_OPENAI_DROPS_REFUSAL:
            read = SessionChatMessageHistory(store, SID).messages
            assert any(m.additional_kwargs.get("refusal") for m in read), "the refusal was not read"
            return
        sent = await getattr(readers, reader)(store)
    expected = [gist(m) for m in framework_form(reader, model_view(rewritten))]
    # A document given by URL has no Chat Completions part, but LlamaIndex's LLMs fetch it.
    sent = [m for m in sent if not _only_fetched(m)]
    assert [gist(m) for m in sent] == expected, "the model was not sent what the history says"


def _only_fetched(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and bool(content) and all(
        part.get("type") == "file" and part["file"].get("file_data") == FETCHED for part in content)


def test_case_count() -> None:
    """The matrix is as large as its tables say (reported in the docs)."""
    assert len(CASES) == sum(len(kinds()) for kinds, _ in WRITERS.values()) * len(REWRITERS) * len(READERS)
