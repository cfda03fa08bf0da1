"""``mypy --strict`` on ``call_shapes.py``: every documented call shape type-checks.

The snippet is also run as a program, so the shapes it checks are shapes that work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = Path(__file__).with_name("call_shapes.py")


def test_call_shapes_pass_mypy_strict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(SNIPPET)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mypy --strict errors:\n{proc.stdout}{proc.stderr}"
    assert not proc.stdout.strip(), proc.stdout


def test_call_shapes_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(SNIPPET)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.iterdir()), "the snippet runs in memory and leaves no file"
