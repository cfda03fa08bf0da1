"""The README's quickstart is real code: run it (in a temporary working directory)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    (block,) = python_blocks()
    script = tmp_path / "quickstart.py"
    script.write_text(block)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello, world"
    assert (tmp_path / "jobify.db").exists()  # the default storage is a SQLite file in cwd


def test_make_run_example_runs() -> None:
    example = README.parent / "examples" / "quickstart.py"
    proc = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "timeout   -> timeout" in proc.stdout
    assert proc.stdout.count("heartbeat at") == 3
