"""The group commit of :class:`~jobify.storage.PostgresStorage`: one statement per batch.

Writes (saves, deletes, guarded completions with their results, run records) land in a
pending batch. While one batch is in flight, new writes accumulate; when it finishes, the
next goes out. A batch is sent as ONE statement (see :func:`jobify.storage.sql.postgres.
batch_statement`): one round trip and one COMMIT, whatever it holds, with its notifications
sent by that COMMIT. Every awaiting caller resumes after the COMMIT of its batch.

Within a batch, saves and deletes are coalesced per job id (the last one wins, which leaves
the table as applying them in order would). A completion never shares a batch with another
write of the same job id: the write that comes later starts a new batch, so writes issued by
one task are applied in the order they were issued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobify.exceptions import StorageError
from jobify.storage.base import JobRecord, ResultRecord, RunRecord

__all__ = ["Batch", "GroupCommit"]

logger = logging.getLogger("jobify.storage")

SOON_DELAY = 0.005
"""Seconds a batch holding only ``*_soon`` writes waits for an awaited write to join it."""

Completion = tuple[JobRecord | None, ResultRecord | None, "asyncio.Future[bool]"]
Execute = Callable[["Batch"], Awaitable[list[str]]]


class Batch:
    """Writes that will share one statement, and the futures waiting for its COMMIT."""

    __slots__ = ("completions", "ops", "runs", "soon", "waiters")

    def __init__(self) -> None:
        self.ops: dict[str, JobRecord | None] = {}  # job id -> record to upsert, None: delete
        self.completions: dict[str, Completion] = {}
        self.runs: list[RunRecord] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.soon = 0  # writes nobody awaits (logged if the batch fails)

    def __bool__(self) -> bool:
        return bool(self.ops or self.completions or self.runs)

    def parts(self) -> frozenset[str]:
        """The kinds of writes in this batch (see ``batch_statement``)."""
        parts: set[str] = set()
        if any(record is not None for record in self.ops.values()):
            parts.add("upsert")
        if any(record is None for record in self.ops.values()):
            parts.add("delete")
        if any(c[0] is None for c in self.completions.values()):
            parts.add("done")
        if any(c[0] is not None for c in self.completions.values()):
            parts.add("advanced")
        if any(c[1] is not None for c in self.completions.values()):
            parts.add("results")
        if self.runs:
            parts.add("runs")
        return frozenset(parts)

    def earliest_armed(self) -> float | None:
        """The earliest ``exec_at`` this batch writes into a job row (None: none)."""
        times = [r.exec_at for r in self.ops.values() if r is not None]
        times.extend(c[0].exec_at for c in self.completions.values() if c[0] is not None)
        return min(times, default=None)

    def arguments(self) -> dict[str, Any]:
        """The statement's parameters by name (the caller adds ``worker``, ``channel`` and
        ``res_oldest``; only those its parts use are sent)."""
        upserts = [r for r in self.ops.values() if r is not None]
        done = [job_id for job_id, c in self.completions.items() if c[0] is None]
        advanced = [c[0] for c in self.completions.values() if c[0] is not None]
        results = [c[1] for c in self.completions.values() if c[1] is not None]
        runs = self.runs
        return {
            "up_ids": [r.job_id for r in upserts],
            "up_tasks": [r.task_name for r in upserts],
            "up_exec": [r.exec_at for r in upserts],
            "up_args": [r.arguments for r in upserts],
            "up_trig": [r.trigger for r in upserts],
            "up_status": [r.status for r in upserts],
            "del_ids": [job_id for job_id, r in self.ops.items() if r is None],
            "done_ids": done,
            "adv_ids": [r.job_id for r in advanced],
            "adv_tasks": [r.task_name for r in advanced],
            "adv_exec": [r.exec_at for r in advanced],
            "adv_args": [r.arguments for r in advanced],
            "adv_trig": [r.trigger for r in advanced],
            "adv_status": [r.status for r in advanced],
            "res_ids": [r.job_id for r in results],
            "res_status": [r.status for r in results],
            "res_value": [r.value for r in results],
            "res_error": [r.error for r in results],
            "res_at": [r.finished_at for r in results],
            "run_ids": [r.job_id for r in runs],
            "run_tasks": [r.task_name for r in runs],
            "run_sched": [r.scheduled_at for r in runs],
            "run_start": [r.started_at for r in runs],
            "run_end": [r.finished_at for r in runs],
            "run_outcome": [r.outcome for r in runs],
            "run_attempts": [r.attempts for r in runs],
            "run_etype": [r.error_type for r in runs],
            "run_emsg": [r.error_message for r in runs],
            "run_tb": [r.traceback for r in runs],
            "run_worker": [r.worker for r in runs],
        }


class GroupCommit:
    """Batches writes and sends one batch at a time through ``execute``.

    ``execute(batch)`` sends the statement of ``batch.parts()`` with ``batch.arguments()``
    and returns the ids whose guarded completion applied. ``finished(ids)`` is told which
    completions left the batch (committed or not), so the storage stops renewing their
    leases.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        execute: Execute,
        finished: Callable[[Sequence[str]], None],
        describe: str,
    ) -> None:
        self._loop = loop
        self._execute = execute
        self._finished = finished
        self._describe = describe
        self._queue: list[Batch] = [Batch()]  # pending batches, oldest first; never empty
        self._inflight: asyncio.Task[None] | None = None
        self._inflight_batch: Batch | None = None
        self._dispatch_scheduled = False
        self.commits = 0
        """How many batches were committed (for tests and monitoring)."""

    # -- queueing -------------------------------------------------------------------------

    def _batch_for(self, job_id: str | None, *, completion: bool) -> Batch:
        last = self._queue[-1]
        if job_id is not None and (
            job_id in last.completions or (completion and job_id in last.ops)
        ):
            last = Batch()
            self._queue.append(last)
        return last

    def _schedule(self, soon: bool) -> None:
        if self._inflight is not None or self._dispatch_scheduled:
            return
        # A batch of only *_soon writes waits SOON_DELAY so that it rides along with the next
        # awaited write; an awaited write goes out on the next loop iteration, gathering the
        # writes issued in the same iteration.
        self._dispatch_scheduled = True
        if soon:
            self._loop.call_later(SOON_DELAY, self._dispatch)
        else:
            self._loop.call_soon(self._dispatch)

    def put(self, job_id: str, record: JobRecord | None, *, soon: bool) -> Batch:
        """Queue an upsert (``record``) or delete (None) of ``job_id``."""
        batch = self._batch_for(job_id, completion=False)
        batch.ops[job_id] = record
        if soon:
            batch.soon += 1
        self._schedule(soon)
        return batch

    def put_run(self, run: RunRecord) -> None:
        """Queue a run record (nobody waits for it)."""
        batch = self._queue[-1]
        batch.runs.append(run)
        batch.soon += 1
        self._schedule(True)

    def complete(
        self, job_id: str, record: JobRecord | None, result: ResultRecord | None
    ) -> asyncio.Future[bool]:
        """Queue a guarded completion; the future tells whether it applied."""
        future: asyncio.Future[bool] = self._loop.create_future()
        self._batch_for(job_id, completion=True).completions[job_id] = (record, result, future)
        self._schedule(False)
        return future

    async def wait(self, batch: Batch) -> None:
        """Return once ``batch`` is committed (StorageError if it failed)."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        batch.waiters.append(waiter)
        await waiter

    async def drain(self) -> None:
        """Wait for the batch holding the most recent write, if any is outstanding."""
        for batch in reversed(self._queue):
            if batch:
                await self.wait(batch)
                return
        if self._inflight_batch is not None:
            await self.wait(self._inflight_batch)

    def completing(self, job_id: str) -> bool:
        """Whether a completion of ``job_id`` is queued or in flight."""
        inflight = self._inflight_batch
        if inflight is not None and job_id in inflight.completions:
            return True
        return any(job_id in batch.completions for batch in self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return self._inflight is None and not any(self._queue)

    # -- sending --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        if self._inflight is not None:
            return
        while self._queue and not self._queue[0]:
            empty = self._queue.pop(0)
            for waiter in empty.waiters:  # a flush that raced an empty batch
                if not waiter.done():
                    waiter.set_result(None)
        if not self._queue:
            self._queue.append(Batch())
            return
        batch = self._queue.pop(0)
        if not self._queue:
            self._queue.append(Batch())
        self._inflight_batch = batch
        self._inflight = self._loop.create_task(self._send(batch))

    async def _send(self, batch: Batch) -> None:
        error: BaseException | None = None
        completed: set[str] = set()
        try:
            completed = set(await self._execute(batch))
            self.commits += 1
        except StorageError as exc:
            error = exc
        except Exception as exc:  # a bug or an unexpected driver error: still fail the waiters
            error = StorageError(f"writing to {self._describe} failed: {exc!r}")
            error.__cause__ = exc
        finally:
            self._inflight = None
            self._inflight_batch = None
            self._settle(batch, completed, error)
            if any(self._queue):
                self._dispatch()

    def _settle(self, batch: Batch, completed: set[str], error: BaseException | None) -> None:
        if batch.completions:
            self._finished(list(batch.completions))
        if error is None:
            for waiter in batch.waiters:
                if not waiter.done():  # a cancelled caller; its write is committed anyway
                    waiter.set_result(None)
            for job_id, (_, _, future) in batch.completions.items():
                if not future.done():
                    future.set_result(job_id in completed)
            return
        if batch.soon:
            logger.error(
                "%d queued write(s) to %s were not committed: %s", batch.soon, self._describe, error
            )
        pending: list[asyncio.Future[Any]] = [*batch.waiters]
        pending.extend(c[2] for c in batch.completions.values())
        for waiter in pending:
            if not waiter.done():
                failure = StorageError(str(error))
                failure.__cause__ = error.__cause__ or error
                waiter.set_exception(failure)
