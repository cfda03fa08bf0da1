"""The embedded default storage: one SQLite file owned by one running app.

Threading: the stdlib ``sqlite3`` driver blocks, so one dedicated thread per storage owns the
connection and runs every statement; the event loop only queues work for it and is woken by
one ``call_soon_threadsafe`` callback per unit of work.

Group commit: writes (``save``, ``save_many``, ``delete``, ``*_soon``) land in a pending batch
on the event-loop side. While one batch is being committed in the thread, new writes keep
accumulating; when it finishes, everything pending goes into the next transaction. Within a
batch the writes are coalesced per job id keeping the last one, which leaves the table exactly
as applying them one by one in order would. Every awaiting caller is resumed after its batch's
COMMIT, so N concurrent durable writes cost one transaction, not N.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import sqlite3
from collections.abc import Sequence
from functools import partial
from itertools import starmap
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Literal

from jobify.exceptions import StorageError
from jobify.storage.base import JobRecord, Storage
from jobify.storage.filelock import OwnerLock
from jobify.storage.memory import check_record
from jobify.storage.sql import sqlite as sql
from jobify.storage.sqlite_connection import map_error, open_connection, retrying, transaction
from jobify.storage.workerthread import WorkerThread

__all__ = ["SQLiteStorage"]

logger = logging.getLogger("jobify.storage")


_MEMORY = ":memory:"
SMALL_BATCH = 4
"""Batches up to this many writes are latency-bound (see :mod:`jobify.storage.affinity`)."""
SOON_DELAY = 0.005
"""Seconds a batch holding only ``*_soon`` writes waits for an awaited write to join it."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROW_TYPES = (str, str, float, bytes, bytes, str)
_as_row = attrgetter("job_id", "task_name", "exec_at", "arguments", "trigger", "status")


class _Batch:
    """Writes that will share one transaction, and the futures waiting for its COMMIT."""

    __slots__ = ("ops", "soon", "waiters")

    def __init__(self) -> None:
        # job id -> record to upsert, or None to delete. Last write per id wins.
        self.ops: dict[str, JobRecord | None] = {}
        self.waiters: list[asyncio.Future[None]] = []
        self.soon = 0  # how many *_soon writes nobody awaits (logged if the batch fails)


class SQLiteStorage(Storage):
    """Durable jobs in one SQLite file (or ``":memory:"``), owned by one running app.

    ``database`` is a path (created if absent) or ``":memory:"`` (one connection, lives as long
    as the storage is started; nothing survives). ``table_name`` is the jobs table (a plain
    identifier). ``timeout`` bounds, in seconds, how long a write waits for another program
    that holds a write transaction on the file ("database is locked") before failing with a
    :class:`~jobify.exceptions.StorageError`.

    Durability: the file is in WAL mode. With ``synchronous="normal"`` (the default) a
    committed write survives a crash or kill -9 of the process (the commit is in the WAL file,
    in the OS page cache), but the last commits may be lost if the machine loses power.
    ``synchronous="full"`` syncs the WAL to disk on every (group) commit, so committed writes
    also survive power loss, at the price of one fsync per batch.

    Ownership: ``startup()`` takes an exclusive lock on ``<database>.lock``; a second process
    opening the same file while the first runs gets a
    :class:`~jobify.exceptions.StorageLockedError` naming the holder's pid. Several workers on
    one job store need ``PostgresStorage``.
    """

    shared = False

    def __init__(
        self,
        database: str | Path = "jobify.db",
        *,
        table_name: str = "jobify_schedules",
        timeout: float = 20.0,
        synchronous: Literal["normal", "full"] = "normal",
    ) -> None:
        if not _IDENTIFIER.fullmatch(table_name) or table_name.lower().startswith("sqlite_"):
            raise ValueError(
                f"table_name must be a plain SQL identifier (letters, digits and _, not "
                f"starting with a digit or 'sqlite_'), got {table_name!r}"
            )
        if table_name.lower() == sql.META_TABLE:
            raise ValueError(f"table_name {table_name!r} is reserved for jobify's schema table")
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', got {synchronous!r}")
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
        self.database = os.fspath(database)
        """The database path as given, or ``":memory:"``."""
        self.table_name = table_name
        self.timeout = float(timeout)
        self.synchronous = synchronous
        self._memory = self.database == _MEMORY
        self._queries = sql.SQLiteQueries.for_table(table_name)
        self._state: Literal["new", "starting", "running", "closing", "closed"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None  # touched only by the worker thread
        self._lock: OwnerLock | None = None
        self._thread: WorkerThread | None = None
        self._pending = _Batch()
        self._inflight: _Batch | None = None
        self._dispatch_scheduled = False
        self._closed: asyncio.Future[None] | None = None
        self._commits = 0

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.database!r}, table_name={self.table_name!r})"

    @property
    def commit_count(self) -> int:
        """How many write transactions were committed so far (for tests and monitoring)."""
        return self._commits

    # -- life cycle ---------------------------------------------------------------------

    async def startup(self) -> None:
        """Lock the file, open it in WAL mode and create or migrate the schema.

        May be called again after ``shutdown()`` to reopen. Raises
        :class:`~jobify.exceptions.StorageLockedError` when another process runs on the file,
        :class:`~jobify.exceptions.SchemaVersionError` (leaving the file untouched) when its
        schema is newer than this code, and :class:`~jobify.exceptions.StorageError` when the
        file is read-only, corrupt, not a database or stays locked longer than ``timeout``.
        """
        if self._state not in ("new", "closed"):
            raise StorageError(f"{self!r} is already started")
        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        thread = WorkerThread(
            f"jobify-sqlite:{Path(self.database).name}", self._loop, self._map_error
        )
        try:
            await thread.call(self._open_sync)
        except BaseException:
            # Also reached on cancellation while the open is still running in the thread:
            # queue the close behind it and let the thread end on its own, without blocking
            # the loop on a join (the open may be waiting out a busy database).
            thread.submit(self._close_sync, _ignore)
            thread.stop(wait=False)
            self._state = "new"
            raise
        self._thread = thread
        self._pending = _Batch()
        self._inflight = None
        self._closed = None
        self._state = "running"

    async def shutdown(self) -> None:
        """Commit every queued write, close the file and release it. Idempotent.

        Raises :class:`~jobify.exceptions.StorageError` if the last writes could not be
        committed; the file is closed and released either way.
        """
        if self._state in ("new", "starting", "closed"):
            return
        if self._state == "closing":
            assert self._closed is not None
            await asyncio.shield(self._closed)
            return
        self._state = "closing"
        self._closed = self._loop_().create_future()
        failure: StorageError | None = None
        try:
            while self._pending.ops or self._inflight is not None:
                try:
                    await self._drain()
                except StorageError as exc:  # keep committing what is left; report the first
                    failure = failure or exc
        finally:
            try:
                await self._thread_().call(self._close_sync)
            finally:
                self._thread_().stop()
                self._thread = None
                self._state = "closed"
                # Only if shutdown itself was cancelled can writes be left uncommitted.
                abandoned, self._pending = self._pending, _Batch()
                for waiter in abandoned.waiters:
                    if not waiter.done():
                        waiter.set_exception(StorageError(f"{self!r} shut down before commit"))
                self._closed.set_result(None)
        if failure is not None:
            raise failure

    # -- reads ----------------------------------------------------------------------------

    async def load(self) -> list[JobRecord]:
        """Every committed record. Rows with wrongly typed columns are skipped with a
        warning naming their job id, and left in the table."""
        self._check_running()
        return await self._thread_().call(self._load_sync)  # type: ignore[no-any-return]

    async def get(self, job_id: str) -> JobRecord | None:
        """The committed record with this id, or None (also, with a warning, when its row
        is undecodable)."""
        self._check_running()
        return await self._thread_().call(partial(self._get_sync, job_id))  # type: ignore[no-any-return]

    # -- writes ---------------------------------------------------------------------------

    async def save(self, record: JobRecord) -> None:
        """Insert or replace the record; return once its group commit is committed."""
        check_record(record)
        batch = self._enqueue()
        batch.ops[record.job_id] = record
        await self._commit_of(batch)

    async def save_many(self, records: Sequence[JobRecord]) -> None:
        """Insert or replace every record in one transaction; return once committed."""
        for record in records:
            check_record(record)
        if not records:
            self._check_running()
            return
        batch = self._enqueue()
        for record in records:
            batch.ops[record.job_id] = record
        await self._commit_of(batch)

    async def delete(self, job_id: str) -> None:
        """Delete the record (no error when absent); return once committed."""
        batch = self._enqueue()
        batch.ops[job_id] = None
        await self._commit_of(batch)

    def save_soon(self, record: JobRecord) -> None:
        """Queue an insert-or-replace into the next group commit; a failure is logged."""
        check_record(record)
        batch = self._enqueue(soon=True)
        batch.ops[record.job_id] = record
        batch.soon += 1

    def delete_soon(self, job_id: str) -> None:
        """Queue a delete into the next group commit; a failure is logged."""
        batch = self._enqueue(soon=True)
        batch.ops[job_id] = None
        batch.soon += 1

    async def flush(self) -> None:
        """Return once every write queued so far is committed (StorageError if it failed)."""
        self._check_running()
        await self._drain()

    # -- event-loop side of the group commit ----------------------------------------------

    def _loop_(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _thread_(self) -> WorkerThread:
        assert self._thread is not None
        return self._thread

    def _check_running(self) -> None:
        if self._state != "running":
            if self._state in ("new", "starting"):
                raise StorageError(f"{self!r} is not started: await storage.startup() first")
            raise StorageError(f"{self!r} is shut down")

    def _enqueue(self, soon: bool = False) -> _Batch:
        """The batch a new write joins; makes sure it will be dispatched."""
        self._check_running()
        if self._inflight is None and not self._dispatch_scheduled:
            # A batch of only *_soon writes waits SOON_DELAY, so that it rides along with the
            # next awaited write (a push right after a job finished pays one commit, not two)
            # or gathers more of its kind; nobody waits for it, and it is at-least-once anyway.
            # An awaited write dispatches at once when the thread is idle (one loop iteration
            # less of latency); the writes issued while that commit runs form the next batch.
            self._dispatch_scheduled = True
            if soon:
                self._loop_().call_later(SOON_DELAY, self._dispatch)
            else:
                self._loop_().call_soon(self._dispatch)
        return self._pending

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        if self._inflight is not None or not self._pending.ops or self._thread is None:
            return
        batch, self._pending = self._pending, _Batch()
        self._inflight = batch
        work = partial(self._commit_sync, batch.ops)
        small = len(batch.ops) <= SMALL_BATCH
        self._thread_().submit(work, partial(self._batch_done, batch), small=small)

    def _batch_done(self, batch: _Batch, _result: object, error: BaseException | None) -> None:
        self._inflight = None
        if error is None:
            for waiter in batch.waiters:
                if not waiter.done():  # a cancelled caller; its write is committed anyway
                    waiter.set_result(None)
        else:
            if batch.soon:
                logger.error(
                    "%d queued write(s) to %s were not committed: %s",
                    batch.soon,
                    self.database,
                    error,
                )
            for waiter in batch.waiters:
                if not waiter.done():
                    failure = StorageError(str(error))
                    failure.__cause__ = error.__cause__ or error
                    waiter.set_exception(failure)
        if self._pending.ops:
            self._dispatch()

    async def _commit_of(self, batch: _Batch) -> None:
        """Wait for ``batch`` to be committed, dispatching it now if the thread is idle."""
        waiter = self._loop_().create_future()
        batch.waiters.append(waiter)
        if self._inflight is None:
            self._dispatch()
        await waiter

    async def _drain(self) -> None:
        """Wait for the batch holding the most recent write, if any is outstanding."""
        if self._pending.ops:
            batch = self._pending
        elif self._inflight is not None:
            batch = self._inflight
        else:
            return
        await self._commit_of(batch)

    # -- the worker thread ------------------------------------------------------------------

    def _map_error(self, exc: Exception) -> BaseException:
        """Map a driver error to a StorageError naming the file (runs in the thread)."""
        if isinstance(exc, sqlite3.Error):
            return map_error(exc, self.database, self.timeout)
        return exc

    # Everything below runs in the worker thread only.

    def _open_sync(self) -> None:
        lock: OwnerLock | None = None
        if not self._memory:
            if os.path.exists(self.database) and not os.access(self.database, os.W_OK):
                raise StorageError(
                    f"the SQLite database {self.database!r} is read-only for this process: "
                    "make it writable (jobify writes every durable job to it)"
                )
            lock = OwnerLock(self.database)
            lock.acquire()
        try:
            conn = open_connection(
                self.database,
                self._queries,
                self.table_name,
                timeout=self.timeout,
                synchronous=self.synchronous,
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._conn, self._lock = conn, lock

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        lock, self._lock = self._lock, None
        try:
            if conn is not None:
                conn.close()
        finally:
            if lock is not None:
                lock.release()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:  # only reachable if a call raced shutdown
            raise StorageError(f"{self!r} is shut down")
        return self._conn

    def _commit_sync(self, ops: dict[str, JobRecord | None]) -> None:
        upserts = [_as_row(record) for record in ops.values() if record is not None]
        deletes = [(job_id,) for job_id, record in ops.items() if record is None]
        conn = self._connection()

        def body() -> None:
            # Ops were coalesced per id, so deletes and upserts touch disjoint ids and their
            # relative order does not matter.
            if deletes:
                conn.executemany(self._queries.delete, deletes)
            if upserts:
                conn.executemany(self._queries.upsert, upserts)

        retrying(self.timeout, lambda: transaction(conn, body))
        self._commits += 1

    def _load_sync(self) -> list[JobRecord]:
        # Every object built here is kept, so garbage collections triggered by the 600,000+
        # allocations of a large load would scan a growing heap for nothing.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            rows = self._connection().execute(self._queries.load).fetchall()
            # Fast path: check each column's types over all rows in C loops, then build every
            # record; only when some row is off, decode row by row to find and skip it.
            if all(
                set(map(type, map(itemgetter(i), rows))) <= {kind}
                for i, kind in enumerate(_ROW_TYPES)
            ):
                return list(starmap(JobRecord, rows))
            decoded = (self._decode(row) for row in rows)
            return [record for record in decoded if record is not None]
        finally:
            if gc_was_enabled:
                gc.enable()

    def _get_sync(self, job_id: str) -> JobRecord | None:
        row = self._connection().execute(self._queries.get, (job_id,)).fetchone()
        return None if row is None else self._decode(row)

    def _decode(self, row: tuple[Any, ...]) -> JobRecord | None:
        job_id, task_name, exec_at, arguments, trigger, status = row
        if type(exec_at) is int:  # REAL affinity keeps an integer too large for a double
            exec_at = float(exec_at)
        if tuple(map(type, (job_id, task_name, exec_at, arguments, trigger, status))) != (
            _ROW_TYPES
        ):
            logger.warning(
                "skipping job %r in table %s of %s: a column has an unexpected type or is "
                "NULL (%s); the row is left in place",
                job_id,
                self.table_name,
                self.database,
                ", ".join(type(value).__name__ for value in row),
            )
            return None
        return JobRecord(job_id, task_name, exec_at, arguments, trigger, status)


def _ignore(_result: object, _error: BaseException | None) -> None:
    """A completion callback for cleanup work whose outcome nobody awaits."""
