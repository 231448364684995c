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

from ._convert import check_session, from_canonical_all, to_canonical_all
from ._memory_state import MEMORY_STATE_SUFFIX

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

    ``window=N``: reads (``get_messages``, what ``delete_messages`` returns) give only
    the last N messages of a key, at O(N) cost; writes are unaffected. Indices given
    to ``delete_message`` count within that window (0 is the oldest message *shown*).

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

    # -- sync ------------------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the history of ``key`` atomically."""
        self._session.replace(key, to_canonical_all(messages, key, "replace"))

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The messages of ``key`` oldest first (only the last ``window`` if set)."""
        return from_canonical_all(self._session.get(key, self.window), key, "get")

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append one message to ``key``."""
        self._session.append(key, to_canonical_all([message], key, "append"))

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete ``key`` completely; return its messages as ``get_messages`` would,
        or None if the key did not exist."""
        messages = self.get_messages(key)
        if not messages and self._session.info(key) is None:
            return None
        self._session.delete(key)
        return messages

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of what ``get_messages`` returns.

        Negative indices count from the end; an index out of range returns None and
        changes nothing. Costs a read and an atomic rewrite of the whole history.
        """
        check_index(idx, key)
        history = self._session.get(key)
        position = _position(len(history), self.window, idx)
        if position is None:
            return None
        removed = history.pop(position)
        self._session.replace(key, history)
        return from_canonical_all([removed], key, "delete_message")[0]

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Remove and return the last message of ``key`` (None if it has none)."""
        removed = self._session.pop(key)
        return None if removed is None else from_canonical_all([removed], key, "pop")[0]

    def get_keys(self) -> list[str]:
        """Every session id of the store (``Memory`` state sessions excluded)."""
        return [key for key in self._session.list_sessions() if not key.endswith(MEMORY_STATE_SUFFIX)]

    # -- async -----------------------------------------------------------------------------

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        await self._session.areplace(key, to_canonical_all(messages, key, "replace"))

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return from_canonical_all(await self._session.aget(key, self.window), key, "get")

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        await self._session.aappend(key, to_canonical_all([message], key, "append"))

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        messages = await self.aget_messages(key)
        if not messages and await self._session.ainfo(key) is None:
            return None
        await self._session.adelete(key)
        return messages

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        check_index(idx, key)
        history = await self._session.aget(key)
        position = _position(len(history), self.window, idx)
        if position is None:
            return None
        removed = history.pop(position)
        await self._session.areplace(key, history)
        return from_canonical_all([removed], key, "delete_message")[0]

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        removed = await self._session.apop(key)
        return None if removed is None else from_canonical_all([removed], key, "pop")[0]

    async def aget_keys(self) -> list[str]:
        return [key async for key in self._session.alist_sessions()
                if not key.endswith(MEMORY_STATE_SUFFIX)]


def check_index(idx: object, key: str) -> None:
    if type(idx) is not int:
        raise InvalidArgumentError(
            f"idx must be an int, not {type(idx).__name__}", session_id=key, operation="delete_message"
        )


def _position(size: int, window: int | None, idx: int) -> int | None:
    """Position in the whole history of index ``idx`` within the visible window."""
    start = max(0, size - window) if window is not None else 0
    visible = size - start
    if idx < 0:
        idx += visible
    if not 0 <= idx < visible:
        return None
    return start + idx

