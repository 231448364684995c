"""examples/runner.py runs offline on its stub, and against OPENAI_BASE_URL when a key is set."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "runner.py"
ANSWER = "Response 2: Your name is Alice and you like Go programming."


def _stub_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_stub_server", ROOT / "examples" / "_stub_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SESSIONS_URL")}
    environ.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_offline_on_the_bundled_stub(tmp_path: Path) -> None:
    out = _run(tmp_path)
    assert "the offline stub at http://127.0.0.1:" in out
    assert ANSWER in out
    stored = [line.split(":")[0].strip() for line in out.split("stored in")[1].splitlines()[1:5]]
    assert stored == ["user", "assistant", "user", "assistant"]


def test_with_a_key_it_uses_openai_base_url(tmp_path: Path) -> None:
    stub = _stub_module()
    with stub.StubServer() as server:
        out = _run(tmp_path, OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.base_url,
                   SESSIONS_URL=f"sqlite:///{tmp_path / 'example.db'}")
    assert f"at {server.base_url}/" in out
    assert ANSWER in out
    assert (tmp_path / "example.db").exists()


def test_the_stub_needs_the_history_to_answer() -> None:
    reply_to = _stub_module().reply_to
    question = {"role": "user", "content": "What's my name and what do I like?"}
    assert reply_to([question]) == "I don't know anything about you yet."
    intro = {"role": "user", "content": "My name is Alice and I like Go programming"}
    assert reply_to([intro, {"role": "assistant", "content": "ok"}, question]) == (
        "Your name is Alice and you like Go programming.")
