"""Cancelling a job while it runs: MAIN bodies see CancelledError, PROCESS children are
stopped, THREAD outcomes are dropped; the job is CANCELLED and nothing runs it again."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import process_tasks
import pytest

from jobify import Jobify, JobStatus, RunMode
from jobify.exceptions import JobCancelledError
from jobify.storage import SQLiteStorage
from jobify.storage.base import HistoryQuery


async def test_a_running_main_job_gets_cancelled_error_and_its_finally_runs(app: Jobify) -> None:
    started = asyncio.Event()
    seen: list[str] = []

    @app.task
    async def long() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            await asyncio.sleep(0)  # a finally block may still await
            seen.append("finally")
        return "never"

    async with app, asyncio.timeout(10):
        job = await long.push()
        await started.wait()
        running = job.status
        await job.cancel()
        assert running is JobStatus.RUNNING
        assert seen == ["cancelled", "finally"]  # cancel() returns once the run ended
        assert job.status is JobStatus.CANCELLED and job.is_done()
        with pytest.raises(JobCancelledError, match="while running") as info:
            job.result()
        assert info.value.while_running
        with pytest.raises(JobCancelledError):
            await job
        assert app.find_job(job.id) is None


async def test_a_body_that_swallows_the_cancel_still_ends_cancelled(app: Jobify) -> None:
    started = asyncio.Event()

    @app.task
    async def stubborn() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "swallowed"
        return "slept"

    async with app, asyncio.timeout(10):
        job = await stubborn.push()
        await started.wait()
        await job.cancel()
        assert job.status is JobStatus.CANCELLED


async def test_a_running_thread_job_runs_on_but_its_outcome_is_dropped(app: Jobify) -> None:
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    @app.task(run_mode=RunMode.THREAD)
    def blocking() -> str:
        started.set()
        release.wait(30)
        ended.set()
        return "late"

    async with app, asyncio.timeout(10):
        job = await blocking.push()
        await asyncio.to_thread(started.wait, 10)
        await job.cancel()
        assert job.status is JobStatus.CANCELLED
        assert not ended.is_set()  # a thread cannot be stopped: it is still running
        release.set()
        await asyncio.to_thread(ended.wait, 10)
        await asyncio.sleep(0.05)
        assert job.status is JobStatus.CANCELLED  # its late result changed nothing


async def test_a_running_process_job_has_its_child_stopped(app: Jobify, tmp_path: Path) -> None:
    task = app.task(run_mode=RunMode.PROCESS)(process_tasks.sleep_reporting_pid)
    async with app, asyncio.timeout(30):
        job = await task.push(str(tmp_path / "pid"), 30.0)
        pid = int(await asyncio.to_thread(_read_when_there, tmp_path / "pid", 20.0))
        await job.cancel()
        assert job.status is JobStatus.CANCELLED
        start = time.monotonic()
        while _alive(pid):
            if time.monotonic() - start > 5:
                raise AssertionError(f"process {pid} survived the cancel")
            await asyncio.sleep(0.01)


async def test_a_cron_cancelled_while_running_is_cancelled_as_a_whole(app: Jobify) -> None:
    started = asyncio.Event()
    fires: list[int] = []

    @app.task
    async def every_second() -> None:
        fires.append(1)
        started.set()
        await asyncio.sleep(30)

    async with app, asyncio.timeout(10):
        job = await every_second.schedule().cron("* * * * * * *", job_id="tick")
        await started.wait()
        await job.cancel()
        assert job.status is JobStatus.CANCELLED and job.is_done()
        assert app.find_job("tick") is None
        await asyncio.sleep(1.2)  # a next fire would have come by now
        assert fires == [1]


async def test_a_durable_job_cancelled_while_running_never_runs_again(tmp_path: Path) -> None:
    database = tmp_path / "jobs.db"
    started = asyncio.Event()
    runs: list[str] = []

    def make_app() -> tuple[Jobify, Any]:
        app = Jobify(storage=SQLiteStorage(database), history=True)

        @app.task(name="long")
        async def long(tag: str) -> None:
            runs.append(tag)
            started.set()
            await asyncio.sleep(30)

        return app, long

    app, long = make_app()
    async with app, asyncio.timeout(10):
        job = await long.push("first")
        await started.wait()
        await job.cancel()
        storage = app.configs.storage
        assert storage is not None
        assert await storage.get(job.id) is None  # committed before cancel() returned
        history = await _history(storage, 1)
    (run,) = history
    assert run.outcome == "cancelled"
    assert run.error_message is not None and "cancelled while running" in run.error_message
    again, _ = make_app()
    async with again:
        assert again.find_job(job.id) is None
        await asyncio.sleep(0.1)
    assert runs == ["first"]


async def _history(storage: Any, count: int) -> list[Any]:
    deadline = time.monotonic() + 5
    while True:
        runs: list[Any] = await storage.query_history(HistoryQuery())
        if len(runs) >= count or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.02)


def _read_when_there(path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} never appeared")
        time.sleep(0.01)
    return path.read_text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
