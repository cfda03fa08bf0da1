"""``jobify worker MODULE:APP``: runs until SIGTERM/SIGINT, lets running jobs finish within
``--grace``, exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import cli_env

APP = textwrap.dedent(
    """
    import asyncio, contextlib, os
    from pathlib import Path
    from jobify import Jobify
    from jobify.storage import SQLiteStorage

    HERE = Path(__file__).parent
    SECONDS = float(os.environ["JOB_SECONDS"])

    @contextlib.asynccontextmanager
    async def lifespan(app):
        (HERE / "concurrency").write_text(repr(getattr(app, "concurrency", None)))
        yield

    app = Jobify(storage=SQLiteStorage(HERE / "worker.db"), lifespan=lifespan)

    @app.task(cron="* * * * * * *")  # every second
    async def slow() -> None:
        marker = HERE / "started"
        if marker.exists():
            return  # one long run per test is enough
        marker.write_text(str(os.getpid()))
        await asyncio.sleep(SECONDS)
        (HERE / "finished").write_text("done")
    """
)


def start_worker(project: Path, *args: str, seconds: float) -> subprocess.Popen[str]:
    (project / "workerapp.py").write_text(APP)
    return subprocess.Popen(
        [sys.executable, "-m", "jobify", "worker", "workerapp:app", *args],
        cwd=project,
        env=cli_env(JOB_SECONDS=str(seconds)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"worker exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path.name} never appeared: {process.communicate()}")
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_the_running_job_finish_then_exits_0(
    tmp_path: Path, signum: signal.Signals
) -> None:
    worker = start_worker(tmp_path, "--grace", "10", "--concurrency", "3", seconds=0.5)
    wait_for(tmp_path / "started", worker)
    assert not (tmp_path / "finished").exists()
    worker.send_signal(signum)
    _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr
    assert (tmp_path / "finished").read_text() == "done"  # the run finished within the grace
    assert "worker started" in stderr and "concurrency 3\n" in stderr  # the limit in force
    assert f"{signum.name} received: stopping" in stderr
    assert "1 running job(s) have up to 10s to finish" in stderr
    assert "worker stopped" in stderr
    assert "Traceback" not in stderr
    assert (tmp_path / "concurrency").read_text() == "3"  # set before startup


def test_a_job_longer_than_the_grace_is_cancelled(tmp_path: Path) -> None:
    worker = start_worker(tmp_path, "--grace", "0.2", seconds=60)
    wait_for(tmp_path / "started", worker)
    stopped_at = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr
    assert time.monotonic() - stopped_at < 10  # not the job's 60 s
    assert not (tmp_path / "finished").exists()
    assert "worker stopped" in stderr
    assert (tmp_path / "concurrency").read_text() == "None"  # not set without --concurrency
    assert "concurrency no limit" in stderr  # an embedded store: no limit is in force
    # The cut run is named, and said to run again after the next start (it is stored).
    assert "shutdown cut 1 running job(s) short" in stderr
    assert "run again after the next start" in stderr


def test_store_in_use_is_a_one_line_failure(tmp_path: Path) -> None:
    first = start_worker(tmp_path, seconds=0.01)
    try:
        wait_for(tmp_path / "started", first)
        second = subprocess.run(
            [sys.executable, "-m", "jobify", "worker", "workerapp:app"],
            cwd=tmp_path,
            env=cli_env(JOB_SECONDS="0"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if line.startswith("jobify:")]
        assert len(errors) == 1, second.stderr
        assert "in use by another running process" in errors[0]
        assert f"pid {first.pid}" in errors[0]
        assert "Traceback" not in second.stderr
    finally:
        os.kill(first.pid, signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0
