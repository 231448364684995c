"""Opening a store from a URL.

Each URL scheme maps to ``"module:Class"``; the module is imported on first use, and a
missing optional dependency raises :class:`MissingDependencyError` naming the extra.
The class opens itself with ``Class.from_url(url: StoreURL)``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from ._base import Session
from ._errors import ConfigurationError, MissingDependencyError
from ._url_wrappers import split_wrapper_options, wrap_from_options

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "StoreURL",
    "connect",
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


@dataclass(frozen=True)
class StoreURL:
    """A store URL parsed once: what ``from_url`` constructors receive."""

    raw: str
    scheme: str
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        if not isinstance(url, str) or ":" not in url:
            raise ConfigurationError(f"not a store URL: {url!r} (expected e.g. {DEFAULT_URL!r})")
        parts = urlsplit(url)
        if not parts.scheme:
            raise ConfigurationError(f"store URL {url!r} has no scheme")
        try:
            port = parts.port
        except ValueError as error:
            raise ConfigurationError(f"store URL {url!r} has a bad port: {error}") from None
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
                raise ConfigurationError(f"bad value {text!r} for option {key!r}: {error}") from None
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
    scheme = scheme.lower()
    if ":" not in target:
        raise ConfigurationError(f"target must look like 'module:Class', got {target!r}")
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
