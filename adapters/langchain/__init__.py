"""LangChain over the session layer: agent middleware, a chat history, message conversion.

Needs the ``langchain`` extra. LangChain 1.x agents keep their conversation in the
store through :class:`SessionHistoryMiddleware` (``langchain >= 1.3``)::

    from langchain.agents import create_agent
    from adapters.langchain import SessionHistoryMiddleware

    agent = create_agent(model, tools, middleware=[SessionHistoryMiddleware(store)])
    agent.invoke({"messages": [("user", "Hi")]}, {"configurable": {"session_id": "user-alice"}})

LCEL chains use the legacy path, :class:`SessionChatMessageHistory` (a
``BaseChatMessageHistory``; only ``langchain-core`` is needed). langchain-core deprecates
``RunnableWithMessageHistory`` since 1.3.3 and ``BaseChatMessageHistory`` since 1.6.4;
both go in 2.0::

    from langchain_core.runnables.history import RunnableWithMessageHistory
    from adapters.langchain import session_history_factory

    chain = RunnableWithMessageHistory(prompt | model, session_history_factory(store))
    chain.invoke({...}, config={"configurable": {"session_id": "user-alice"}})

History is stored as canonical Chat Completions messages, so LlamaIndex, the Agents SDK
and the OpenAI runner read what a LangChain chain wrote. :func:`to_canonical` and
:func:`from_canonical` convert one message; reading back what was added gives messages
equal (``==``) to the originals:

* The Chat Completions form carries what every framework understands: role (a
  ``SystemMessage`` marked ``__openai_role__="developer"`` is the ``developer`` role),
  content (LangChain v1 image, audio and file blocks become ``image_url``,
  ``input_audio`` and ``file`` parts through langchain-core's converter), ``name``,
  ``id``, ``tool_calls`` (arguments as JSON text; invalid tool calls too, as LangChain
  sends them), ``tool_call_id`` and, on assistant messages, ``refusal`` and
  ``function_call`` from ``additional_kwargs``.
* What that form cannot hold is kept under the message's ``"langchain"`` key:
  ``additional_kwargs``, ``response_metadata``, ``usage_metadata``, a tool message's
  ``status`` and ``artifact``, the error of each invalid tool call, a ``ChatMessage``'s
  own role (its canonical role is that role if it is a canonical one, else ``user``),
  extra pydantic fields, and the exact content list when the parts lose something
  (content blocks with no Chat Completions form, such as reasoning or ``tool_use``
  blocks, live only there; a converted block keeps only what the part lacks, never a
  second copy of its data).
* Keys of a canonical message that LangChain has no field for (written by another
  framework, e.g. ``metadata`` or another framework's namespace) are read into
  ``additional_kwargs["canonical_extras"]`` and written back from there as top-level
  keys, so they survive a LangChain read and write. Tool calls LangChain cannot hold
  exactly (custom calls, read as langchain-openai reads them; other call types) ride in
  ``additional_kwargs["canonical_tool_calls"]`` and are written back while unchanged.

Readers are total: every message a store accepts reads, whichever framework wrote or
rewrote it. The ``"langchain"`` key is a cache of LangChain's exact form, used part by
part while it still matches the message in meaning and dropped (never an error) once
another framework has rewritten the message. :class:`SessionChatMessageHistory` hands a
model the *model view* of the history (:func:`sessions.model_view`) and writes back only
what LangChain changed (``docs/fidelity.md``).

Message chunks are stored as the message they complete
(``langchain_core.messages.message_chunk_to_message``). ``RemoveMessage`` and other
message classes have no canonical form and raise :class:`InvalidMessageError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessions._errors import MissingDependencyError

try:
    import langchain_core  # noqa: F401 - the extra this adapter belongs to
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError(
        "langchain-core", "langchain", feature="adapters.langchain"
    ) from error

from ._convert import EXTRAS_KEY, NAMESPACE, from_canonical, to_canonical
from ._history import SessionChatMessageHistory, session_history_factory

if TYPE_CHECKING:
    from ._middleware import SessionHistoryMiddleware

__all__ = [
    "EXTRAS_KEY",
    "NAMESPACE",
    "SessionChatMessageHistory",
    "SessionHistoryMiddleware",
    "from_canonical",
    "session_history_factory",
    "to_canonical",
]


def __getattr__(name: str) -> Any:
    # The middleware needs the langchain package, which imports LangGraph: imported on
    # first use, so the history and the converters work with langchain-core alone.
    if name == "SessionHistoryMiddleware":
        from ._middleware import SessionHistoryMiddleware

        return SessionHistoryMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
