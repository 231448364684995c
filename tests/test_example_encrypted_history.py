"""examples/encrypted_history.py runs as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_encrypted_history_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "encrypted_history.py")], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert "messages rewritten under the new key: 2" in result.stdout
    assert "wrong key:" in result.stdout and "still stored: 2 messages" in result.stdout
    assert "unchanged=1" in result.stdout
