"""A thread that runs blocking storage calls in order, for a driver that blocks (``sqlite3``)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from jobify.storage.affinity import CpuFollower

__all__ = ["Done", "WorkerThread"]

logger = logging.getLogger("jobify.storage")

Done = Callable[[Any, BaseException | None], None]
"""Called on the event loop with ``(result, None)`` or ``(None, error)`` when work is done."""


class WorkerThread:
    """Runs submitted callables one at a time, in submission order, in one dedicated thread.

    Each finished call is reported to the event loop with exactly one
    ``call_soon_threadsafe``. ``map_error`` turns an exception raised by the work into the one
    reported (it runs in the thread; e.g. a driver error into a StorageError).
    """

    def __init__(
        self,
        name: str,
        loop: asyncio.AbstractEventLoop,
        map_error: Callable[[Exception], BaseException],
    ) -> None:
        self._loop = loop
        self._map_error = map_error
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Done] | None] = queue.SimpleQueue()
        # Daemon: a storage the app forgot to shut down must not keep the interpreter alive.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._cpu = CpuFollower(self._thread)

    def submit(self, work: Callable[[], Any], done: Done, *, small: bool = False) -> None:
        """Queue ``work``; ``done`` is called on the loop with its outcome.

        ``small`` work is latency-bound: the thread then runs on the loop's CPU (see
        :mod:`jobify.storage.affinity`); other work may run on any CPU.
        """
        if small:
            self._cpu.follow()
        else:
            self._cpu.release()
        self._jobs.put((work, done))

    async def call(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in the thread and return its result (or raise its mapped error)."""
        future: asyncio.Future[Any] = self._loop.create_future()
        self._jobs.put((work, partial(_settle, future)))
        return await future

    def stop(self, *, wait: bool = True) -> None:
        """Let the thread finish the work already queued, then end; ``wait`` joins it."""
        self._jobs.put(None)
        if wait:
            self._thread.join()

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            work, done = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = work()
            except Exception as exc:
                error = self._map_error(exc)
                if error is not exc:
                    error.__cause__ = exc
            try:
                self._loop.call_soon_threadsafe(done, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                logger.debug("event loop closed before %s finished a call", self._thread.name)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
