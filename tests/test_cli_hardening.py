"""The command line under hostile input: one error line and nothing written, never a
traceback; stored text never reaches the terminal as control sequences; an import
writes each session as one batch."""

from __future__ import annotations

import contextlib
import io
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

import sessions
from sessions import cli
from tests.conformance.messages import text
from tests.test_cli import one_line_error, run


def _line(session_id: str, message: dict[str, Any]) -> str:
    return json.dumps({"session_id": session_id, "message": message}) + "\n"


def _contents(url: str) -> dict[str, list[dict[str, Any]]]:
    with contextlib.closing(sessions.connect(url)) as store:
        return {sid: store.get(sid) for sid in store.list_sessions()}


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 2: nested too deeply"),
        (b'{"session_id": "b", "message": {"role": "user", "content": "\xff"}}\n', "line 2: not UTF-8"),
        (b'{"session_id": "b", "message": {"role": "user", "n": ' + b"9" * 5000 + b"}}\n",
         "line 2: not JSON"),
        (b'{"session_id": "b\\u0000", "message": {"role": "user"}}\n', "line 2:"),
    ],
    ids=["deep-nesting", "not-utf8", "huge-int", "nul-in-id"],
)
def test_bad_import_input_is_one_line_and_writes_nothing(payload: bytes, needle: str,
                                                         tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path}/t.db"
    source = tmp_path / "input.jsonl"
    source.write_bytes(_line("a", text(0)).encode() + payload)
    assert needle in one_line_error(run("--url", target, "import", str(source), cwd=tmp_path))
    assert _contents(target) == {}


def test_prune_with_an_age_beyond_the_calendar_is_one_line(tmp_path: Path) -> None:
    for age in ("99999999999d", "9" * 400 + "s"):
        result = run("--url", "memory://", "prune", "--older-than", age, cwd=tmp_path)
        assert "too long" in one_line_error(result)
    kept = run("--url", "memory://", "prune", "--older-than", "3000000w", cwd=tmp_path)
    assert kept.returncode == 0 and "pruned 0" in kept.stderr


class _CountingStore(sessions.MemorySession):
    """Records every write the CLI makes, and can fail the write of one session."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__()
        self.writes: list[tuple[str, str, int]] = []
        self.fail_on = fail_on

    def append(self, session_id: str, messages: Any) -> None:
        self._write("append", session_id, list(messages))
        super().append(session_id, messages)

    def replace(self, session_id: str, messages: Any) -> None:
        self._write("replace", session_id, list(messages))
        super().replace(session_id, messages)

    def _write(self, kind: str, session_id: str, messages: list[Any]) -> None:
        if session_id == self.fail_on:
            raise sessions.BackendUnavailableError("the store went away\nsecond line",
                                                   session_id=session_id, operation=kind)
        self.writes.append((kind, session_id, len(messages)))


def _main(argv: list[str], store: sessions.Session, monkeypatch: pytest.MonkeyPatch,
          stdin: bytes = b"") -> tuple[int, str, str]:
    """Run the CLI in this process against ``store``; return (status, stdout, stderr)."""
    monkeypatch.setattr(cli, "connect", lambda url=None: store)
    monkeypatch.setattr(store, "close", lambda: None)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_interleaved_import_writes_each_session_as_one_batch(mode: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = _CountingStore()
    store.append("b", [text(99)])
    store.writes.clear()
    lines = [("a", text(0)), ("b", text(1)), ("a", text(2)), ("c", text(3)), ("b", text(4)),
             ("a", text(5))]
    stdin = "".join(_line(sid, m) for sid, m in lines).encode()
    argv = ["import", "-"] + (["--replace"] if mode == "replace" else [])
    status, out, err = _main(argv, store, monkeypatch, stdin)
    assert status == 0, err
    assert "imported 6 message(s) into 3 session(s)" in out
    assert store.writes == [(mode, "a", 3), (mode, "b", 2), (mode, "c", 1)]
    assert store.get("a") == [text(0), text(2), text(5)]
    assert store.get("b") == ([text(99)] if mode == "append" else []) + [text(1), text(4)]


def test_an_import_failing_midway_names_the_session_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = _CountingStore(fail_on="b")
    stdin = "".join(_line(sid, text(n)) for n, sid in enumerate("abac")).encode()
    status, out, err = _main(["import"], store, monkeypatch, stdin)
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("sessions: error: the store went away\\nsecond line")
    assert "session_id='b'" in err
    assert store.writes == [("append", "a", 2)] and store.get("c") == []


HOSTILE = {
    "role": "tool",
    "tool_call_id": "call\u202e1",
    "name": "evil\x9b2J",
    "content": "clear\x1b[2J title\x1b]0;pwned\x07 bell\x07 cr\r tag\U000e0041 ok\nnext line",
}
HOSTILE_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c\x1b[31m", "type": "function",
                    "function": {"name": "f\x1b]2;x\x07", "arguments": "{\"a\": \"\u2066\"}"}}],
}


def _harmless(output: str) -> bool:
    return all(char == "\n" or unicodedata.category(char) not in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp")
               for char in output)


def test_show_list_and_errors_escape_what_a_terminal_would_act_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = sessions.MemorySession()
    session_id = "s\x1b[2J\u202e"
    store.append(session_id, [HOSTILE, HOSTILE_CALL])
    status, out, err = _main(["show", session_id], store, monkeypatch)
    assert status == 0, err
    assert _harmless(out)
    assert "\\x1b[2J" in out and "\\x1b]0;pwned\\x07" in out and "\\u202e" in out
    assert "\\x9b" in out and "\\r" in out and "\\U000e0041" in out and "\\u2066" in out
    assert "ok\n      next line" in out  # line breaks of the content are kept, indented

    status, out, err = _main(["list"], store, monkeypatch)
    assert status == 0 and _harmless(out) and '"s\\x1b[2J\\u202e"' in out
    status, _, err = _main(["show", "nobody\x1b[2J\nthere"], store, monkeypatch)
    assert status == 1 and _harmless(err) and err.count("\n") == 1


def test_json_output_stays_exact_json(monkeypatch: pytest.MonkeyPatch) -> None:
    store = sessions.MemorySession()
    store.append("s\u202e", [HOSTILE, HOSTILE_CALL])
    status, out, _ = _main(["show", "s\u202e", "--json"], store, monkeypatch)
    assert status == 0 and _harmless(out)
    assert json.loads(out) == [HOSTILE, HOSTILE_CALL]
    status, out, _ = _main(["export"], store, monkeypatch)
    assert status == 0 and _harmless(out)
    assert [json.loads(line) for line in out.splitlines()] == [
        {"session_id": "s\u202e", "message": HOSTILE}, {"session_id": "s\u202e", "message": HOSTILE_CALL}]


def test_an_unexpected_error_is_still_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    store = sessions.MemorySession()

    def broken() -> Any:
        raise ZeroDivisionError("boom\nagain")

    monkeypatch.setattr(store, "list_sessions", broken)
    status, _, err = _main(["stats"], store, monkeypatch)
    assert status == 1 and err == "sessions: error: unexpected ZeroDivisionError: boom\\nagain\n"
