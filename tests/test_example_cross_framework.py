"""examples/cross_framework.py runs offline: four frameworks, one stored conversation."""

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
    assert "8 messages stored once" in out
    roles = [line.split(":")[0].strip() for line in out.split("read back by LangChain:")[1].splitlines()[1:]]
    assert roles == ["human", "ai"] * 4
