"""PROCESS jobs cut short (timeout) have their own child process stopped, and only it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import process_tasks

from jobify import Jobify, JobStatus, RunMode


def _read_when_there(path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} never appeared")
        time.sleep(0.01)
    return path.read_text()


async def _wait_for_file(path: Path, timeout: float = 30.0) -> str:
    """The content of a file a child process writes (atomically), once it is there."""
    return await asyncio.to_thread(_read_when_there, path, timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _wait_gone(pid: int, within: float) -> float:
    """Seconds until ``pid`` no longer exists; fails after ``within``."""
    start = time.monotonic()
    while _alive(pid):
        if time.monotonic() - start > within:
            raise AssertionError(f"process {pid} still exists after {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_a_timed_out_process_job_has_its_child_stopped(app: Jobify, tmp_path: Path) -> None:
    slow = app.task(run_mode=RunMode.PROCESS, timeout=0.5, name="slow")(
        process_tasks.sleep_reporting_pid
    )
    other = app.task(run_mode=RunMode.PROCESS, name="other")(process_tasks.sleep_reporting_pid)
    warm = app.task(run_mode=RunMode.PROCESS)(process_tasks.worker_pid)
    async with app, asyncio.timeout(60):
        # Two children started and idle first: the 0.5 s are the job's, not a cold start's.
        await asyncio.gather(*[await warm.push(0) for _ in range(2)])
        victim = await slow.push(str(tmp_path / "slow"), 30.0)
        neighbour = await other.push(str(tmp_path / "other"), 1.5)
        slow_pid = int(await _wait_for_file(tmp_path / "slow"))
        other_pid = int(await _wait_for_file(tmp_path / "other"))
        assert slow_pid != other_pid
        await victim.wait()
        assert victim.status is JobStatus.TIMEOUT
        await _wait_gone(slow_pid, within=2.0)
        # The neighbour in the same pool is untouched and completes.
        assert await neighbour == "slept"
        assert _alive(other_pid)  # kept for the next job
        # The pool replaces the stopped child: a new job runs in a fresh process.
        again = await other.push(str(tmp_path / "again"), 0.0)
        assert await again == "slept"
        assert int(await _wait_for_file(tmp_path / "again")) != slow_pid


async def test_a_child_that_dies_fails_its_job_clearly(app: Jobify) -> None:
    crash = app.task(run_mode=RunMode.PROCESS)(process_tasks.exit_now)
    fine = app.task(run_mode=RunMode.PROCESS)(process_tasks.worker_pid)
    async with app, asyncio.timeout(60):
        job = await crash.push()
        await job.wait()
        assert job.status is JobStatus.FAILED
        assert "exited unexpectedly (exit code 3)" in str(job.exception)
        assert await (await fine.push(0)) != os.getpid()


async def test_an_exception_in_the_child_keeps_its_traceback(app: Jobify, tmp_path: Path) -> None:
    flaky = app.task(run_mode=RunMode.PROCESS)(process_tasks.fail_until_third)
    async with app, asyncio.timeout(60):
        job = await flaky.push(str(tmp_path / "n"))
        await job.wait()
        assert isinstance(job.exception, ValueError)
        notes = "".join(getattr(job.exception, "__notes__", []))
        assert "in the worker process" in notes and "fail_until_third" in notes
