"""SIGINT/SIGTERM during ``async with app``: graceful shutdown, then the signal's usual effect."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SCRIPT = """
import asyncio, contextlib, sys
from jobify import Jobify
from jobify.storage import SQLiteStorage

@contextlib.asynccontextmanager
async def lifespan(app):
    yield
    print("LIFESPAN-EXIT", flush=True)

app = Jobify(storage=SQLiteStorage(sys.argv[1]), lifespan=lifespan)

@app.task
async def later() -> None:
    pass

async def main() -> None:
    try:
        async with app:
            await later.schedule().delay(3600, job_id="kept")
            print("READY", flush=True)
            await asyncio.sleep(30)
    finally:
        print("SHUTDOWN-DONE", app.get_active_jobs() == [], flush=True)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("KEYBOARD-INTERRUPT", flush=True)
    raise SystemExit(130)
"""


@pytest.mark.parametrize(
    ("sig", "expected_rc", "marker"),
    [(signal.SIGINT, 130, "KEYBOARD-INTERRUPT"), (signal.SIGTERM, -signal.SIGTERM, None)],
)
def test_signal_shuts_down_gracefully_then_reraises(
    tmp_path: Path, sig: signal.Signals, expected_rc: int, marker: str | None
) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    db = tmp_path / "jobs.db"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == expected_rc, err
    assert "LIFESPAN-EXIT" in out  # the app shut down before the signal took effect
    if marker:  # SIGINT: KeyboardInterrupt reaches the caller after shutdown
        assert "SHUTDOWN-DONE True" in out
        assert marker in out
    # The durable job was left in storage for the next start.
    import sqlite3

    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT job_id FROM jobify_schedules").fetchall() == [("kept",)]
    finally:
        con.close()
