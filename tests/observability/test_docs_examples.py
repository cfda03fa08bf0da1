"""Every ```python block of docs/observability.md is a complete program: run each one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", PAGE.read_text(), flags=re.S | re.M)


def test_the_page_has_examples_and_only_python_blocks() -> None:
    assert len(python_blocks()) >= 2
    fences = re.findall(r"^```(.*)$", PAGE.read_text(), flags=re.M)
    openers = fences[::2]
    assert openers == ["python"] * len(openers), "every code block is a runnable example"


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_example_runs(index: int, tmp_path: Path) -> None:
    block = python_blocks()[index]
    assert re.search(r"Jobify\(\s*storage=False", block), "examples use Jobify(storage=False)"
    script = tmp_path / f"example_{index}.py"
    script.write_text(block)
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "an example shows what it did"
    assert not list(tmp_path.glob("*.db")), "an example left a database file behind"
