"""The ``sessions`` command line: inspect, export, import, migrate and prune any store.

    sessions [--url URL] list [--limit N] [--skip N]
    sessions show ID [--json] [--limit N]
    sessions export [ID ...] [-o FILE]
    sessions import [FILE] [--replace]
    sessions migrate SRC_URL DST_URL [--session ID] [--on-conflict error|replace|skip] [--verify]
    sessions delete ID [--yes]
    sessions prune --older-than 30d [--dry-run]
    sessions stats

The store is ``--url``, else ``$SESSIONS_URL``, else ``sqlite:///sessions.db``. A
mistake prints one line on stderr and exits with status 1 (2 for bad arguments); never
a traceback. Text from the store (ids, names, content) is printed with control and
other invisible characters escaped (``\\x1b``, ``\\u202e``), on a terminal and in a
pipe alike, so stored data can never drive the terminal; ``--json`` and ``export`` print
exact JSON, with those characters written as ``\\u`` escapes.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import json
import os
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from typing import IO, Any

from ._base import Session
from ._errors import SessionError
from ._message import Message, check_session_id, encode_message
from ._registry import ENV_VAR, connect
from .companions import delete_conversation
from .migrate import ON_CONFLICT, MigrationReport, migrate
from .prune import prune

__all__ = ["main"]

PROG = "sessions"


class UserError(Exception):
    """A mistake to report in one line (exit status 1)."""


# What a terminal could act on or hide: controls (C0, DEL, C1), format characters (bidi
# overrides, zero-width), line and paragraph separators, surrogates and private use.
_INVISIBLE = frozenset(("Cc", "Cf", "Co", "Cs", "Zl", "Zp"))


def _invisible(char: str, newlines: bool) -> bool:
    return unicodedata.category(char) in _INVISIBLE and not (newlines and char == "\n")


def _safe(text: str, *, newlines: bool = False) -> str:
    """``text`` with every character a terminal would act on (or hide) written as an
    escape (``\\x1b``, ``\\u202e``); with ``newlines``, line breaks are kept."""
    if text.isprintable():
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii") if _invisible(char, newlines) else char
        for char in text
    )


def _safe_json(text: str) -> str:
    """JSON text with the characters :func:`_safe` escapes written as ``\\u`` escapes:
    the same JSON value, harmless on a terminal. (Outside its strings, JSON text from
    ``json.dumps`` holds only spaces and newlines, which are left alone.)"""
    if text.isprintable():
        return text
    out = []
    for char in text:
        code = ord(char)
        if not _invisible(char, True):
            out.append(char)
        elif code > 0xFFFF:  # a surrogate pair, as JSON writes characters beyond the BMP
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def _shown(session_id: str) -> str:
    safe = _safe(session_id)
    return session_id if safe == session_id else f'"{safe}"'


_opened: list[Session] = []


def _open(url: str | None) -> Session:
    """Open a store; :func:`main` closes every store opened when the command ends."""
    store = connect(url)
    _opened.append(store)
    return store


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append(str(part.get("text", "")))
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            parts.append(f"[image {url[:60] + '...' if len(url) > 60 else url}]")
        else:
            parts.append(f"[{kind}]")
    return " ".join(parts)


def _transcript_line(index: int, message: Message) -> str:
    if "role" not in message:
        return f"[{index}] (envelope: {json.dumps(message)[:80]})"
    role = str(message["role"])
    head = role
    if message.get("name"):
        head += f" ({message['name']})"
    if role == "tool":
        head += f" [{message.get('tool_call_id')}]"
    content = _text_of(message.get("content"))
    lines = [f"[{index}] {_safe(head)}: {_safe(content, newlines=True)}".rstrip()]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        lines.append(_safe(f"      -> {function.get('name')}({function.get('arguments', '')}) "
                           f"[{call.get('id')}]"))
    return "\n      ".join(lines[0].split("\n")) + "".join("\n" + line for line in lines[1:])


# -- commands ---------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    store = _open(args.url)
    shown = 0
    for position, session_id in enumerate(store.list_sessions()):
        if position < args.skip:
            continue
        if shown == args.limit:
            print(f"more sessions follow; use --skip {args.skip + shown}", file=sys.stderr)
            break
        info = store.info(session_id)
        if info is not None:
            updated = info.updated_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{info.message_count:>8}  {updated}Z  {_shown(session_id)}")
            shown += 1
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _open(args.url)
    session_id = check_session_id(args.session_id, "show")
    messages = store.get(session_id, args.limit)
    if args.json:
        print(_safe_json(json.dumps(messages, ensure_ascii=False, indent=2)))
        return 0
    if not messages and store.info(session_id) is None:
        raise UserError(f"no session {_shown(session_id)}")
    total = store.count(session_id)
    first = total - len(messages)
    for offset, message in enumerate(messages):
        print(_transcript_line(first + offset, message))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = _open(args.url)
    ids: Iterator[str] = iter(args.session_ids) if args.session_ids else store.list_sessions()
    with _output(args.output) as out:
        for session_id in ids:
            for message in store.get(check_session_id(session_id, "export")):
                out.write(_safe_json(json.dumps({"session_id": session_id, "message": message},
                                                ensure_ascii=False, separators=(",", ":"))) + "\n")
    return 0


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8") as handle:
        yield handle


@contextlib.contextmanager
def _input(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as handle:
        yield handle


def _checked_line(number: int, line: bytes) -> tuple[str, Message]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"line {number}: not UTF-8 text (byte {error.start + 1})") from None
    try:
        record = json.loads(text)
    except ValueError as error:
        raise UserError(f"line {number}: not JSON: {error}") from None
    except RecursionError:
        raise UserError(f"line {number}: nested too deeply") from None
    if not isinstance(record, dict) or set(record) != {"session_id", "message"}:
        raise UserError(f"line {number}: expected {{\"session_id\": ..., \"message\": {{...}}}}")
    try:
        session_id = check_session_id(record["session_id"], "import")
        encode_message(record["message"], session_id=session_id, operation="import")
    except SessionError as error:
        raise UserError(f"line {number}: {error}") from None
    return session_id, record["message"]


def cmd_import(args: argparse.Namespace) -> int:
    store = _open(args.url)
    # 1. Check every line, spooling the valid ones and noting where each session's lines
    #    are: bad input anywhere writes nothing.
    lines: dict[str, array.array[int]] = {}
    with tempfile.SpooledTemporaryFile(max_size=16 << 20, mode="w+b") as spool:
        with _input(args.input) as source:
            for number, line in enumerate(source, 1):
                if line.strip():
                    session_id, _ = _checked_line(number, line)
                    lines.setdefault(session_id, array.array("q")).append(spool.tell())
                    spool.write(line.rstrip(b"\r\n") + b"\n")
        # 2. Write each session as one atomic batch, in the order sessions first appear.
        written = 0
        for session_id, offsets in lines.items():
            batch = []
            for offset in offsets:
                spool.seek(offset)
                batch.append(json.loads(spool.readline())["message"])
            if args.replace:
                store.replace(session_id, batch)
            else:
                store.append(session_id, batch)
            written += len(batch)
    print(f"imported {written} message(s) into {len(lines)} session(s)")
    return 0


class _ProgressBar:
    """A plain-text bar on stderr: redrawn in place on a terminal, else one line per 10%."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last_step = -1

    def __call__(self, done: int, total: int | None, session_id: str) -> None:
        total = total or done
        fraction = done / total if total else 1.0
        filled = int(fraction * 30)
        text = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} sessions"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done >= total else ""))
        else:
            step = int(fraction * 10)
            if step == self.last_step and done < total:
                return
            self.last_step = step
            self.stream.write(text + "\n")
        self.stream.flush()


def _summary(report: MigrationReport) -> str:
    if report.verified_only:
        if report.ok:
            return f"verified {report.sessions} session(s): target equals source"
        return f"{len(report.different)} of {report.sessions} session(s) differ in the target"
    text = (f"migrated {report.sessions} session(s): {report.copied} copied, "
            f"{report.appended} appended, {report.replaced} replaced, "
            f"{report.unchanged} unchanged, {len(report.different)} skipped; "
            f"{report.messages_written} message(s) written")
    return text


def cmd_migrate(args: argparse.Namespace) -> int:
    source = _open(args.source)
    target = _open(args.target)
    report = migrate(
        source, target, args.session, on_conflict=args.on_conflict, verify=args.verify,
        progress=None if args.quiet else _ProgressBar(sys.stderr),
    )
    print(_summary(report))
    for session_id in report.different:
        print(f"  differs: {_shown(session_id)}")
    if args.verify:
        return 0 if report.ok else 1
    # A migration ends with the verify report: a second, read-only pass over both stores.
    check = migrate(source, target, args.session, verify=True)
    print(_summary(check))
    unexpected = [sid for sid in check.different if sid not in report.different]
    for session_id in unexpected:
        print(f"  differs: {_shown(session_id)}")
    return 1 if unexpected else 0


def cmd_delete(args: argparse.Namespace) -> int:
    store = _open(args.url)
    session_id = check_session_id(args.session_id, "delete")
    info = store.info(session_id)
    if info is None:
        raise UserError(f"no session {_shown(session_id)}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("refusing to delete without --yes when stdin is not a terminal")
        answer = input(f"Delete session {_shown(session_id)} ({info.message_count} messages)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    delete_conversation(store, session_id)
    print(f"deleted {_shown(session_id)}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    store = _open(args.url)
    pruned = prune(store, args.older_than, dry_run=args.dry_run)
    for session_id in pruned:
        print(_shown(session_id))
    verb = "would prune" if args.dry_run else "pruned"
    print(f"{verb} {len(pruned)} session(s) not updated in {_safe(args.older_than)}", file=sys.stderr)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    store = _open(args.url)
    sessions = messages = 0
    largest: tuple[int, str] | None = None
    oldest = newest = None
    for session_id in store.list_sessions():
        info = store.info(session_id)
        if info is None:
            continue
        sessions += 1
        messages += info.message_count
        if largest is None or info.message_count > largest[0]:
            largest = (info.message_count, session_id)
        oldest = info.updated_at if oldest is None else min(oldest, info.updated_at)
        newest = info.updated_at if newest is None else max(newest, info.updated_at)
    print(f"sessions: {sessions}")
    print(f"messages: {messages}")
    if largest is not None and oldest is not None and newest is not None:
        print(f"largest: {_shown(largest[1])} ({largest[0]} messages)")
        print(f"least recently updated: {oldest.isoformat()}")
        print(f"most recently updated: {newest.isoformat()}")
    return 0


# -- the parser -------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def build_parser() -> argparse.ArgumentParser:
    url_help = f"store URL (default: ${ENV_VAR}, else sqlite:///sessions.db)"
    parser = argparse.ArgumentParser(prog=PROG, description="Inspect and manage session stores.")
    parser.add_argument("--url", help=url_help)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, parents=[common])

    sub = command("list", "list sessions with message count and last update (paged)")
    sub.add_argument("--limit", type=_positive, default=50, help="sessions per page (default 50)")
    sub.add_argument("--skip", type=_positive, default=0, help="sessions to skip (the page start)")
    sub.set_defaults(run=cmd_list)

    sub = command("show", "print a session as a readable transcript")
    sub.add_argument("session_id", metavar="ID")
    sub.add_argument("--json", action="store_true", help="print the raw messages as JSON")
    sub.add_argument("--limit", type=_positive, default=None, help="only the last N messages")
    sub.set_defaults(run=cmd_show)

    sub = command("export", "write sessions as JSON Lines: {\"session_id\": ..., \"message\": ...}")
    sub.add_argument("session_ids", metavar="ID", nargs="*", help="sessions to export (default: all)")
    sub.add_argument("-o", "--output", default="-", help="file to write (default: - for stdout)")
    sub.set_defaults(run=cmd_export)

    sub = commands.add_parser(
        "import", parents=[common], help="append messages from JSON Lines (as written by export)",
        description=(
            "Append messages from JSON Lines (as written by export). Every line is checked "
            "first: a bad line anywhere writes nothing. Then each session is written as one "
            "atomic batch holding all of its lines in input order (lines of several sessions "
            "may be interleaved), one session after another in the order they first appear; "
            "if the store fails midway, the sessions before the one named in the error are "
            "written and the rest are not."
        ),
    )
    sub.add_argument("input", metavar="FILE", nargs="?", default="-", help="default: - for stdin")
    sub.add_argument("--replace", action="store_true",
                     help="replace each imported session's history instead of appending")
    sub.set_defaults(run=cmd_import)

    sub = command("migrate", "copy every session (or one) from SRC to DST, idempotently")
    sub.add_argument("source", metavar="SRC", help="source store URL")
    sub.add_argument("target", metavar="DST", help="target store URL")
    sub.add_argument("--session", metavar="ID", help="only this session")
    sub.add_argument("--on-conflict", choices=ON_CONFLICT, default="error",
                     help="when a target session holds different messages (default: error)")
    sub.add_argument("--verify", action="store_true",
                     help="compare only, write nothing; exit 1 if anything differs")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sub.set_defaults(run=cmd_migrate)

    sub = command("delete", "delete a session (asks first unless --yes)")
    sub.add_argument("session_id", metavar="ID")
    sub.add_argument("-y", "--yes", action="store_true", help="do not ask")
    sub.set_defaults(run=cmd_delete)

    sub = command("prune", "delete sessions not updated for a while")
    sub.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d, 12h, 2w")
    sub.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    sub.set_defaults(run=cmd_prune)

    sub = command("stats", "count sessions and messages")
    sub.set_defaults(run=cmd_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):  # never fail on a character the stream lacks
        if hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SessionError, UserError) as error:
        return _fail(str(error))
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return _fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the contract is one line, never a traceback
        return _fail(f"unexpected {type(error).__name__}: {error}")
    finally:
        while _opened:
            with contextlib.suppress(Exception):
                _opened.pop().close()


def _fail(message: str) -> int:
    print(f"{PROG}: error: {_safe(message)}", file=sys.stderr)
    return 1
