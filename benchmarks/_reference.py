"""The reference system (PyPI ``jobify`` 0.14.0) as a yardstick, in a venv of its own.

Both packages are called ``jobify``, so the reference can never share an interpreter with
ours: ``make bench`` creates ``benchmarks/.venv-reference`` on demand (``python -m venv`` +
``pip install``; git-ignored) and runs the same workload functions there, in a subprocess of
that venv's interpreter. Our workloads use only the public API, which the reference shares.
The reference is a benchmark dependency only; nothing in ``src/`` imports it.

``JOBIFY_BENCH_REFERENCE=0`` skips it (rows then show ours only, and say why).
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

VERSION = "0.14.0"
VENV = Path(__file__).resolve().parent / ".venv-reference"
# What the reference's workloads need besides the package itself (``h.rss_mb`` uses psutil).
REQUIREMENTS = [f"jobify=={VERSION}", "psutil"]
# A child started by the harness for the reference side says so, and checks what it imported.
SIDE_ENV = "JOBIFY_BENCH_SIDE"


def _python() -> Path:
    return VENV / "bin" / "python"


def _installed_version(python: Path) -> str | None:
    probe = "import importlib.metadata as m, psutil; print(m.version('jobify'))"
    proc = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, env=child_env(), check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


@cache
def python() -> tuple[str | None, str]:
    """The reference venv's interpreter (created on first use), or None and the reason."""
    if os.environ.get("JOBIFY_BENCH_REFERENCE", "1") == "0":
        return None, "reference skipped (JOBIFY_BENCH_REFERENCE=0)"
    interpreter = _python()
    if interpreter.exists() and _installed_version(interpreter) == VERSION:
        return str(interpreter), ""
    print(f"  (creating {VENV.name} with jobify=={VERSION} ...)", file=sys.stderr, flush=True)
    try:
        if not interpreter.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True
            )
        subprocess.run(
            [str(interpreter), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        last = (detail.strip().splitlines() or ["?"])[-1]
        return None, f"reference unavailable (pip install jobify=={VERSION} failed: {last})"
    if _installed_version(interpreter) != VERSION:
        return None, f"reference unavailable (jobify=={VERSION} did not import in {VENV.name})"
    return str(interpreter), ""


def child_env() -> dict[str, str]:
    """The environment of a reference child: nothing that could put our package on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env[SIDE_ENV] = "reference"
    return env


def check_side() -> None:
    """In a child: fail loudly if the side the parent asked for is not the one imported."""
    import importlib.metadata

    if os.environ.get(SIDE_ENV) != "reference":
        return
    found = importlib.metadata.version("jobify")
    if found != VERSION:
        raise SystemExit(f"reference child imported jobify {found}, expected {VERSION}")
