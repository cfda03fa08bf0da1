"""``QueueMiddleware``: bounded concurrency with backpressure and priorities.

Each execution that reaches this middleware becomes an :class:`Item` in a queue; a fixed set
of worker tasks takes items and runs the rest of the chain. With the default
``asyncio.PriorityQueue`` a higher ``metadata["priority"]`` runs first (FIFO among equals);
``asyncio.Queue`` gives FIFO and ``asyncio.LifoQueue`` LIFO. A full queue makes the waiting
executions wait for room (backpressure) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobify.context import JobContext

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
    """One queued execution; ordered by ``(-priority, sequence)``."""

    sort_key: tuple[int, int]
    context: JobContext = field(compare=False)
    call_next: Any = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)


class QueueMiddleware:
    """Run at most ``workers`` executions at once, queued by priority."""

    def __init__(self, queue: JobifyQueue | None = None, workers: int = 100) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.queue: JobifyQueue = queue if queue is not None else asyncio.PriorityQueue(1024)
        self.workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._counter = itertools.count()

    def _ensure_workers(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._worker()) for _ in range(self.workers)]

    async def __call__(self, call_next: Any, context: JobContext) -> Any:
        self._ensure_workers()
        metadata = context.route_options.get("metadata") or {}
        priority = metadata.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"metadata['priority'] must be an int, got {priority!r}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put(Item((-priority, next(self._counter)), context, call_next, future))
        return await future

    async def _worker(self) -> None:
        while True:
            item: Item = await self.queue.get()
            try:
                if item.future.done():  # the waiting execution was cancelled
                    continue
                try:
                    result = await item.call_next(item.context)
                except asyncio.CancelledError:
                    if not item.future.done():
                        item.future.cancel()
                    raise
                except BaseException as exc:
                    if not item.future.done():
                        item.future.set_exception(exc)
                else:
                    if not item.future.done():
                        item.future.set_result(result)
            finally:
                self.queue.task_done()

    async def shutdown(self) -> None:
        """Cancel the workers; executions still queued are cancelled with them."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
