"""Result reads of :class:`~jobify.storage.PostgresStorage`, gathered into one statement.

Every handle of a job pushed to the shared store reads the job's result when it is told the
job finished (one ``f`` notification names every job of a commit). A producer pushing
hundreds of jobs a second would otherwise send as many single-row reads, each taking a pool
connection: they crowd out its pushes (whose group commit waits for a connection behind
them), and the producer falls behind the faster, the busier it is. So reads that are asked
for while one is in flight wait and go out together as ONE ``job_id = ANY(...)`` read: at
most one connection is used for results at a time, and a burst of N reads costs a few round
trips instead of N.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from jobify.exceptions import StorageError
from jobify.storage.base import ResultRecord

__all__ = ["ResultReads"]

Fetch = Callable[[list[str]], Awaitable[Sequence[ResultRecord]]]


class ResultReads:
    """Coalesces ``get(job_id)`` calls into ``fetch(ids)`` calls, one in flight at a time."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._waiting: dict[str, list[asyncio.Future[ResultRecord | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def get(self, job_id: str) -> ResultRecord | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultRecord | None] = loop.create_future()
        self._waiting.setdefault(job_id, []).append(future)
        reading = self._reading
        if reading is None or reading.done() or reading.get_loop() is not loop:
            # (a storage started again in another event loop: the old task is gone)
            self._reading = loop.create_task(self._read())
        return await future

    async def _read(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    found = {r.job_id: r for r in await self._fetch(list(batch))}
                except Exception as exc:
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                error = StorageError(str(exc))
                                error.__cause__ = exc
                                future.set_exception(error)
                    continue
                for job_id, futures in batch.items():
                    for future in futures:
                        if not future.done():  # a caller that gave up
                            future.set_result(found.get(job_id))
        finally:
            self._reading = None
            for futures in self._waiting.values():  # cancelled with callers still waiting
                for future in futures:
                    future.cancel()
            self._waiting = {}
