"""QueueMiddleware: bounded concurrency, backpressure, priority/FIFO/LIFO order, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterable
from typing import Any

import pytest

from jobify import Job, JobContext, Jobify, JobRouter, JobStatus
from jobify.middleware import BaseMiddleware, CallNext, Item, JobifyQueue, QueueMiddleware

GUARD = 5.0  # seconds: a broken queue fails the test instead of hanging it


class Arrivals(BaseMiddleware):
    """Placed before the queue: counts executions that reached it.

    ``QueueMiddleware.put`` on a queue with room does not suspend, so once ``reached(n)``
    returns, the n-th execution is in the queue (or waiting for room in a full one).
    """

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        self.count += 1
        self._changed.set()
        return await call_next(context)

    async def reached(self, n: int) -> None:
        async with asyncio.timeout(GUARD):
            while self.count < n:
                self._changed.clear()
                await self._changed.wait()


class Gate:
    """Jobs ``enter`` and block until ``open``; tracks how many run at once."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.running = 0
        self.peak = 0
        self.order: list[str] = []
        self._entered = asyncio.Event()

    async def enter(self, name: str) -> None:
        self.order.append(name)
        self.running += 1
        self.peak = max(self.peak, self.running)
        self._entered.set()
        try:
            await self.opened.wait()
        finally:
            self.running -= 1

    async def running_at_least(self, n: int) -> None:
        async with asyncio.timeout(GUARD):
            while self.running < n:
                self._entered.clear()
                await self._entered.wait()


async def wait_all(jobs: Iterable[Job[Any]]) -> None:
    async with asyncio.timeout(GUARD):
        for job in jobs:
            await job.wait()


def make_app(queue_mw: QueueMiddleware) -> tuple[Jobify, Arrivals, Gate, Any]:
    """An app whose ``task(priority)`` tasks all go through ``queue_mw``."""
    arrivals = Arrivals()
    gate = Gate()
    app = Jobify(storage=False, middleware=[arrivals, queue_mw])

    def task(name: str, priority: int | None = None) -> Any:
        metadata = {} if priority is None else {"priority": priority}

        @app.task(name=name, metadata=metadata)
        async def run(label: str) -> str:
            await gate.enter(label)
            return label

        return run

    return app, arrivals, gate, task


async def test_bounded_concurrency() -> None:
    mw = QueueMiddleware(workers=3)
    app, arrivals, gate, task = make_app(mw)
    work = task("work")
    async with app:
        jobs = [await work.push(str(i)) for i in range(10)]
        await arrivals.reached(10)
        await gate.running_at_least(3)
        for _ in range(5):
            await asyncio.sleep(0)
        assert gate.running == 3
        assert mw.queue.qsize() == 7
        assert all(job.status is JobStatus.RUNNING for job in jobs)
        gate.opened.set()
        await wait_all(jobs)
    assert gate.peak == 3
    assert [job.result() for job in jobs] == [str(i) for i in range(10)]


async def test_priority_order_under_a_full_worker() -> None:
    mw = QueueMiddleware(workers=1)
    app, arrivals, gate, task = make_app(mw)
    blocker = task("blocker")
    tasks = {
        "low": task("low", 1),
        "high": task("high", 10),
        "mid": task("mid", 5),
        "high2": task("high2", 10),
        "default": task("default"),
        "negative": task("negative", -3),
        "mid2": task("mid2", 5),
    }
    async with app:
        first = await blocker.push("blocker")
        await gate.running_at_least(1)
        jobs = [first] + [await t.push(name) for name, t in tasks.items()]
        await arrivals.reached(len(jobs))
        assert gate.order == ["blocker"]
        gate.opened.set()
        await wait_all(jobs)
    # Higher priority first; FIFO among equals; no priority means 0.
    assert gate.order == ["blocker", "high", "high2", "mid", "mid2", "low", "default", "negative"]
    assert gate.peak == 1


@pytest.mark.parametrize(
    ("queue_factory", "expected"),
    [
        (asyncio.Queue, ["blocker", "a", "b", "c", "d"]),
        (asyncio.LifoQueue, ["blocker", "d", "c", "b", "a"]),
    ],
)
async def test_fifo_and_lifo_queues_ignore_priority(
    queue_factory: type[asyncio.Queue[Any]], expected: list[str]
) -> None:
    queue: JobifyQueue = queue_factory()
    mw = QueueMiddleware(queue, workers=1)
    app, arrivals, gate, task = make_app(mw)
    blocker = task("blocker")
    ranked = [task("a", 1), task("b", 100), task("c", -5), task("d", 7)]
    async with app:
        jobs = [await blocker.push("blocker")]
        await gate.running_at_least(1)
        jobs += [await t.push(t.name) for t in ranked]
        await arrivals.reached(5)
        gate.opened.set()
        await wait_all(jobs)
    assert gate.order == expected


async def test_backpressure_waits_instead_of_failing() -> None:
    queue: asyncio.PriorityQueue[Item] = asyncio.PriorityQueue(maxsize=2)
    mw = QueueMiddleware(queue, workers=1)
    app, arrivals, gate, task = make_app(mw)
    work = task("work")
    async with app:
        jobs = [await work.push(str(i)) for i in range(6)]
        await arrivals.reached(6)
        await gate.running_at_least(1)
        for _ in range(5):
            await asyncio.sleep(0)
        # One running, two queued, three waiting for room: nobody failed.
        assert queue.qsize() == 2 and queue.full()
        assert gate.running == 1
        assert all(not job.is_done() for job in jobs)
        gate.opened.set()
        await wait_all(jobs)
    assert [job.status for job in jobs] == [JobStatus.SUCCESS] * 6
    assert sorted(gate.order) == [str(i) for i in range(6)]
    assert gate.peak == 1


async def test_errors_pass_through_and_free_the_slot() -> None:
    mw = QueueMiddleware(workers=1)
    app = Jobify(storage=False, middleware=[mw])

    @app.task
    async def fail() -> None:
        raise ValueError("inside the queue")

    @app.task
    async def ok() -> str:
        return "ok"

    async with app:
        bad = await fail.push()
        good = await ok.push()
        await wait_all([bad, good])
    assert bad.status is JobStatus.FAILED and isinstance(bad.exception, ValueError)
    assert good.result() == "ok"


async def test_timeout_reaches_running_and_queued_jobs_and_frees_the_slot() -> None:
    mw = QueueMiddleware(workers=1)
    app = Jobify(storage=False, middleware=[mw])
    events: list[str] = []

    @app.task(timeout=0.05)
    async def hang() -> None:
        events.append("hang started")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("hang cancelled")
            raise

    @app.task(timeout=0.01)
    async def queued_too_long() -> None:
        events.append("queued ran")

    @app.task
    async def after() -> str:
        events.append("after ran")
        return "done"

    async with app:
        running = await hang.push()
        starved = await queued_too_long.push()
        last = await after.push()
        await wait_all([running, starved, last])
    assert running.status is JobStatus.TIMEOUT
    assert starved.status is JobStatus.TIMEOUT
    # The timed-out job itself was cancelled (not left running in a worker), the job that
    # timed out while queued never ran, and the slot went to the next one.
    assert events == ["hang started", "hang cancelled", "after ran"]
    assert last.result() == "done"


async def test_shutdown_cancels_running_and_queued_jobs_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue: asyncio.PriorityQueue[Item] = asyncio.PriorityQueue(maxsize=2)
    mw = QueueMiddleware(queue, workers=2)
    app, arrivals, gate, task = make_app(mw)
    work = task("work")
    tasks_before = asyncio.all_tasks()
    async with app:
        jobs = [await work.push(str(i)) for i in range(7)]  # 2 running, 2 queued, 3 waiting
        await arrivals.reached(7)
        await gate.running_at_least(2)
        workers = mw.worker_tasks
        assert len(workers) == 2
    assert all(w.done() for w in workers)
    assert mw.worker_tasks == ()
    assert [job.status for job in jobs] == [JobStatus.CANCELLED] * 7
    assert gate.running == 0
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks_before
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "destroyed" not in caplog.text


async def test_shutdown_drains_an_idle_queue_and_can_be_called_twice() -> None:
    mw = QueueMiddleware(workers=2)
    await mw.shutdown()  # never started: nothing to do
    app = Jobify(storage=False, middleware=[mw])

    @app.task
    async def work(n: int) -> int:
        return n

    async with app:
        jobs = [await work.push(i) for i in range(5)]
        await wait_all(jobs)
        workers = mw.worker_tasks
    assert [job.result() for job in jobs] == list(range(5))
    assert workers and all(w.done() for w in workers)
    await mw.shutdown()


async def test_router_level_queue_bounds_only_its_tasks() -> None:
    mw = QueueMiddleware(workers=1)
    gate = Gate()
    app = Jobify(storage=False)
    router = JobRouter(prefix="bounded", middleware=[mw])

    @router.task
    async def bounded(label: str) -> None:
        await gate.enter(label)

    @app.task
    async def free(label: str) -> None:
        await gate.enter(label)

    app.include_router(router)
    async with app:
        jobs = [await bounded.push("b1"), await bounded.push("b2")]
        jobs += [await free.push("f1"), await free.push("f2")]
        await gate.running_at_least(3)
        for _ in range(5):
            await asyncio.sleep(0)
        assert sorted(gate.order) == ["b1", "f1", "f2"]
        gate.opened.set()
        await wait_all(jobs)
    assert sorted(gate.order) == ["b1", "b2", "f1", "f2"]


async def test_bad_priority_fails_the_job() -> None:
    app = Jobify(storage=False, middleware=[QueueMiddleware(workers=1)])

    @app.task(metadata={"priority": "high"})
    async def work() -> None:
        raise AssertionError("must not run")

    async with app:
        job = await work.push()
        await wait_all([job])
    assert job.status is JobStatus.FAILED
    assert isinstance(job.exception, TypeError)
    assert "priority" in str(job.exception)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5])
def test_workers_must_be_a_positive_int(workers: Any) -> None:
    with pytest.raises(ValueError, match="workers"):
        QueueMiddleware(workers=workers)


def test_defaults() -> None:
    mw = QueueMiddleware()
    assert mw.workers == 100
    assert isinstance(mw.queue, asyncio.PriorityQueue)
    assert mw.queue.maxsize == 1024


def test_the_same_middleware_serves_apps_on_two_event_loops() -> None:
    import asyncio as aio

    from jobify import Jobify
    from jobify.middleware import QueueMiddleware

    middleware = QueueMiddleware(workers=1)

    def run_once() -> int:
        async def main() -> int:
            app = Jobify(storage=False, middleware=[middleware])

            @app.task
            async def one() -> int:
                return 1

            async with app:
                total = 0
                for _ in range(3):  # the worker waits on an empty queue between jobs
                    total += await aio.wait_for(await one.push(), timeout=5)
                return total

        return aio.run(main())

    assert run_once() == 3
    assert run_once() == 3  # a second asyncio.run: a new loop


async def test_one_queue_instance_twice_in_a_chain_is_a_clear_startup_error() -> None:
    from jobify import Jobify, JobRouter
    from jobify.middleware import QueueMiddleware

    queue = QueueMiddleware(workers=1)
    app = Jobify(storage=False, middleware=[queue])
    router = JobRouter(prefix="r", middleware=[queue])

    @router.task
    async def work() -> None:
        pass

    app.include_router(router)
    with pytest.raises(ValueError, match="same QueueMiddleware instance"):
        await app.startup()
    assert app.get_active_jobs() == []
