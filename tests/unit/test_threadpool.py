"""The thread pool of RunMode.THREAD: our own workers, batched results, shutdown."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from functools import partial

import pytest

from jobify import Jobify, JobStatus
from jobify._threadpool import ThreadCalls, Workers

WAIT = 10.0  # generous: the machine may be busy; every wait below ends on an event


async def test_blocking_def_jobs_run_side_by_side() -> None:
    app = Jobify(storage=False)
    together = threading.Barrier(4, timeout=WAIT)

    @app.task
    def meet(i: int) -> int:
        together.wait()  # only passes when four calls run at once, on four threads
        return i

    async with app:
        jobs = await asyncio.gather(*(meet.push(i) for i in range(4)))
        results = [await job for job in jobs]
    assert results == [0, 1, 2, 3]


async def test_a_failing_def_job_fails_with_its_exception() -> None:
    app = Jobify(storage=False)

    @app.task
    def boom() -> None:
        raise ValueError("no")

    async with app:
        job = await boom.push()
        await job.wait()
    assert job.status is JobStatus.FAILED
    assert isinstance(job.exception, ValueError)


async def test_context_variables_go_with_the_call() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    app = Jobify(storage=False)

    @app.task
    def read() -> str:
        return var.get()

    async with app:
        var.set("set on the loop")
        assert await (await read.push()) == "set on the loop"


async def test_our_threads_end_at_shutdown() -> None:
    app = Jobify(storage=False)

    @app.task
    def ident() -> int:
        return threading.get_ident()

    async with app:
        idents = {await job for job in await asyncio.gather(*(ident.push() for _ in range(20)))}
    ours = [t for t in threading.enumerate() if t.ident in idents]
    for thread in ours:
        thread.join(WAIT)
        assert not thread.is_alive(), thread.name


async def test_many_results_come_back_in_batches() -> None:
    loop = asyncio.get_running_loop()
    workers = Workers(max_workers=3)
    calls = ThreadCalls(loop, workers.submit)
    try:
        results = await asyncio.gather(*(calls.call(partial(pow, i, 2)) for i in range(2000)))
        assert results == [i * i for i in range(2000)]
        assert len(workers._threads) <= 3
    finally:
        workers.shutdown()


async def test_a_call_cancelled_before_it_began_never_runs() -> None:
    loop = asyncio.get_running_loop()
    workers = Workers(max_workers=1)
    calls = ThreadCalls(loop, workers.submit)
    release = threading.Event()
    ran: list[str] = []
    try:
        first = calls.call(lambda: release.wait(WAIT))
        second = calls.call(lambda: ran.append("second"))
        second.cancel()
        release.set()
        assert await first is True
        third = calls.call(lambda: "third")  # queued behind the cancelled one: it ran first
        assert await third == "third"
        assert ran == []
        assert not calls._inflight  # the skipped call left the calls in flight too
    finally:
        workers.shutdown()


async def test_cancel_all_answers_every_waiting_caller() -> None:
    loop = asyncio.get_running_loop()
    workers = Workers(max_workers=1)
    calls = ThreadCalls(loop, workers.submit)
    release = threading.Event()
    try:
        running = calls.call(lambda: release.wait(WAIT))
        queued = calls.call(lambda: "never")
        calls.cancel_all()
        with pytest.raises(asyncio.CancelledError):
            await queued
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        release.set()
        workers.shutdown()
