"""Without the redis package, ``sessions`` still imports, and asking for Redis names the extra.

Each check runs in a fresh interpreter where an import hook refuses ``redis``, as if it
were not installed; the interpreter running the tests is left alone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK_REDIS = """
import sys

class NoRedis:
    def find_spec(self, name, path=None, target=None):
        if name == "redis" or name.startswith("redis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoRedis())
"""


def run(code: str, block: bool = True) -> str:
    source = (BLOCK_REDIS if block else "") + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_sessions_does_not_import_redis() -> None:
    out = run("""
        import sys
        import sessions
        print("redis" in sys.modules, "sessions.redis" in sys.modules)
    """, block=False)
    assert out.split() == ["False", "False"]


def test_redis_session_without_redis_names_the_extra() -> None:
    out = run("""
        import sessions
        try:
            from sessions import RedisSession
        except sessions.MissingDependencyError as error:
            assert isinstance(error, ImportError)
            assert isinstance(error.__cause__, ImportError)
            print(error.package, error.extra)
            print(error)
    """)
    first, message = out.splitlines()
    assert first == "redis redis"
    assert "pip install 'session-layer[redis]'" in message and "RedisSession" in message


def test_connect_to_a_redis_url_without_redis_names_the_extra() -> None:
    out = run("""
        import sessions
        for url in ("redis://127.0.0.1:6379/0", "rediss://h", "redis+cluster://h:7000"):
            try:
                sessions.connect(url)
            except sessions.MissingDependencyError as error:
                print(error.extra)
    """)
    assert out.split() == ["redis"] * 3


def test_unknown_attribute_is_still_an_attribute_error() -> None:
    out = run("""
        import sessions
        print(hasattr(sessions, "NoSuchSession"))
    """)
    assert out.strip() == "False"
