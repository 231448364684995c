"""PostgreSQL with a streaming standby: the primary is killed under eight writers, the
standby is promoted, and the same store object, given both servers (libpq multi-host,
``target_session_attrs=read-write``), carries on on the promoted standby.

Each test starts its own primary (``initdb``) and standby (``pg_basebackup -R``) on
loopback ports and kills them by pid. Why the standby is made to lag before the kill:
on loopback it receives every commit within a millisecond, so a plain kill loses
nothing even with asynchronous replication. The test pauses the standby (SIGSTOP) and
ends its WAL sender on the primary half a second before the kill: with asynchronous
replication the primary keeps acknowledging commits the standby never receives; with a
synchronous standby those commits wait, are never acknowledged, and nothing
acknowledged is lost.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.backends import server_unavailable
from tests.failover import LAG, Outcome, postgres_failover, replicated_postgres
from tests.postgres_servers import bindir

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONNECT_TIMEOUT = 2
#: The longest a failing call may take: a wait for the cut-off standby (until the
#: kill), then a connection attempt per server and the pool's wait.
FAILURE_BOUND = LAG + 3 * CONNECT_TIMEOUT + 2


@pytest.fixture
def programs() -> Any:
    found = bindir()
    if found is None:
        server_unavailable("PostgreSQL binaries", "no initdb found")
    return found


def report(capsys: Any, title: str, outcome: Outcome) -> None:
    with capsys.disabled():
        print(f"\n{title}: {outcome.summary()}")


@pytest.mark.parametrize(("replication", "kind"), [
    ("synchronous", "threads"), ("synchronous", "tasks"), ("asynchronous", "threads"),
])
def test_a_failover_keeps_every_acknowledged_append(
        programs: Any, replication: str, kind: str, capsys: Any) -> None:
    with replicated_postgres(programs, synchronous=replication == "synchronous") as servers:
        outcome = postgres_failover(*servers, kind, connect_timeout=CONNECT_TIMEOUT)
    report(capsys, f"PostgreSQL failover, {kind}, {replication} standby", outcome)
    assert outcome.unexpected == [], outcome.unexpected[:3]
    assert outcome.slowest_failure < FAILURE_BOUND
    assert outcome.first_ack_after is not None
    if replication == "synchronous":
        # The writers were waiting for the cut-off standby when the primary died.
        assert outcome.failed, "the failover went unnoticed: the test did not test anything"
        assert outcome.lost == []
    # Asynchronous: the lost count is reported, not asserted (docs/scaling.md); the
    # writers may not even notice the kill (a dead idle connection is replaced).
