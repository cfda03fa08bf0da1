"""Run modes: where a task's function really runs, with timeouts and retries in each."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import process_tasks
import pytest

from jobify import Jobify, JobStatus, RunMode
from jobify.exceptions import JobTimeoutError


async def test_main_async_runs_on_the_loop(app: Jobify) -> None:
    @app.task
    async def where() -> int:
        return threading.get_ident()

    async with app:
        assert await (await where.push()) == threading.get_ident()


async def test_main_on_a_def_runs_inline_on_the_loop_thread(app: Jobify) -> None:
    @app.task(run_mode=RunMode.MAIN)
    def where() -> tuple[int, bool]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return threading.get_ident(), False
        return threading.get_ident(), True

    async with app:
        ident, on_loop = await (await where.push())
        assert ident == threading.get_ident()
        assert on_loop


async def test_thread_def_runs_in_a_worker_thread(app: Jobify) -> None:
    @app.task  # a def defaults to THREAD
    def where() -> int:
        return threading.get_ident()

    assert where.route_options["run_mode"] is RunMode.THREAD
    async with app:
        ident = await (await where.push())
        assert ident != threading.get_ident()


async def test_thread_async_def_runs_on_its_own_loop(app: Jobify) -> None:
    main_loop = asyncio.get_running_loop()

    @app.task(run_mode=RunMode.THREAD)
    async def where() -> tuple[int, bool]:
        await asyncio.sleep(0)
        return threading.get_ident(), asyncio.get_running_loop() is main_loop

    async with app:
        ident, same_loop = await (await where.push())
        assert ident != threading.get_ident()
        assert not same_loop


async def test_custom_threadpool_executor_is_used_and_left_open() -> None:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custom-pool")
    app = Jobify(storage=False, threadpool_executor=pool)

    @app.task
    def name() -> str:
        return threading.current_thread().name

    try:
        async with app:
            assert (await (await name.push())).startswith("custom-pool")
        # Not ours to close: still usable after the app shut down.
        assert pool.submit(lambda: 5).result(timeout=5) == 5
    finally:
        pool.shutdown()


async def test_thread_timeout_discards_the_late_result(app: Jobify) -> None:
    finished = threading.Event()

    @app.task(timeout=0.05)
    def slow() -> str:
        time.sleep(0.3)
        finished.set()
        return "late"

    async with app:
        job = await slow.push()
        await job.wait()
        assert job.status is JobStatus.TIMEOUT
        assert not finished.is_set()  # it timed out while the thread was still sleeping
        await asyncio.to_thread(finished.wait, 5)
        await asyncio.sleep(0.01)
        assert job.status is JobStatus.TIMEOUT  # the late result did not land
        with pytest.raises(JobTimeoutError):
            job.result()


async def test_thread_async_timeout(app: Jobify) -> None:
    @app.task(run_mode=RunMode.THREAD, timeout=0.05)
    async def slow() -> str:
        await asyncio.sleep(0.3)
        return "late"

    async with app:
        job = await slow.push()
        await job.wait()
        assert job.status is JobStatus.TIMEOUT


async def test_main_def_and_thread_retries(app: Jobify) -> None:
    inline_calls: list[int] = []
    thread_calls: list[int] = []

    @app.task(run_mode=RunMode.MAIN, retry=2)
    def flaky_inline() -> int:
        inline_calls.append(1)
        if len(inline_calls) < 3:
            raise ValueError("not yet")
        return len(inline_calls)

    @app.task(retry=1)
    def flaky_thread() -> int:
        thread_calls.append(1)
        if len(thread_calls) < 2:
            raise ValueError("not yet")
        return len(thread_calls)

    async with app:
        assert await (await flaky_inline.push()) == 3
        assert await (await flaky_thread.push()) == 2


async def test_process_def_runs_in_another_process(app: Jobify) -> None:
    task = app.task(run_mode=RunMode.PROCESS)(process_tasks.worker_pid)
    async with app, asyncio.timeout(30):  # a stuck worker fails the test, not the suite
        job = await task.push(1000)
        pid_plus = await job
        assert pid_plus - 1000 != os.getpid()
        assert job.status is JobStatus.SUCCESS


async def test_process_async_def_runs_on_a_loop_in_another_process(app: Jobify) -> None:
    task = app.task(run_mode=RunMode.PROCESS)(process_tasks.async_worker_pid)
    async with app, asyncio.timeout(30):
        pid, loop_running = await (await task.push())
        assert pid != os.getpid()
        assert loop_running


async def test_process_timeout_and_retry(app: Jobify, tmp_path: Path) -> None:
    slow = app.task(run_mode=RunMode.PROCESS, timeout=0.05)(process_tasks.sleep_then_return)
    flaky = app.task(run_mode=RunMode.PROCESS, retry=2)(process_tasks.fail_until_third)
    async with app, asyncio.timeout(30):
        job = await slow.push(0.3)
        await job.wait()
        assert job.status is JobStatus.TIMEOUT
        retried = await flaky.push(str(tmp_path / "attempts"))
        assert await retried == "ok after 3"


async def test_custom_processpool_executor_is_used() -> None:
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    app = Jobify(storage=False, processpool_executor=pool)
    task = app.task(run_mode=RunMode.PROCESS)(process_tasks.worker_pid)
    try:
        pool_pid = pool.submit(os.getpid).result(timeout=30)
        async with app, asyncio.timeout(30):
            assert await (await task.push()) == pool_pid
        assert pool.submit(os.getpid).result(timeout=30) == pool_pid  # left open
    finally:
        pool.shutdown()
