"""``examples/quickstart.py`` (what ``make run`` runs) behaves well, also when run again.

It runs on the default storage, ``jobify.db`` in the working directory. Its declared cron is
limited to three runs: the first run makes them, and a second run in the same directory finds
it finished (an unchanged declaration stays finished) and says so, without failing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def run_example(cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_quickstart_runs_twice_in_a_row(tmp_path: Path) -> None:
    first = run_example(tmp_path)
    assert (tmp_path / "jobify.db").exists()  # the default storage, in the working directory
    assert "push      -> hello, world success" in first
    assert "retry     -> succeeded on attempt 3 success" in first
    assert "timeout   -> timeout" in first
    assert first.count("heartbeat ") == 3, first
    assert "heartbeat 3/3" in first
    assert "done; active jobs: []" in first

    second = run_example(tmp_path)
    assert "push      -> hello, world success" in second
    assert "heartbeat " not in second.replace("heartbeat made", ""), second
    assert "heartbeat made its 3 runs in an earlier run: it stays finished" in second
    assert "done; active jobs: []" in second
