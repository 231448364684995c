"""Writes of :class:`~sessions.redis.RedisSession` acknowledged by replicas
(``min_replicas=N``).

Each write is sent as ``[ASKING,] command, WAIT N timeout`` in one pipeline on one
connection to the primary that holds the session: on a standalone server the
server itself, on a cluster the primary of the session's hash slot. The ``WAIT`` reply
counts the replicas that confirmed every write made on that connection so far, so it
must follow the write on the same connection.

On a cluster, the replies decide what happens next (:func:`_settle`, no I/O): a
``MOVED`` reply means the slot has a new primary (learn the topology, send again), an
``ASK`` reply that the slot is being migrated (send again to the node named, after
``ASKING``), ``TRYAGAIN`` that the keys are mid-migration (pause, send again). In all
three the script was not run, so sending it again cannot apply it twice. A broken
connection leaves the outcome unknown: that is raised, never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.cluster import PipelineCommand
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._redis_clients import DRIVER_ERRORS, DirectConnections
from ._redis_keys import Write

__all__ = ["NotEnoughReplicas", "Replicas", "areplicated", "replicated"]

#: Redirections (MOVED, ASK, TRYAGAIN) one replicated write follows before giving up.
_REDIRECTS = 16
_TRYAGAIN_PAUSE = 0.1
_NODE_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class NotEnoughReplicas(RedisError):
    """Fewer replicas than ``min_replicas`` confirmed a write within ``replica_timeout``
    (the cause of the :class:`BackendUnavailableError` a store raises then)."""

    def __init__(self, acknowledged: int, required: int, timeout: float, primary: str) -> None:
        self.acknowledged, self.required = acknowledged, required
        super().__init__(
            f"{acknowledged} of the {required} replica(s) required confirmed the write within "
            f"{timeout:g}s; it is applied on {primary}, and lost if that primary fails before "
            f"a replica copies it"
        )


class Replicas:
    """How many replicas must confirm a write, and how long it waits for them."""

    def __init__(self, required: int, timeout: float) -> None:
        self.required, self.timeout = required, timeout
        self.wait = ("WAIT", required, max(1, round(timeout * 1000)))


@dataclass(frozen=True)
class _Next:
    """What a replicated write does after one pipeline: return ``result``, or send
    ``command`` again (to the ASK target, after a topology refresh, after a pause)."""

    done: bool
    result: Any = None
    command: tuple[Any, ...] = ()
    ask: tuple[str, int] | None = None
    refresh: bool = False
    pause: float = 0.0


def _settle(replies: list[Any], command: tuple[Any, ...], ask: tuple[str, int] | None,
            write: Write, replicas: Replicas, primary: str) -> _Next:
    """Judge the replies to ``[ASKING,] command, WAIT`` (``ASKING`` when ``ask``).

    A redirection or a missing script means the command was not run, so it is sent
    again (a script the node lacks as its source, to the same node); any other error is
    raised; a WAIT count under ``replicas.required`` raises :class:`NotEnoughReplicas`.
    """
    result, acknowledged = replies[-2], replies[-1]
    for reply in replies:
        if isinstance(reply, _NODE_FAILURES):
            raise reply  # the connection broke: the outcome of the write is unknown
    if isinstance(result, NoScriptError) and write.fallback is not None and command != write.fallback:
        return _Next(False, command=write.fallback, ask=ask)
    if isinstance(result, AskError):
        return _Next(False, command=command, ask=(result.host, int(result.port)))
    if isinstance(result, MovedError):
        return _Next(False, command=command, refresh=True)
    if isinstance(result, TryAgainError):
        return _Next(False, command=command, pause=_TRYAGAIN_PAUSE)
    if isinstance(result, Exception):
        raise result
    if isinstance(acknowledged, Exception):
        raise acknowledged
    if int(acknowledged) < replicas.required:
        raise NotEnoughReplicas(int(acknowledged), replicas.required, replicas.timeout, primary)
    return _Next(True, result=result)


def _pipelined(command: tuple[Any, ...], asking: bool, wait: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return [("ASKING",), command, wait] if asking else [command, wait]


def _too_many_redirects(key: str) -> RedisClusterException:
    return RedisClusterException(f"a write to {key!r} was redirected more than {_REDIRECTS} times")


def replicated(client: Any, direct: DirectConnections | None, write: Write, key: str,
               replicas: Replicas) -> Any:
    """``write`` then ``WAIT``, pipelined on one connection to the primary of ``key``:
    through ``direct`` (the store's own connections) when given, else ``client``."""
    cluster = isinstance(client, redis.cluster.RedisCluster)
    command, ask = write.command, None
    for _ in range(_REDIRECTS):
        if cluster:
            node = client.get_node(*ask) if ask else client.get_node_from_key(key)
            if node is None:  # an ASK target the client does not know yet
                raise RedisClusterException(f"unknown cluster node {ask!r}")
            target, where = client.get_redis_connection(node), f"the primary {node.name}"
        else:
            target, where = direct or client, "the primary"
        try:
            parts = _pipelined(command, ask is not None, replicas.wait)
            if isinstance(target, DirectConnections):
                replies = target.pipeline(parts)
            else:
                with target.pipeline(transaction=False) as pipe:
                    for part in parts:
                        pipe.execute_command(*part)
                    replies = pipe.execute(raise_on_error=False)
            step = _settle(replies, command, ask, write, replicas, where)
        except (*_NODE_FAILURES, ClusterDownError):
            if cluster:  # the slot may have a new primary: learn the topology again
                with contextlib.suppress(*DRIVER_ERRORS):
                    client.nodes_manager.initialize()
            raise
        if step.done:
            return step.result
        command, ask = step.command, step.ask
        if step.refresh:
            client.nodes_manager.initialize()
        if step.pause:
            time.sleep(step.pause)
    raise _too_many_redirects(key)


async def areplicated(client: Any, write: Write, key: str, replicas: Replicas) -> Any:
    """The async twin of :func:`replicated`, through ``client``."""
    cluster = isinstance(client, redis.asyncio.cluster.RedisCluster)
    command, ask = write.command, None
    for _ in range(_REDIRECTS):
        parts = _pipelined(command, ask is not None, replicas.wait)
        try:
            if cluster:
                node = client.get_node(*ask) if ask else client.get_node_from_key(key)
                if node is None:  # an ASK target the client does not know yet
                    raise RedisClusterException(f"unknown cluster node {ask!r}")
                where = f"the primary {node.name}"
                queued = [PipelineCommand(n, *part) for n, part in enumerate(parts)]
                await node.execute_pipeline(queued)
                replies = [entry.result for entry in queued]
            else:
                where = "the primary"
                async with client.pipeline(transaction=False) as pipe:
                    for part in parts:
                        pipe.execute_command(*part)
                    replies = await pipe.execute(raise_on_error=False)
            step = _settle(replies, command, ask, write, replicas, where)
        except (*_NODE_FAILURES, ClusterDownError):
            if cluster:
                with contextlib.suppress(*DRIVER_ERRORS):
                    await client.nodes_manager.initialize()
            raise
        if step.done:
            return step.result
        command, ask = step.command, step.ask
        if step.refresh:
            await client.nodes_manager.initialize()
        if step.pause:
            await asyncio.sleep(step.pause)
    raise _too_many_redirects(key)
