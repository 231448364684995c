"""``sessions migrate SRC DST`` from a peer's store, one peer of each framework, as a user
runs it: in a subprocess, with the store written by the peer library."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import sessions
from benchmarks.peers import PEERS, Peer, canonical, history
from sessions.cli import main
from tests.test_cli import one_line_error, run
from tests.test_sources import place

# One peer of each framework, each in a file: no server needed.
CLI_PEERS = [peer for peer in PEERS if (peer.scheme, peer.writer) in {
    ("langchain+sqlite", "SQLChatMessageHistory"),
    ("llamaindex+file", "SimpleChatStore"),
    ("agents+sqlite", "SQLiteSession"),
}]
IDS = ["alice", "bøb:42", "客户-7"]


@pytest.mark.parametrize("peer", CLI_PEERS, ids=lambda peer: peer.scheme)
def test_migrate_from_a_peer_prints_progress_and_the_verify_report(
        peer: Peer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = peer.open(place(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        store.write({sid: history(peer.family, size, n * 1000) for n, (sid, size)
                     in enumerate(zip(IDS, (250, 12, 3), strict=True))})
        expected = {sid: canonical(peer.family, store.read(sid)) for sid in IDS}
    total = sum(len(messages) for messages in expected.values())
    target = f"sqlite:///{tmp_path}/sessions.db"

    first = run("migrate", store.url, target, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3/3 sessions" in first.stderr  # the progress bar
    lines = first.stdout.strip().splitlines()
    assert lines[0] == (f"migrated 3 session(s): 3 copied, 0 appended, 0 replaced, 0 unchanged, "
                        f"0 skipped; {total} message(s) written")
    assert lines[-1] == "verified 3 session(s): target equals source"

    # The rest in this process (a subprocess costs seconds of imports).
    assert main(["migrate", store.url, target, "-q"]) == 0
    second = capsys.readouterr()
    assert second.err == ""
    assert "3 unchanged, 0 skipped; 0 message(s) written" in second.out
    assert second.out.strip().endswith("verified 3 session(s): target equals source")

    migrated = sessions.connect(target)
    try:
        assert {sid: migrated.get(sid) for sid in migrated.list_sessions()} == expected
    finally:
        migrated.close()

    # show and export read the peer's store as they read any store.
    assert main(["--url", store.url, "show", "bøb:42"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("[0] ") and len(shown.strip().splitlines()) >= len(expected["bøb:42"])
    assert main(["--url", store.url, "export", "alice"]) == 0
    exported = capsys.readouterr().out
    assert [json.loads(line)["message"] for line in exported.splitlines()] == expected["alice"]

    # Writes are refused, in one line, and the peer's store keeps everything.
    assert main(["--url", store.url, "delete", "alice", "--yes"]) == 1
    refused = capsys.readouterr().err.strip().splitlines()
    assert len(refused) == 1 and "read-only source" in refused[0]
    assert canonical(peer.family, store.read("alice")) == expected["alice"]


def test_a_damaged_peer_row_fails_the_migration_in_one_line(tmp_path: Path) -> None:
    import sqlite3

    peer = next(peer for peer in CLI_PEERS if peer.scheme == "agents+sqlite")
    store = peer.open(place(tmp_path))
    store.write({"alice": history("agents", 8, 0)})
    with sqlite3.connect(tmp_path / "agents.db") as conn:
        conn.execute("INSERT INTO agent_messages (session_id, message_data) VALUES ('alice', 'oops')")
    failed = run("migrate", store.url, f"sqlite:///{tmp_path}/sessions.db", "-q", cwd=tmp_path)
    line = one_line_error(failed)
    assert "row id=" in line and "agent_messages" in line and "alice" in line
    with sessions.SQLiteSession(tmp_path / "sessions.db") as target:
        assert list(target.list_sessions()) == []
