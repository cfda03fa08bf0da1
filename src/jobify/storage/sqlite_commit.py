"""The group commit of :class:`~jobify.storage.SQLiteStorage`: many writes, one transaction.

Loop side (:class:`GroupCommit`): every write becomes a *unit* ``(kind, payload, waiter)``
appended to the pending batch (``waiter`` is None for ``*_soon`` writes, which nobody
awaits). While one batch is being committed in the worker thread, new units keep
accumulating; when it finishes, everything pending goes into the next transaction, and each
awaiting caller is resumed after its batch's COMMIT. So N concurrent durable writes cost one
transaction, not N.

Thread side (:class:`BatchWriter`): job writes of a batch are coalesced per job id keeping the
last one, which leaves the table exactly as applying them one by one in order would; the
other units (run records, history pruning, the task list, commands) are applied in the order
they were issued. If the transaction fails because of one write's own values (a poison
write: a string the driver cannot encode, a row SQLite refuses), it is rolled back and
replayed unit by unit, each in a savepoint, in one transaction: only the units that fail on
their own fail their callers; the others are committed. Errors of the file, the disk or the
lock fail the whole batch, and the storage stays usable for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from functools import partial
from operator import attrgetter
from typing import Any

from jobify.exceptions import StorageError
from jobify.storage.base import JobRecord, RunRecord
from jobify.storage.checks import clean_text
from jobify.storage.sql import sqlite as sql
from jobify.storage.sqlite_connection import is_per_write, retrying, transaction
from jobify.storage.workerthread import WorkerThread

__all__ = [
    "COMMAND",
    "DELETE",
    "FINISH",
    "PRUNE",
    "RUN",
    "SAVE",
    "SAVE_MANY",
    "TASKS",
    "BatchWriter",
    "GroupCommit",
    "Unit",
    "run_row",
]

logger = logging.getLogger("jobify.storage")

# Unit kinds and their payloads.
SAVE = 1  # JobRecord
SAVE_MANY = 2  # tuple[JobRecord, ...], all or none
DELETE = 3  # job id
RUN = 4  # a run record's row (run_row), taken when it is queued
PRUNE = 5  # (before, keep) -> how many runs were deleted
TASKS = 6  # tuple[TaskRecord, ...]
COMMAND = 7  # (job_id, action, created_at) -> the command id
FINISH = 8  # (command_id, result, finished_at)

Unit = tuple[int, Any, "asyncio.Future[Any] | None"]

SMALL_BATCH = 4
"""Batches up to this many units are latency-bound (see :mod:`jobify.storage.affinity`)."""
SOON_DELAY = 0.005
"""Seconds a batch holding only ``*_soon`` writes waits for an awaited write to join it."""
KEEP_ANSWERS = 7 * 86400.0
"""Seconds an answered command is kept for the inspector that sent it."""

_as_row = attrgetter("job_id", "task_name", "exec_at", "arguments", "trigger", "status")


class _Batch:
    """Units that will share one transaction, and ``flush()`` callers waiting for it."""

    __slots__ = ("drains", "units")

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.drains: list[asyncio.Future[None]] = []


class GroupCommit:
    """The loop side: pending and in-flight batches, dispatch, and resuming the callers."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        thread: WorkerThread,
        commit: Callable[[list[Unit]], dict[int, object]],
        database: str,
    ) -> None:
        self._loop = loop
        self._thread = thread
        self._commit = commit
        self._database = database
        self._pending = _Batch()
        self._inflight: _Batch | None = None
        self._soon_scheduled = False

    @property
    def busy(self) -> bool:
        """Whether some write is still queued or being committed."""
        return bool(self._pending.units) or self._inflight is not None

    def write(self, kind: int, payload: object) -> asyncio.Future[Any]:
        """Queue a unit; the future resolves after its COMMIT (to the unit's result)."""
        waiter = self._loop.create_future()
        self._pending.units.append((kind, payload, waiter))
        # An awaited write dispatches at once when the thread is idle (one loop iteration
        # less of latency); the writes issued while that commit runs form the next batch.
        if self._inflight is None:
            self._dispatch()
        return waiter

    def write_soon(self, kind: int, payload: object) -> None:
        """Queue a unit nobody awaits (a failure is logged)."""
        self._pending.units.append((kind, payload, None))
        if self._inflight is None and not self._soon_scheduled:
            # A batch of only *_soon writes waits SOON_DELAY, so that it rides along with the
            # next awaited write (a push right after a job finished pays one commit, not two)
            # or gathers more of its kind; nobody waits for it, and it is at-least-once anyway.
            self._soon_scheduled = True
            self._loop.call_later(SOON_DELAY, self._dispatch_soon)

    async def drain(self) -> None:
        """Wait for the batch holding the most recent write, if any is outstanding."""
        if self._pending.units:
            batch = self._pending
        elif self._inflight is not None:
            batch = self._inflight
        else:
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        batch.drains.append(waiter)
        if self._inflight is None:
            self._dispatch()
        await waiter

    def abandon(self) -> None:
        """Fail the callers of writes never dispatched (only if shutdown was cancelled)."""
        batch, self._pending = self._pending, _Batch()
        for waiter in [*(unit[2] for unit in batch.units), *batch.drains]:
            if waiter is not None and not waiter.done():
                waiter.set_exception(StorageError(f"{self._database!r} shut down before commit"))

    def _dispatch_soon(self) -> None:
        self._soon_scheduled = False
        self._dispatch()

    def _dispatch(self) -> None:
        if self._inflight is not None or not self._pending.units:
            return
        batch, self._pending = self._pending, _Batch()
        self._inflight = batch
        small = len(batch.units) <= SMALL_BATCH
        self._thread.submit(
            partial(self._commit, batch.units), partial(self._done, batch), small=small
        )

    def _done(self, batch: _Batch, results: Any, error: BaseException | None) -> None:
        self._inflight = None
        if error is not None:
            self._fail(batch, error)
        elif results:
            self._settle_each(batch, results)
        else:
            for _, _, waiter in batch.units:
                if waiter is not None and not waiter.done():  # else: cancelled, committed
                    waiter.set_result(None)
        for drain in batch.drains:
            if not drain.done():
                if error is None:
                    drain.set_result(None)
                else:
                    drain.set_exception(_failure(error))
        if self._pending.units:
            self._dispatch()

    def _settle_each(self, batch: _Batch, results: dict[int, object]) -> None:
        for index, (_, _, waiter) in enumerate(batch.units):
            outcome = results.get(index)
            if isinstance(outcome, BaseException):
                if waiter is None:
                    logger.error("a queued write was not committed: %s", outcome)
                elif not waiter.done():
                    waiter.set_exception(outcome)
            elif waiter is not None and not waiter.done():
                waiter.set_result(outcome)

    def _fail(self, batch: _Batch, error: BaseException) -> None:
        soon = sum(1 for unit in batch.units if unit[2] is None)
        if soon:
            logger.error(
                "%d queued write(s) to %s were not committed: %s", soon, self._database, error
            )
        for _, _, waiter in batch.units:
            if waiter is not None and not waiter.done():
                waiter.set_exception(_failure(error))


def _failure(error: BaseException) -> StorageError:
    """A fresh StorageError per caller (one exception object must not be raised twice)."""
    failure = StorageError(str(error))
    failure.__cause__ = error.__cause__ or error
    return failure


class BatchWriter:
    """The thread side: applies a batch in one transaction, isolating poison writes.

    ``check_file`` runs inside every transaction just before COMMIT (the owner lock's check
    that the database file was not deleted or replaced); it raises to refuse the commit.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        queries: sql.SQLiteQueries,
        database: str,
        timeout: float,
        check_file: Callable[[], None] | None,
    ) -> None:
        self._conn = conn
        self._queries = queries
        self._database = database
        self._timeout = timeout
        self._check_file = check_file
        self.commits = 0

    def commit(self, units: list[Unit]) -> dict[int, object]:
        """Apply ``units`` in one transaction; return results (or errors) by unit index,
        only for units that have one."""
        conn = self._conn
        try:
            results = retrying(self._timeout, partial(transaction, conn, partial(self._all, units)))
        except Exception as exc:
            if not is_per_write(exc):
                raise
            if len(units) == 1:
                return {0: self._unit_error(units[0], exc)}
            logger.warning(
                "a group commit of %d writes to %s failed on a write of its own (%s: %s); "
                "retrying them one by one",
                len(units),
                self._database,
                type(exc).__name__,
                exc,
            )
            results = retrying(
                self._timeout, partial(transaction, conn, partial(self._each, units))
            )
        self.commits += 1
        return results

    def _all(self, units: list[Unit]) -> dict[int, object]:
        conn, queries = self._conn, self._queries
        ops: dict[str, JobRecord | None] = {}
        others: list[tuple[int, int, Any]] = []
        for index, (kind, payload, _) in enumerate(units):
            if kind == SAVE:
                ops[payload.job_id] = payload
            elif kind == DELETE:
                ops[payload] = None
            elif kind == SAVE_MANY:
                for record in payload:
                    ops[record.job_id] = record
            else:
                others.append((index, kind, payload))
        # Ops were coalesced per id, so deletes and upserts touch disjoint ids and their
        # relative order does not matter.
        deletes = [(job_id,) for job_id, record in ops.items() if record is None]
        if deletes:
            conn.executemany(queries.delete, deletes)
        upserts = [_as_row(record) for record in ops.values() if record is not None]
        if upserts:
            conn.executemany(queries.upsert, upserts)
        results: dict[int, object] = {}
        runs: list[tuple[Any, ...]] = []
        for index, kind, payload in others:
            if kind == RUN:  # consecutive runs go in one executemany
                runs.append(payload)
                continue
            if runs:
                conn.executemany(queries.insert_run, runs)
                runs = []
            result = self._other(kind, payload)
            if result is not None:
                results[index] = result
        if runs:
            conn.executemany(queries.insert_run, runs)
        self._before_commit()
        return results

    def _each(self, units: list[Unit]) -> dict[int, object]:
        conn, queries = self._conn, self._queries
        results: dict[int, object] = {}
        for index, unit in enumerate(units):
            kind, payload, _ = unit
            conn.execute(sql.SAVEPOINT)
            try:
                if kind == SAVE:
                    conn.execute(queries.upsert, _as_row(payload))
                    result = None
                elif kind == DELETE:
                    conn.execute(queries.delete, (payload,))
                    result = None
                elif kind == SAVE_MANY:
                    conn.executemany(queries.upsert, [_as_row(record) for record in payload])
                    result = None
                elif kind == RUN:
                    conn.execute(queries.insert_run, payload)
                    result = None
                else:
                    result = self._other(kind, payload)
            except Exception as exc:
                if not is_per_write(exc):
                    raise
                conn.execute(sql.ROLLBACK_TO)
                conn.execute(sql.RELEASE)
                results[index] = self._unit_error(unit, exc)
            else:
                conn.execute(sql.RELEASE)
                if result is not None:
                    results[index] = result
        self._before_commit()
        return results

    def _other(self, kind: int, payload: Any) -> object:
        """Apply a unit that is not a job write; return its result, if it has one."""
        conn, queries = self._conn, self._queries
        if kind == PRUNE:
            before, keep = payload
            if keep == 0:
                return conn.execute(queries.clear_runs).rowcount
            deleted = 0
            # The newest run beyond the ``keep`` newest: it and every older one go.
            row = conn.execute(queries.nth_newest_run, (keep,)).fetchone()
            if row is not None:
                deleted += conn.execute(queries.prune_runs_through, row).rowcount
            deleted += conn.execute(queries.prune_runs_before, (before,)).rowcount
            return deleted
        if kind == TASKS:
            conn.execute(queries.clear_tasks)
            conn.executemany(
                queries.insert_task,
                [(clean_text(t.name), clean_text(t.options), t.updated_at) for t in payload],
            )
            return None
        if kind == COMMAND:
            job_id, action, created_at = payload
            return conn.execute(queries.insert_command, (job_id, action, created_at)).lastrowid
        if kind == FINISH:
            command_id, result, finished_at = payload
            updated = conn.execute(
                queries.finish_command, (clean_text(result), finished_at, command_id)
            ).rowcount
            conn.execute(queries.forget_commands, (finished_at - KEEP_ANSWERS,))
            if updated == 0:
                return ValueError(f"no pending command has id {command_id}")
            return None
        raise AssertionError(f"unknown unit kind {kind}")

    def _before_commit(self) -> None:
        if self._check_file is None:
            return
        try:
            self._check_file()
        except StorageError as exc:
            logger.error("%s", exc)
            raise

    def _unit_error(self, unit: Unit, exc: BaseException) -> StorageError:
        kind, payload, _ = unit
        if kind == SAVE:
            what = f"job {payload.job_id!r}"
        elif kind == SAVE_MANY:
            what = f"{len(payload)} jobs (the first {payload[0].job_id!r}), none of them"
        elif kind == DELETE:
            what = f"the deletion of job {payload!r}"
        elif kind == RUN:
            what = f"the run of job {payload[0]!r}"
        elif kind == TASKS:
            what = "the task list"
        elif kind == COMMAND:
            what = f"the command for job {payload[0]!r}"
        elif kind == FINISH:
            what = f"the answer to command {payload[0]}"
        else:
            what = "the history pruning"
        error = StorageError(
            f"cannot store {what} in the SQLite database {self._database!r}: "
            f"{type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc
        return error


def run_row(run: RunRecord) -> tuple[Any, ...]:
    """A run's row; untrusted text that UTF-8 cannot hold is escaped (never a poison)."""
    return (
        clean_text(str(run.job_id)),
        clean_text(str(run.task_name)),
        run.scheduled_at,
        run.started_at,
        run.finished_at,
        clean_text(str(run.outcome)),
        run.attempts,
        None if run.error_type is None else clean_text(str(run.error_type)),
        None if run.error_message is None else clean_text(str(run.error_message)),
        None if run.traceback is None else clean_text(str(run.traceback)),
        None if run.worker is None else clean_text(str(run.worker)),
    )
