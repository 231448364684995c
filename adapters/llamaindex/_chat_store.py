"""``SessionChatStore``: a LlamaIndex ``BaseChatStore`` over a store."""

from __future__ import annotations

from typing import Any, Optional

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import (
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from llama_index.core.storage.chat_store.base import BaseChatStore

from sessions import ConfigurationError, InvalidArgumentError, Session, connect
from sessions._message import Message
from sessions.companions import (
    acompanions_hidden,
    adelete_conversation,
    companions_hidden,
    delete_conversation,
)
from sessions.view import model_message

from ._convert import check_session, from_canonical_all, to_canonical_all
from ._view import region, rewrite, view

__all__ = ["SessionChatStore", "check_index"]


def _check_window(window: object) -> int | None:
    if window is not None and (type(window) is not int or window < 1):
        raise ConfigurationError(f"window must be an int >= 1 or None, got {window!r}")
    return window


class SessionChatStore(BaseChatStore):
    """A LlamaIndex ``BaseChatStore`` over a session store; keys are session ids.

    Use it wherever LlamaIndex takes a chat store::

        chat_store = SessionChatStore(sessions.connect("sqlite:///chats.db"), window=200)
        memory = ChatMemoryBuffer.from_defaults(chat_store=chat_store, chat_store_key="alice")

    Every method has a native async twin (``aget_messages`` ...) that calls the
    store's async methods, so it never blocks the event loop.

    Reads return the *model view* of the stored messages (see
    :func:`sessions.view.model_view`): what ChatMemoryBuffer and the chat engines hand
    to the LLM is a valid Chat Completions history, whichever framework wrote it.
    Indices given to ``delete_message`` count in that view; writes keep what it does
    not show, and messages LlamaIndex writes back unchanged keep their stored form.

    ``window=N``: reads (``get_messages``, what ``delete_messages`` returns) view only
    the last N stored messages of a key, at O(N) cost, and may return fewer (tool
    results whose call is older are left out). ``add_message`` appends as always;
    ``set_messages`` and ``delete_message`` change only messages the window shows,
    never an older one. ``delete_messages`` deletes the whole key.

    Serialisation: a store opened with :meth:`from_url` serialises as its URL and
    window (``to_dict``/``model_dump``) and :meth:`from_dict` reopens it. A store built
    on a ``Session`` object cannot be serialised (it holds connections); dumping it
    raises :class:`ConfigurationError`. LlamaIndex's own ``load_chat_store`` (used by
    ``ChatMemoryBuffer.from_dict``) only knows ``SimpleChatStore``; reopen ours with
    :meth:`SessionChatStore.from_dict`.
    """

    window: Optional[int] = None  # noqa: UP045 - pydantic evaluates it on Python 3.10
    url: Optional[str] = None  # noqa: UP045

    _session: Session = PrivateAttr()

    def __init__(self, session: Session, *, window: int | None = None, url: str | None = None) -> None:
        check_session(session, type(self))
        super().__init__(window=_check_window(window), url=url)  # type: ignore[call-arg]
        self._session = session

    @classmethod
    def from_url(cls, url: str, *, window: int | None = None) -> SessionChatStore:
        """Open the store at ``url`` (see :func:`sessions.connect`); serialisable."""
        return cls(connect(url), window=window, url=url)

    @classmethod
    def class_name(cls) -> str:
        return "SessionChatStore"

    @property
    def session(self) -> Session:
        """The session store messages are kept in."""
        return self._session

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        # pydantic reports the ConfigurationError inside a PydanticSerializationError.
        return self.to_dict()

    def _require_url(self) -> str:
        if self.url is None:
            raise ConfigurationError(
                "this SessionChatStore was built from a Session object and cannot be "
                "serialised; open it with SessionChatStore.from_url(url) to make it serialisable"
            )
        return self.url

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """``{"window", "url", "class_name"}``; raises ConfigurationError without a URL."""
        return {"window": self.window, "url": self._require_url(), "class_name": self.class_name()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> SessionChatStore:
        """Reopen a store serialised by ``to_dict`` (it reconnects to its URL)."""
        if data.get("class_name", cls.class_name()) != cls.class_name() or not data.get("url"):
            raise ConfigurationError(
                "not a serialised SessionChatStore (expected class_name and url keys)"
            )
        return cls.from_url(data["url"], window=data.get("window"))

    # -- what each operation reads and writes (no I/O) -------------------------------------

    def _shown(self, stored: list[Message], key: str, operation: str) -> list[ChatMessage]:
        return from_canonical_all(view(stored, key, operation).messages, key, operation)

    def _set(self, history: list[Message], key: str, messages: list[ChatMessage]) -> list[Message] | None:
        """The history to store for ``set_messages``, or None if nothing changes."""
        new = to_canonical_all(messages, key, "replace")
        offset, shown = region(history, self.window, key, "replace")
        result = history[:offset] + rewrite(history[offset:], shown, new)
        return None if result == history else result

    def _delete(self, history: list[Message], key: str,
                idx: int) -> tuple[list[Message], ChatMessage] | None:
        """(history to store, message removed) for ``delete_message``, or None."""
        offset, shown = region(history, self.window, key, "delete_message")
        if idx < 0:
            idx += len(shown.messages)
        if not 0 <= idx < len(shown.messages):
            return None
        first, end = shown.span(idx, idx + 1)
        removed = from_canonical_all([shown.messages[idx]], key, "delete_message")[0]
        return history[:offset + first] + history[offset + end:], removed

    # -- sync ------------------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Make the shown history of ``key`` ``messages``, in one atomic replace.

        Messages that are what ``get_messages`` returned, unchanged, keep their stored
        form (other frameworks' keys included), wherever they are in the list; messages
        the view does not show stay; with a window, only the shown messages of the
        window are replaced and older messages are never touched. Costs a read and a
        rewrite of the whole history (nothing is written if nothing changes); a message
        another writer appends between the two is lost, as with every replace.
        """
        result = self._set(self._session.get(key), key, messages)
        if result is not None:
            self._session.replace(key, result)

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The model view of ``key``'s messages, oldest first (of the last ``window``
        stored messages if set)."""
        return self._shown(self._session.get(key, self.window), key, "get")

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append one message to ``key``."""
        self._session.append(key, to_canonical_all([message], key, "append"))

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete ``key`` completely (with its ``Memory`` marker); return its messages
        as ``get_messages`` would, or None if the key did not exist."""
        messages = self.get_messages(key)
        if not messages and self._session.info(key) is None:
            return None
        delete_conversation(self._session, key)
        return messages

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of what ``get_messages`` returns, with
        the stored messages it does not show that go with it.

        Negative indices count from the end; an index out of range returns None and
        changes nothing. Costs a read and an atomic rewrite of the whole history.
        """
        check_index(idx, key)
        planned = self._delete(self._session.get(key), key, idx)
        if planned is None:
            return None
        self._session.replace(key, planned[0])
        return planned[1]

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Remove and return the last message ``get_messages`` returns (None if none).

        When the last two stored messages are shown as plain messages (the usual
        end of a turn) this is one atomic ``pop``; otherwise as :meth:`delete_message`.
        """
        if _poppable(self._session.get(key, 2)):
            removed = self._session.pop(key)
            return None if removed is None else _popped(removed, key)
        return self.delete_message(key, -1)

    def get_keys(self) -> list[str]:
        """Every session id of the store (companion sessions excluded)."""
        return list(companions_hidden(self._session.list_sessions()))

    # -- async -----------------------------------------------------------------------------

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        result = self._set(await self._session.aget(key), key, messages)
        if result is not None:
            await self._session.areplace(key, result)

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return self._shown(await self._session.aget(key, self.window), key, "get")

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        await self._session.aappend(key, to_canonical_all([message], key, "append"))

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        messages = await self.aget_messages(key)
        if not messages and await self._session.ainfo(key) is None:
            return None
        await adelete_conversation(self._session, key)
        return messages

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        check_index(idx, key)
        planned = self._delete(await self._session.aget(key), key, idx)
        if planned is None:
            return None
        await self._session.areplace(key, planned[0])
        return planned[1]

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        if _poppable(await self._session.aget(key, 2)):
            removed = await self._session.apop(key)
            return None if removed is None else _popped(removed, key)
        return await self.adelete_message(key, -1)

    async def aget_keys(self) -> list[str]:
        return [key async for key in acompanions_hidden(self._session.alist_sessions())]


def _alone(message: Message) -> bool:
    """Shown by the model view wherever it is, and no part of a tool exchange."""
    return message.get("role") != "tool" and not message.get("tool_calls") \
        and model_message(message, extras=True) is not None


def _popped(removed: Message, key: str) -> ChatMessage:
    return from_canonical_all([model_message(removed, extras=True) or removed], key, "pop")[0]


def _poppable(last: list[Message]) -> bool:
    """Whether popping the last stored message deletes exactly the last shown one."""
    return bool(last) and all(_alone(message) for message in last)


def check_index(idx: object, key: str) -> None:
    if type(idx) is not int:
        raise InvalidArgumentError(
            f"idx must be an int, not {type(idx).__name__}", session_id=key, operation="delete_message"
        )



