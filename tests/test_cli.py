"""The ``sessions`` command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sessions
from tests.backends import TEST_KEY
from tests.conformance.messages import ALL_SHAPES, text

ROOT = Path(__file__).resolve().parent.parent
SESSION_IDS = ["alice", "🦜 ../bob", "carol"]


def run(*args: str, cwd: Path, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "SESSIONS_URL"}
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sessions", *args], cwd=cwd, input=stdin if stdin is not None else "",
        capture_output=True, text=True, env=environment, timeout=60,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sessions: error: "), result.stderr
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/source.db"
    with contextlib.closing(sessions.connect(url)) as store:
        store.append("alice", ALL_SHAPES)
        store.append("🦜 ../bob", [text(0), text(1)])
        store.append("carol", [text(2)])
    return url


def _contents(url: str) -> dict[str, list[dict[str, Any]]]:
    store = sessions.connect(url)
    try:
        return {sid: store.get(sid) for sid in store.list_sessions()}
    finally:
        store.close()


def test_list_show_and_stats(db: str, tmp_path: Path) -> None:
    listed = run("--url", db, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(None, 3) for line in listed.stdout.splitlines()]
    assert {(row[0], row[3]) for row in rows} == {("13", "alice"), ("2", "🦜 ../bob"), ("1", "carol")}

    page = run("list", "--url", db, "--limit", "2", cwd=tmp_path)
    assert len(page.stdout.splitlines()) == 2 and "--skip 2" in page.stderr
    rest = run("list", "--limit", "2", "--skip", "2", cwd=tmp_path, env={"SESSIONS_URL": db})
    assert len(rest.stdout.splitlines()) == 1 and rest.stderr == ""

    shown = run("--url", db, "show", "alice", cwd=tmp_path)
    assert shown.returncode == 0
    assert "[0] system: You are terse." in shown.stdout
    assert "-> weather({\"city\":\"Oslo\"}) [call_1]" in shown.stdout
    assert "[8] tool [call_1]: -3 °C, snow" in shown.stdout
    assert "[image https://example.invalid/cat.png]" in shown.stdout
    raw = run("--url", db, "show", "alice", "--json", cwd=tmp_path)
    assert json.loads(raw.stdout) == ALL_SHAPES
    last = run("--url", db, "show", "alice", "--limit", "1", cwd=tmp_path)
    assert last.stdout.startswith("[12] user:")

    stats = run("--url", db, "stats", cwd=tmp_path)
    assert "sessions: 3" in stats.stdout and "messages: 16" in stats.stdout
    assert "largest: alice (13 messages)" in stats.stdout


def test_export_then_import_through_pipes_and_files(db: str, tmp_path: Path) -> None:
    exported = run("--url", db, "export", cwd=tmp_path)
    assert exported.returncode == 0
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(records) == 16 and set(records[0]) == {"session_id", "message"}

    copy = f"sqlite:///{tmp_path}/copy.db"
    imported = run("--url", copy, "import", "-", cwd=tmp_path, stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    assert "imported 16 message(s) into 3 session(s)" in imported.stdout
    assert _contents(copy) == _contents(db)

    assert run("--url", db, "export", "alice", "-o", "alice.jsonl", cwd=tmp_path).returncode == 0
    again = run("--url", copy, "import", "alice.jsonl", "--replace", cwd=tmp_path)
    assert again.returncode == 0
    assert _contents(copy) == _contents(db)  # --replace: no duplicates


def test_bad_import_writes_nothing(tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path}/t.db"
    good = json.dumps({"session_id": "a", "message": text(0)})
    for bad, needle in [
        ("not json", "line 2: not JSON"),
        (json.dumps({"session_id": "a"}), "line 2: expected"),
        (json.dumps({"session_id": "a", "message": {"role": "robot"}}), "line 2:"),
        (json.dumps({"session_id": "", "message": text(0)}), "line 2:"),
    ]:
        result = run("--url", target, "import", cwd=tmp_path, stdin=f"{good}\n{bad}\n")
        assert needle in one_line_error(result)
        assert _contents(target) == {}
    missing = run("--url", target, "import", "nowhere.jsonl", cwd=tmp_path)
    assert "nowhere.jsonl" in one_line_error(missing)


def test_migrate_with_progress_idempotent_verified_and_encrypted(db: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path}/enc.db?compress=gzip&encrypt_key_env=TEST_CLI_KEY"
    env = {"TEST_CLI_KEY": TEST_KEY.hex()}
    first = run("migrate", db, target, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "3/3 sessions" in first.stderr and "[###" in first.stderr
    assert "migrated 3 session(s): 3 copied" in first.stdout
    second = run("migrate", db, target, "--quiet", cwd=tmp_path, env=env)
    assert "3 unchanged" in second.stdout and "0 message(s) written" in second.stdout
    assert second.stderr == ""
    verified = run("migrate", db, target, "--verify", "-q", cwd=tmp_path, env=env)
    assert verified.returncode == 0 and "target equals source" in verified.stdout
    with sessions.SQLiteSession(tmp_path / "enc.db") as raw:
        assert all("envelope" in m for m in raw.get("alice"))
        assert sessions.with_encryption(raw, TEST_KEY).get("alice") == ALL_SHAPES

    other = f"sqlite:///{tmp_path}/other.db"
    with sessions.SQLiteSession(tmp_path / "other.db") as store:
        store.append("carol", [text(99)])
    assert "differ" in run("migrate", db, other, "--verify", "-q", cwd=tmp_path).stdout
    conflict = run("migrate", db, other, "-q", cwd=tmp_path)
    assert "carol" in one_line_error(conflict)
    replaced = run("migrate", db, other, "-q", "--on-conflict", "replace", cwd=tmp_path)
    assert replaced.returncode == 0 and _contents(other) == _contents(db)

    wrong_key = run("migrate", target, other, "-q", cwd=tmp_path, env={"TEST_CLI_KEY": "ab" * 32})
    assert "cannot decrypt" in one_line_error(wrong_key)


def test_delete_asks_unless_yes(db: str, tmp_path: Path) -> None:
    refused = run("--url", db, "delete", "alice", cwd=tmp_path)
    assert "--yes" in one_line_error(refused)
    assert len(_contents(db)["alice"]) == 13
    deleted = run("--url", db, "delete", "alice", "--yes", cwd=tmp_path)
    assert deleted.returncode == 0 and "alice" not in _contents(db)
    assert "no session" in one_line_error(run("--url", db, "delete", "alice", "-y", cwd=tmp_path))


@pytest.mark.parametrize(("answer", "kept"), [("n\n", True), ("yes\n", False)])
def test_delete_asks_on_a_terminal(answer: str, kept: bool, db: str, tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    try:
        os.write(primary, answer.encode())
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-m", "sessions", "--url", db, "delete", "carol"],
                                cwd=tmp_path, stdin=secondary, capture_output=True, text=True,
                                env=environment, timeout=60)
    finally:
        os.close(primary)
        os.close(secondary)
    assert "Delete session carol (1 messages)? [y/N]" in result.stdout
    assert ("carol" in _contents(db)) is kept
    assert result.returncode == (1 if kept else 0)


def test_prune(db: str, tmp_path: Path) -> None:
    kept = run("--url", db, "prune", "--older-than", "30d", cwd=tmp_path)
    assert kept.returncode == 0 and kept.stdout == "" and "pruned 0" in kept.stderr
    dry = run("--url", db, "prune", "--older-than", "0s", "--dry-run", cwd=tmp_path)
    assert sorted(dry.stdout.splitlines()) == sorted(SESSION_IDS) and "would prune 3" in dry.stderr
    assert len(_contents(db)) == 3
    done = run("--url", db, "prune", "--older-than", "0s", cwd=tmp_path)
    assert done.returncode == 0 and _contents(db) == {}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--url", "nowhere://x", "list"], "unknown store URL scheme"),
        (["--url", "sqlite:///x.db?colour=blue", "stats"], "unknown option"),
        (["--url", "memory://?encrypt_key_env=NOT_SET_HERE", "list"], "NOT_SET_HERE"),
        (["--url", "memory://", "show", "nobody"], "no session"),
        (["--url", "memory://", "show", "x" * 2000], "at most 1024"),
        (["--url", "memory://", "prune", "--older-than", "soon"], "bad duration"),
    ],
)
def test_user_mistakes_print_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    assert needle in one_line_error(run(*args, cwd=tmp_path))


def test_bad_arguments_exit_2_with_usage(tmp_path: Path) -> None:
    for args in (["frobnicate"], [], ["list", "--limit", "-3"], ["migrate", "memory://"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2 and "usage: sessions" in result.stderr
        assert "Traceback" not in result.stderr


def test_default_url_is_a_local_sqlite_file(tmp_path: Path) -> None:
    assert run("stats", cwd=tmp_path).stdout.startswith("sessions: 0")
    assert (tmp_path / "sessions.db").exists()
