"""Opening a store from a URL.

Each URL scheme maps to ``"module:Class"``; the module is imported on first use, and a
missing optional dependency raises :class:`MissingDependencyError` naming the extra.
The class opens itself with ``Class.from_url(url: StoreURL)``.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from ._base import Session
from ._errors import ConfigurationError, MissingDependencyError, shown
from ._url_wrappers import split_wrapper_options, wrap_from_options

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "StoreURL",
    "connect",
    "redact_url",
    "register_scheme",
    "registered_schemes",
]

ENV_VAR = "SESSIONS_URL"
DEFAULT_URL = "sqlite:///sessions.db"
"""Used when neither an argument nor ``SESSIONS_URL`` names a store: ``./sessions.db``."""


@dataclass(frozen=True)
class _Entry:
    target: str
    extra: str | None
    package: str | None


_SCHEMES: dict[str, _Entry] = {}


# The scheme and the userinfo of a URL: everything up to the last "@" before the first
# "/" or "?" after "//" (the userinfo may hold "@", ":" and "#").
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^/?]*)@")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def redact_url(text: str) -> str:
    """``text`` with anything that may be a password replaced by ``***``: for URLs in
    messages. A URL that cannot be parsed is masked from ``//`` (or from its first
    ``:``) to its last ``@``."""
    slashes = text.find("://")
    start = slashes + 3 if slashes >= 0 else text.find(":") + 1
    at = text.rfind("@")
    if at < start:
        return text
    return text[:start] + "***" + text[at:]


@dataclass(frozen=True)
class StoreURL:
    """A store URL parsed once: what ``from_url`` constructors receive.

    Rules: the scheme is required; a password may hold any character, written
    percent-encoded (``%40`` for ``@``, ``%2F`` for ``/``, ``%3F`` for ``?``, ``%25``
    for ``%``), except that a ``#`` in the password may also be written as it is.
    Anywhere else ``#`` is refused (store URLs have no fragment; write ``%23`` in a
    file name), as are control characters. ``raw`` is the URL as given (with a ``#``
    of the password written ``%23``); messages and ``repr`` show :attr:`redacted`,
    which never contains the password.
    """

    raw: str = field(repr=False)
    scheme: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"StoreURL({self.redacted!r})"

    @property
    def redacted(self) -> str:
        """The URL with its password (if any) replaced by ``***``."""
        if self.password is None:
            return self.raw
        match = _USERINFO.match(self.raw)
        if match is None:  # pragma: no cover - a parsed password always has a userinfo
            return redact_url(self.raw)
        user = match.group(2).partition(":")[0]
        return f"{match.group(1)}{user}:***@{self.raw[match.end():]}"

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        if not isinstance(url, str):
            raise ConfigurationError(f"a store URL must be a str, not {type(url).__name__}")
        if ":" not in url:
            raise ConfigurationError(
                f"not a store URL: {redact_url(url)[:200]!r} (expected e.g. {DEFAULT_URL!r})"
            )
        if _CONTROL.search(url):
            raise ConfigurationError(
                f"store URL {redact_url(url)[:200]!r} contains a control character"
            )
        userinfo = _USERINFO.match(url)
        if userinfo is not None and "#" in userinfo.group(2):
            url = userinfo.group(1) + userinfo.group(2).replace("#", "%23") + url[userinfo.end() - 1:]
        shown = redact_url(url)[:200]
        if "#" in url:
            raise ConfigurationError(
                f"store URL {shown!r} has a '#': store URLs take no fragment; write a '#' "
                "that belongs to a path or an option as %23"
            )
        try:
            parts = urlsplit(url)
        except ValueError:  # brackets that hold no IPv6 address; the message may quote a password
            raise ConfigurationError(
                f"store URL {shown!r} is malformed: '[' and ']' are only for an IPv6 host (in a"
                " password, write them as %5B and %5D)"
            ) from None
        try:
            port = parts.port
        except ValueError:  # its message may quote part of a password: not shown
            raise ConfigurationError(
                f"store URL {shown!r} has a bad port (expected a number up to 65535; in a "
                "password, write '/' and '?' as %2F and %3F)"
            ) from None
        if not parts.scheme:
            raise ConfigurationError(f"store URL {shown!r} has no scheme")
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            if key in query:
                raise ConfigurationError(f"store URL repeats the option {key!r}")
            query[key] = value
        return cls(
            raw=url,
            scheme=parts.scheme.lower(),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=port,
            path=unquote(parts.path),
            query=query,
        )

    def options(self, allowed: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
        """Convert query options with ``allowed[name](text)``; unknown names are refused."""
        result: dict[str, Any] = {}
        for key, text in self.query.items():
            convert = allowed.get(key)
            if convert is None:
                known = ", ".join(sorted(allowed)) or "none"
                raise ConfigurationError(
                    f"unknown option {key!r} in {self.scheme}:// URL (known: {known})"
                )
            try:
                result[key] = convert(text)
            except (TypeError, ValueError) as error:
                raise ConfigurationError(f"bad value {shown(text)} for option {key!r}: {error}") from None
        return result


def parse_bool(text: str) -> bool:
    """URL option parser for booleans: 1/0, true/false, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def register_scheme(scheme: str, target: str, *, extra: str | None = None,
                    package: str | None = None, replace: bool = False) -> None:
    """Map a URL scheme to ``"module:Class"`` (a class with ``from_url(StoreURL)``).

    ``extra`` and ``package`` name the optional dependency to suggest when the module
    cannot be imported. Registering a taken scheme raises unless ``replace=True``.
    """
    if not isinstance(scheme, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        raise ConfigurationError(f"a URL scheme is a letter, then letters, digits, '+', '-' or '.': "
                                 f"got {shown(scheme)}")
    scheme = scheme.lower()
    if not isinstance(target, str) or ":" not in target:
        raise ConfigurationError(f"target must look like 'module:Class', got {shown(target)}")
    if scheme in _SCHEMES and not replace and _SCHEMES[scheme].target != target:
        raise ConfigurationError(
            f"scheme {scheme!r} is already registered to {_SCHEMES[scheme].target}; "
            "pass replace=True to override it"
        )
    _SCHEMES[scheme] = _Entry(target, extra, package)


def registered_schemes() -> dict[str, str]:
    """The registered schemes and their targets."""
    return {scheme: entry.target for scheme, entry in sorted(_SCHEMES.items())}


def _load(entry: _Entry) -> Any:
    module_name, _, attribute = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if entry.extra is None:
            raise
        raise MissingDependencyError(
            entry.package or error.name or module_name, entry.extra, feature=module_name
        ) from error
    return getattr(module, attribute)


def connect(url: str | None = None) -> Session:
    """Open a store from a URL.

    Without ``url``, the environment variable ``SESSIONS_URL`` is used, and without
    that a SQLite file ``sessions.db`` in the working directory.

    Any URL may also carry wrapper options (``compress=gzip``, ``encrypt_key_env=NAME``;
    see :mod:`sessions._url_wrappers`): they are removed before the backend sees the
    URL, and the store it opens is wrapped accordingly.
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or DEFAULT_URL
    parsed = StoreURL.parse(url)
    parsed, wrapper_options = split_wrapper_options(parsed)
    entry = _SCHEMES.get(parsed.scheme)
    if entry is None:
        known = ", ".join(f"{s}://" for s in sorted(_SCHEMES))
        raise ConfigurationError(f"unknown store URL scheme {parsed.scheme!r} (known: {known})")
    factory = _load(entry)
    wrap = wrap_from_options(wrapper_options)  # checks keys and options before opening
    return wrap(cast(Session, factory.from_url(parsed)))


register_scheme("memory", "sessions.memory:MemorySession")
register_scheme("sqlite", "sessions.sqlite:SQLiteSession")
register_scheme("file", "sessions.file:FileSession")
register_scheme(
    "openai+conversations", "sessions.conversations:ConversationsSession", extra="openai", package="openai"
)

# redis+cluster:// and rediss+cluster:// name any node of a Redis Cluster.
for _scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
    register_scheme(_scheme, "sessions.redis:RedisSession", extra="redis", package="redis")

register_scheme("postgresql", "sessions.postgres:PostgresSession", extra="postgres", package="psycopg")
register_scheme("postgres", "sessions.postgres:PostgresSession", extra="postgres", package="psycopg")

# Read-only sources over other libraries' stores, in adapters/sources (that package
# imports the frameworks): scheme, "module:Class" under adapters.sources, extra.
_SOURCES = (
    ("langchain+sqlite", "langchain:LangChainSQLSource", "langchain"),
    ("langchain+postgresql", "langchain:LangChainSQLSource", "langchain"),
    ("langchain+postgres", "langchain:LangChainSQLSource", "langchain"),
    ("langchain-postgres+postgresql", "langchain:LangChainPostgresSource", "langchain"),
    ("langchain-postgres+postgres", "langchain:LangChainPostgresSource", "langchain"),
    ("langchain+redis", "langchain:LangChainRedisSource", "langchain"),
    ("langchain+rediss", "langchain:LangChainRedisSource", "langchain"),
    ("llamaindex+file", "llamaindex:LlamaIndexFileSource", "llamaindex"),
    ("llamaindex+redis", "llamaindex:LlamaIndexRedisSource", "llamaindex"),
    ("llamaindex+rediss", "llamaindex:LlamaIndexRedisSource", "llamaindex"),
    ("llamaindex+postgresql", "llamaindex:LlamaIndexPostgresSource", "llamaindex"),
    ("llamaindex+postgres", "llamaindex:LlamaIndexPostgresSource", "llamaindex"),
    ("llamaindex-sql+sqlite", "llamaindex:LlamaIndexSQLSource", "llamaindex"),
    ("llamaindex-sql+postgresql", "llamaindex:LlamaIndexSQLSource", "llamaindex"),
    ("llamaindex-sql+postgres", "llamaindex:LlamaIndexSQLSource", "llamaindex"),
    ("agents+sqlite", "openai_agents:AgentsSQLSource", "agents"),
    ("agents+postgresql", "openai_agents:AgentsSQLSource", "agents"),
    ("agents+postgres", "openai_agents:AgentsSQLSource", "agents"),
    ("agents+redis", "openai_agents:AgentsRedisSource", "agents"),
    ("agents+rediss", "openai_agents:AgentsRedisSource", "agents"),
)
_SOURCE_PACKAGES = {"langchain": "langchain-core", "llamaindex": "llama-index-core",
                    "agents": "openai-agents"}
for _scheme, _target, _extra in _SOURCES:
    register_scheme(_scheme, "adapters.sources." + _target, extra=_extra,
                    package=_SOURCE_PACKAGES[_extra])
