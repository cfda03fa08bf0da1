"""``QueueMiddleware``: bounded concurrency with backpressure and priorities.

Each execution that reaches this middleware becomes an :class:`Item` in a queue; a fixed set
of worker tasks takes items one at a time and grants each a slot. With the default
``asyncio.PriorityQueue`` a higher ``metadata["priority"]`` runs first (FIFO among equals);
``asyncio.Queue`` gives FIFO and ``asyncio.LifoQueue`` LIFO. A full queue makes the waiting
executions wait for room (backpressure) instead of growing without bound.

A worker only grants the slot; the rest of the chain runs in the execution's own task. That
way the job's timeout and cancellation reach the task itself (a worker running it on the
job's behalf would keep it going after the job was cancelled), and the worker holds the slot
until the execution tells it that it has finished.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobify._context import JobContext
from jobify.middleware._base import BaseMiddleware, CallNext

__all__ = ["Item", "JobifyQueue", "QueueMiddleware"]

log = logging.getLogger("jobify.queue")


class JobifyQueue(Protocol):
    """The queue interface QueueMiddleware needs (asyncio's queues satisfy it)."""

    async def put(self, item: Any) -> None: ...
    async def get(self) -> Any: ...
    def task_done(self) -> None: ...
    def qsize(self) -> int: ...


@dataclass(order=True, slots=True)
class Item:
    """One queued execution; ordered by ``(-priority, sequence)``.

    ``future`` is resolved by a worker with the slot's release future: the execution runs,
    then resolves the release future so the worker takes the next item.
    """

    sort_key: tuple[int, int]
    context: JobContext = field(compare=False)
    call_next: Any = field(compare=False)
    future: asyncio.Future[asyncio.Future[None]] = field(compare=False)


def _release(slot: asyncio.Future[None]) -> None:
    if not slot.done():
        slot.set_result(None)


class QueueMiddleware(BaseMiddleware):
    """Run at most ``workers`` executions at once (default 100), queued by priority.

    ``queue`` (default ``asyncio.PriorityQueue(maxsize=1024)``) holds the executions waiting
    for a slot; when it is full they wait for room. With the default queue a higher
    ``metadata["priority"]`` (an int, default 0) runs first, in arrival order among equals;
    an ``asyncio.Queue`` gives FIFO order and an ``asyncio.LifoQueue`` LIFO. Use one instance
    at one level of a task's chain (app, router or task): the same instance twice in a
    chain is refused at startup.
    """

    def __init__(self, queue: JobifyQueue | None = None, workers: int = 100) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self._own_queue = queue is None
        self.queue: JobifyQueue = queue if queue is not None else asyncio.PriorityQueue(1024)
        self.workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._counter = itertools.count()

    @property
    def worker_tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The worker tasks granting slots right now (none before the first execution and
        after shutdown)."""
        return tuple(self._tasks)

    def _ensure_workers(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._worker(), name=f"jobify-queue-worker-{i}")
                for i in range(self.workers)
            ]

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        metadata = context.route_options.get("metadata") or {}
        priority = metadata.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"metadata['priority'] must be an int, got {priority!r}")
        self._ensure_workers()
        granted: asyncio.Future[asyncio.Future[None]] = asyncio.get_running_loop().create_future()
        await self.queue.put(Item((-priority, next(self._counter)), context, call_next, granted))
        try:
            slot = await granted
        except asyncio.CancelledError:
            # Cancelled while queued: the worker skips a cancelled item. If the slot was
            # granted just as we were cancelled, hand it back at once.
            if granted.done() and not granted.cancelled():
                _release(granted.result())
            else:
                granted.cancel()
            raise
        try:
            return await call_next(context)
        finally:
            _release(slot)

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item: Item = await self.queue.get()
            try:
                if item.future.done():  # the waiting execution was cancelled
                    continue
                slot: asyncio.Future[None] = loop.create_future()
                item.future.set_result(slot)
                await slot
            finally:
                self.queue.task_done()

    async def shutdown(self) -> None:
        """Stop the workers; executions still queued are cancelled.

        The app calls this at shutdown, after running jobs were cancelled.
        """
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Executions still waiting for a slot would wait forever without workers.
        get_nowait = getattr(self.queue, "get_nowait", None)
        while get_nowait is not None and self.queue.qsize():
            try:
                item: Item = get_nowait()
            except asyncio.QueueEmpty:
                break
            if not item.future.done():
                item.future.cancel()
            self.queue.task_done()
        if self._own_queue:
            # asyncio queues bind to the first loop that uses them: a fresh default queue
            # lets the same middleware serve an app started again on another loop.
            self.queue = asyncio.PriorityQueue(1024)
