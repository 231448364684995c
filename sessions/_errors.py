"""The exceptions raised by session-layer.

Every error raised by this library derives from :class:`SessionError`, which carries
the session id and the operation that failed. Errors from a storage driver are chained
as ``__cause__``::

    SessionError
    ├── InvalidMessageError          (also a ValueError)  a message failed validation
    ├── InvalidSessionIdError        (also a ValueError)  a session id is not acceptable
    ├── InvalidArgumentError         (also a ValueError)  any other bad argument or option
    ├── ConfigurationError           (also a ValueError)  a bad URL, key or constructor option
    ├── MissingDependencyError       (also an ImportError) an optional extra is not installed
    ├── BackendUnavailableError      the store could not be reached or timed out
    ├── CorruptRecordError           a stored record cannot be decoded
    ├── DecryptionError              a record cannot be authenticated or decrypted
    ├── ConflictError                a target already holds different data (migration)
    └── StoreClosedError             the store was used after close()/aclose()
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "CorruptRecordError",
    "DecryptionError",
    "InvalidArgumentError",
    "InvalidMessageError",
    "InvalidSessionIdError",
    "MissingDependencyError",
    "SessionError",
    "StoreClosedError",
]


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters; a value whose repr
    fails (an int too long to write in decimal) is named by its type."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class SessionError(Exception):
    """Root of every error raised by session-layer.

    ``session_id`` and ``operation`` say which session and which call failed; either
    may be ``None`` when the error is not about one session (a bad URL, say).
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.message = message
        self.session_id = session_id
        self.operation = operation
        super().__init__(message)

    def __str__(self) -> str:
        context = []
        if self.operation is not None:
            context.append(f"operation={self.operation}")
        if self.session_id is not None:
            shown = self.session_id if len(self.session_id) <= 80 else self.session_id[:77] + "..."
            context.append(f"session_id={shown!r}")
        if not context:
            return self.message
        return f"{self.message} ({', '.join(context)})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only context across pickling (multiprocessing, logging handlers).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[SessionError], message: str, state: dict[str, object]) -> SessionError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidMessageError(SessionError, ValueError):
    """A message is not a valid canonical message; nothing of its batch was stored.

    ``index`` is the position of the offending message in the batch (``None`` when the
    batch itself is malformed) and ``reason`` says what is wrong with it.
    """

    def __init__(
        self,
        reason: str,
        *,
        index: int | None = None,
        session_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.index = index
        self.reason = reason
        where = "message batch" if index is None else f"message at index {index}"
        super().__init__(f"invalid {where}: {reason}", session_id=session_id, operation=operation)


class InvalidSessionIdError(SessionError, ValueError):
    """A session id is not a string this library accepts (see ``check_session_id``)."""


class InvalidArgumentError(SessionError, ValueError):
    """An argument other than a message or a session id is invalid (e.g. ``limit=-1``)."""


class ConfigurationError(SessionError, ValueError):
    """A URL, key or constructor option cannot be used."""


class MissingDependencyError(SessionError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, *, feature: str | None = None) -> None:
        self.package = package
        self.extra = extra
        what = feature or package
        super().__init__(
            f"{what} needs the optional package {package!r}; "
            f"install it with: pip install 'session-layer[{extra}]'"
        )


class BackendUnavailableError(SessionError):
    """The storage backend could not be reached, or did not answer in time.

    A write that raised this may or may not have been applied when the failure
    happened after the request was sent; it is never applied partially.
    """


class CorruptRecordError(SessionError):
    """A stored record cannot be decoded into a message."""


class DecryptionError(SessionError):
    """A stored record could not be authenticated or decrypted (wrong key, tampering,
    or a record that belongs to another session). Nothing is returned or skipped."""


class ConflictError(SessionError):
    """A target session already holds messages that differ from the source."""


class StoreClosedError(SessionError):
    """The store was used after :meth:`~sessions.Session.close` (or ``aclose``).

    A closed store never reopens connections, clients or files: every call raises this
    error, and a call that was already running when the store was closed raises it
    too if its connection was closed under it. ``close()``/``aclose()`` themselves may
    be called again; they do nothing the second time."""
