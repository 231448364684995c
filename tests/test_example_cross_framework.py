"""examples/cross_framework.py runs offline: four frameworks, one stored conversation,
a LangChain agent with a tool among them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cross_framework_example_offline(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SESSIONS_URL")}
    environ["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "cross_framework.py")], cwd=tmp_path,
                          env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # Later frameworks answer from facts only earlier frameworks were told.
    assert "runner     > Your name is Alice and you like Python." in out
    assert "Agents SDK > Your name is Alice and you like Python." in out
    # The LangChain agent read what LlamaIndex was told and called its tool with it.
    assert "LangChain  > Since you like Python, try Fluent Python by Luciano Ramalho." in out
    assert "12 messages stored once" in out
    lines = out.split("read back by LangChain:")[1].splitlines()[1:]
    roles = [line.split(":")[0].strip() for line in lines]
    assert roles == ["human", "ai"] * 5 + ["tool", "ai"]
    assert lines[9].strip() == "ai: recommend_book({'topic': 'Python'})"
