"""A real app running on a SQLite store in another process, for the "inspect while it runs"
tests: it keeps scheduling jobs of its own (its writes must continue while it is inspected)
and stops when told to, reporting what it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from .conftest import cli_env

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from jobify import Jobify
    from jobify.storage import SQLiteStorage

    store, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    app = Jobify(storage=SQLiteStorage(store))

    @app.task
    async def note(n: int) -> None:
        (workdir / f"ran-{n}").write_text("ran")

    async def main() -> None:
        async with app:
            await note.schedule(0).delay(3600, job_id="steer-me")
            await note.schedule(-1).delay(3600, job_id="cancel-me")
            print("ready", flush=True)
            written, longest, last = 0, 0.0, time.monotonic()
            while not (workdir / "stop").exists():
                await note.schedule(written + 1).delay(3600, job_id=f"own-{written + 1}")
                written += 1
                now = time.monotonic()
                longest, last = max(longest, now - last), now
                await asyncio.sleep(0.005)
        print(json.dumps({"written": written, "longest_gap": longest}), flush=True)

    asyncio.run(main())
    """
)


class RunningApp:
    """Start with :meth:`start`, stop with :meth:`stop` (returns the app's report)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.store = workdir / "running.db"
        self.url = f"sqlite:///{self.store}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        script = self.workdir / "running_app.py"
        script.write_text(SCRIPT)
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(self.store), str(self.workdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until the app is up (or dies)
        if line.strip() != "ready":
            self.process.kill()
            raise AssertionError(f"the app did not start: {line!r} {self.process.communicate()}")

    def stop(self) -> dict[str, float]:
        assert self.process is not None
        (self.workdir / "stop").write_text("")
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err
        assert "Traceback" not in err, err
        report = json.loads(out.strip().splitlines()[-1])
        assert isinstance(report, dict)
        return report

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def eventually(check: object, timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true (polled every 20 ms), or fail."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        time.sleep(0.02)
