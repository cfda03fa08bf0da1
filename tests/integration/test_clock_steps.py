"""Wall-clock steps in a real process, with libfaketime moving the process's wall clock.

libfaketime (Debian package ``faketime``) is preloaded into the app's process and re-reads
its offset from a file at every clock read, so the test steps the wall clock while the app
runs; the monotonic clock stays real, as after an NTP step or a manual change.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

LIBS = [
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
]
LIB = next((p for p in LIBS if p.exists()), None)

if LIB is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("libfaketime is missing: .ci/run installs the Debian package faketime")
    pytestmark = pytest.mark.skip(
        reason="libfaketime not installed: apt-get install faketime (CI installs it)"
    )

APP = """
import asyncio, sys, time
from jobify import Jobify

app = Jobify(storage=False)

@app.task
async def tick() -> None:
    print("TICK", round(time.time(), 3), flush=True)

@app.task
async def later() -> None:
    print("LATER", round(time.time(), 3), flush=True)

async def main() -> None:
    async with app:
        await tick.schedule().cron("* * * * * * *", job_id="tick")
        await later.schedule().delay(1800)  # due in 30 minutes of wall time
        print("READY", flush=True)
        await asyncio.sleep(float(sys.argv[1]))

asyncio.run(main())
"""


def start(tmp_path: Path, stamp: Path, seconds: float) -> subprocess.Popen[str]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    stamp.write_text("+0\n")
    env = {
        **os.environ,
        "LD_PRELOAD": str(LIB),
        "FAKETIME_TIMESTAMP_FILE": str(stamp),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(script), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_until(proc: subprocess.Popen[str], marker: str, count: int = 1) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
        if sum(item.startswith(marker) for item in seen) >= count:
            return seen
    raise AssertionError(f"{marker!r} x{count} not seen: {seen}")


def test_a_backward_step_keeps_an_every_second_cron_firing(tmp_path: Path) -> None:
    stamp = tmp_path / "faketime"
    proc = start(tmp_path, stamp, 6)
    try:
        read_until(proc, "READY")
        read_until(proc, "TICK")
        stamp.write_text("-1h\n")  # an hour back
        t0 = time.monotonic()
        lines = read_until(proc, "TICK", 2)
        assert time.monotonic() - t0 < 3.5  # not silent for an hour
        ticks = [float(line.split()[1]) for line in lines if line.startswith("TICK")]
        assert ticks[-1] < time.time() - 3000  # fired at the new, earlier wall time
    finally:
        proc.kill()
        proc.communicate()


def test_a_forward_step_runs_an_overdue_job_within_a_second(tmp_path: Path) -> None:
    stamp = tmp_path / "faketime"
    proc = start(tmp_path, stamp, 6)
    try:
        read_until(proc, "READY")
        stamp.write_text("+1h\n")  # an hour ahead: the 30-minute job is overdue
        t0 = time.monotonic()
        lines = read_until(proc, "LATER")
        assert time.monotonic() - t0 < 2.5  # noticed within about a second
        assert any(line.startswith("TICK") for line in lines)  # the cron kept going
    finally:
        proc.kill()
        proc.communicate()
