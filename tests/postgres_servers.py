"""PostgreSQL servers the tests start themselves: throwaway clusters made with ``initdb``
(a primary) or ``pg_basebackup -R`` (a streaming standby of one), on free loopback
ports, in temporary directories, killed and paused by pid.

The shared server at 127.0.0.1:5432 is never stopped. As PostgreSQL refuses to run as
root, the server programs run as the ``postgres`` user when the tests run as root.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "bindir"]

_template: Path | None = None  # an initdb of this process, copied for every new cluster


def bindir() -> Path | None:
    """Where the newest installed PostgreSQL's programs are, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.split("/")[2]))
    return found


class PostgresServer:
    """One PostgreSQL cluster (a data directory and its server) on a loopback port."""

    def __init__(self, programs: Path, datadir: Path | None = None, port: int | None = None) -> None:
        self.programs = programs
        self.datadir = datadir or Path(tempfile.mkdtemp(prefix="session-layer-pg-"))
        self.port = port or _free_port()
        self.settings: tuple[str, ...] = ()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.datadir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self.as_user, str(self.programs / program), *args],
                       check=True, capture_output=True, timeout=timeout)

    def initdb(self) -> PostgresServer:
        """Make a new, empty cluster in :attr:`datadir`: a copy of one ``initdb`` made
        once per test process (the copy takes a fraction of ``initdb``'s seconds)."""
        global _template
        if _template is None:
            made = PostgresServer(self.programs)
            made._run("initdb", "-D", str(made.datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-sync", "--no-instructions")
            atexit.register(shutil.rmtree, made.datadir, True)
            _template = made.datadir
        subprocess.run(["cp", "-a", f"{_template}/.", str(self.datadir)], check=True, timeout=120)
        return self

    def start(self, *settings: str) -> PostgresServer:
        """Start the server with ``settings`` (``name=value`` pairs, given as ``-c``);
        a later :meth:`start` without settings reuses them."""
        self.settings = settings or self.settings
        options = " ".join([f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir}",
                            "-c fsync=off -c shared_buffers=16MB -c max_connections=40",
                            *(f"-c {setting}" for setting in self.settings)])
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "-l", str(self.datadir / "log"),
                  "-o", options, "start")
        return self

    def standby(self, name: str = "standby", *settings: str) -> PostgresServer:
        """A new streaming standby of this server (``pg_basebackup -R``), started with
        ``settings``; it connects with ``application_name=name`` (what
        ``synchronous_standby_names`` names)."""
        copy = PostgresServer(self.programs)
        copy.datadir.rmdir()  # pg_basebackup makes it
        self._run("pg_basebackup", "-D", str(copy.datadir), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "-X", "stream", "-R", "-c", "fast", "-d", f"application_name={name}")
        return copy.start(*settings)

    def promote(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "promote")

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, while it runs."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
            return pid
        return None

    def pids(self) -> list[int]:
        """The postmaster and its children, while it runs."""
        pid = self.pid
        return [] if pid is None else [pid, *_children(pid)]

    def _processes(self) -> list[int]:
        """The postmaster and its children, the postmaster stopped first (SIGSTOP) so that
        it forks no child that the list would miss; empty if the server is not running."""
        pid = self.pid
        if pid is None:
            return []
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while _state(pid) not in ("T", "t", "Z", None):
            if time.monotonic() > deadline:
                raise RuntimeError("the postmaster did not stop")
            time.sleep(0.001)
        return [pid, *_children(pid)]

    def kill(self) -> None:
        """SIGKILL the postmaster and every one of its processes at once, as a machine
        that dies would stop them, and wait until they are gone."""
        processes = self._processes()
        for target in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_state(p) not in ("Z", None) for p in processes):
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL processes survived SIGKILL")
            time.sleep(0.001)
        # As after a machine's death, no lock names a live process. (Here the killed
        # processes may linger as zombies, whose pids PostgreSQL would take as alive.)
        for lock in ("postmaster.pid", f".s.PGSQL.{self.port}.lock", f".s.PGSQL.{self.port}"):
            (self.datadir / lock).unlink(missing_ok=True)

    def pause(self) -> None:
        """SIGSTOP every process of the server: connections stay open, nothing answers."""
        for target in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGSTOP)

    def resume(self) -> None:
        pid = self.pid
        if pid is None:
            return
        for target in (*_children(pid), pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGCONT)

    def remove(self) -> None:
        self.resume()
        self.kill()
        shutil.rmtree(self.datadir, ignore_errors=True)


def _state(pid: int) -> str | None:
    """A process's state letter (R, S, T for stopped, Z for a zombie), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
