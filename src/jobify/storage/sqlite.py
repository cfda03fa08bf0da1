"""The embedded default storage: one SQLite file owned by one running app.

Threading: the stdlib ``sqlite3`` driver blocks, so one dedicated thread per storage owns the
connections and runs every statement; the event loop only queues work for it and is woken by
one ``call_soon_threadsafe`` callback per unit of work.

Writes are group-committed (see :mod:`jobify.storage.sqlite_commit`): many concurrent
writes share one transaction, and a write that fails on its own values fails only its
caller. Reads are in :mod:`jobify.storage.sqlite_reads`; opening and error mapping in
:mod:`jobify.storage.sqlite_connection`; ownership in :mod:`jobify.storage.filelock`;
waking the owner for an inspector's command in :mod:`jobify.storage.commandwatch`; what
the worker thread holds for one open store in :mod:`jobify.storage.sqlite_session`.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from jobify.exceptions import StorageError
from jobify.storage.base import (
    Command,
    CommandChannel,
    HistoryQuery,
    JobQuery,
    JobRecord,
    RunRecord,
    Storage,
    TaskRecord,
)
from jobify.storage.checks import (
    check_action,
    check_command_id,
    check_command_result,
    check_file_mode,
    check_history_query,
    check_job_id,
    check_job_query,
    check_prune,
    check_record,
    check_run,
    check_tasks,
)
from jobify.storage.commandwatch import CommandWatcher
from jobify.storage.filelock import PRIVATE
from jobify.storage.sql import sqlite as sql
from jobify.storage.sqlite_commit import (
    COMMAND,
    DELETE,
    FINISH,
    PRUNE,
    RUN,
    SAVE,
    SAVE_MANY,
    TASKS,
    GroupCommit,
    run_row,
)
from jobify.storage.sqlite_connection import map_error
from jobify.storage.sqlite_reads import Reader
from jobify.storage.sqlite_session import Session
from jobify.storage.workerthread import WorkerThread

__all__ = ["SQLiteStorage"]

_MEMORY = ":memory:"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
T = TypeVar("T")


class SQLiteStorage(Storage, CommandChannel):
    """Durable jobs in one SQLite file (or ``":memory:"``), owned by one running app.

    ``database`` is a path (created if absent) or ``":memory:"`` (one connection, lives as long
    as the storage is started; nothing survives, and it cannot be inspected). ``table_name``
    is the jobs table (a plain identifier); the store's other tables are named after it
    (``<table>_runs``, ``<table>_tasks``, ``<table>_commands``). ``timeout`` bounds, in
    seconds, how long a write waits for another program that holds a write transaction on
    the file ("database is locked") before failing with a
    :class:`~jobify.exceptions.StorageError`.

    Durability: the file is in WAL mode. With ``synchronous="normal"`` (the default) a
    committed write survives a crash or kill -9 of the process (the commit is in the WAL file,
    in the OS page cache), but the last commits may be lost if the machine loses power.
    ``synchronous="full"`` syncs the WAL to disk on every (group) commit, so committed writes
    also survive power loss, at the price of one fsync per batch.

    Ownership: ``startup()`` takes an exclusive lock on the database file itself (so a
    symlink or a hard link cannot give it a second owner); a second process opening the
    same file while the first runs gets a :class:`~jobify.exceptions.StorageLockedError`
    naming the holder's pid (kept in ``<database>.lock``). If the file is deleted or
    replaced while the app runs, every later write fails with a
    :class:`~jobify.exceptions.StorageError` (and an ERROR log) instead of vanishing.
    Several workers on one job store need ``PostgresStorage``.

    Files (the database, ``-wal``, ``-shm``, ``.lock``, ``.wake``) are created with
    ``file_mode``, 0o600 whatever the umask; 0o660 shares them with the group.

    Inspection: ``open_inspection()`` reads the file through a read-only connection
    without taking the lock, while the owner runs or not. Its only write is
    ``send_command`` (one short transaction on the commands table), after which it touches
    ``<database>.wake``, which the owner watches (``watch_commands``).
    """

    shared = False

    def __init__(
        self,
        database: str | Path = "jobify.db",
        *,
        table_name: str = "jobify_schedules",
        timeout: float = 20.0,
        synchronous: Literal["normal", "full"] = "normal",
        file_mode: int = PRIVATE,
    ) -> None:
        check_file_mode(file_mode)
        if not isinstance(database, str | os.PathLike) or isinstance(database, bytes):
            raise TypeError(f"database must be a str or a Path, got {database!r}")
        if not isinstance(table_name, str) or not _IDENTIFIER.fullmatch(table_name):
            raise ValueError(
                f"table_name must be a plain SQL identifier (letters, digits and _, not "
                f"starting with a digit or 'sqlite_'), got {table_name!r}"
            )
        if table_name.lower().startswith("sqlite_"):
            raise ValueError(
                f"table_name must be a plain SQL identifier (letters, digits and _, not "
                f"starting with a digit or 'sqlite_'), got {table_name!r}"
            )
        if table_name.lower() == sql.META_TABLE:
            raise ValueError(f"table_name {table_name!r} is reserved for jobify's schema table")
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', got {synchronous!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
        if not math.isfinite(timeout) or timeout < 0:
            raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout!r}")
        database = os.fspath(database)
        if not isinstance(database, str):
            raise TypeError(f"database must be a str or a Path, got {database!r}")
        self._path = database  # as given (a str), or ":memory:"
        self.table_name = table_name
        self.timeout = float(timeout)
        self.synchronous = synchronous
        self.file_mode = file_mode  # SQLite gives -wal and -shm the database's mode
        self._memory = self._path == _MEMORY
        self._queries = sql.SQLiteQueries.for_table(table_name)
        self._state: Literal["new", "starting", "running", "closing", "closed"] = "new"
        self._mode: Literal["owner", "inspector"] = "owner"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: WorkerThread | None = None
        self._commit: GroupCommit | None = None  # the owner's group commit
        self._closed: asyncio.Future[None] | None = None
        self._watcher: CommandWatcher | None = None
        self._on_command: Callable[[], None] | None = None
        # Its blocking methods run in the worker thread (the probe of owner_running excepted).
        self._session: Session | None = None

    def __repr__(self) -> str:
        return f"SQLiteStorage({self._path!r}, table_name={self.table_name!r})"

    @property
    def database(self) -> Path:
        """The database file as a ``Path`` (``Path(":memory:")`` for an in-memory store)."""
        return Path(self._path)

    @property
    def commit_count(self) -> int:
        """How many write transactions were committed so far (for tests and monitoring)."""
        writer = None if self._session is None else self._session.writer
        return 0 if writer is None else writer.commits

    # -- life cycle ---------------------------------------------------------------------

    async def startup(self) -> None:
        """Lock the file, open it in WAL mode and create or migrate the schema.

        May be called again after ``shutdown()`` to reopen. Raises
        :class:`~jobify.exceptions.StorageLockedError` when another process runs on the file,
        :class:`~jobify.exceptions.SchemaVersionError` (leaving the file untouched) when its
        schema is newer than this code, and :class:`~jobify.exceptions.StorageError` when the
        file is read-only, corrupt, not a database or stays locked longer than ``timeout``.
        """
        session = await self._open("owner", Session.open_owner)
        self._commit = GroupCommit(self._loop_(), self._thread_(), session.commit, self._path)

    async def open_inspection(self) -> None:
        """Open the file for reading without taking the owner lock (an app may run on it).

        Raises :class:`~jobify.exceptions.StorageError` when the file does not exist or is not
        a jobify store (not SQLite, or no jobify schema for ``table_name``), and
        :class:`~jobify.exceptions.SchemaVersionError` when its schema is newer than this
        code. Nothing is created or migrated.
        """
        if self._memory and self._state in ("new", "closed"):
            raise StorageError(
                "a ':memory:' SQLite database lives inside its owner's connection: it cannot "
                "be inspected (use a file)"
            )
        await self._open("inspector", Session.open_inspector)

    async def _open(
        self, mode: Literal["owner", "inspector"], open_: Callable[[Session], None]
    ) -> Session:
        if self._state not in ("new", "closed"):
            raise StorageError(f"{self!r} is already started")
        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        thread = WorkerThread(f"jobify-sqlite:{Path(self._path).name}", self._loop, self._map_error)
        session = Session(
            self._path,
            self.table_name,
            self._queries,
            timeout=self.timeout,
            synchronous=self.synchronous,
            file_mode=self.file_mode,
        )
        try:
            await thread.call(partial(open_, session))
        except BaseException:
            # Also reached on cancellation while the open is still running in the thread:
            # queue the close behind it and let the thread end on its own, without blocking
            # the loop on a join (the open may be waiting out a busy database).
            thread.submit(session.close, _ignore)
            thread.stop(wait=False)
            self._state = "new"
            raise
        self._thread = thread
        self._session = session
        self._mode = mode
        self._closed = None
        self._state = "running"
        return session

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
        self._stop_watching()
        failure: StorageError | None = None
        commit = self._commit
        try:
            while commit is not None and commit.busy:
                try:
                    await commit.drain()
                except StorageError as exc:  # keep committing what is left; report the first
                    failure = failure or exc
        finally:
            try:
                await self._thread_().call(self._session_().close)
            finally:
                self._thread_().stop()
                self._thread = None
                self._commit = None
                self._state = "closed"
                # Only if shutdown itself was cancelled can writes be left uncommitted.
                if commit is not None:
                    commit.abandon()
                self._closed.set_result(None)
        if failure is not None:
            raise failure

    # -- reads ----------------------------------------------------------------------------

    async def load(self) -> list[JobRecord]:
        """Every committed record. Rows with wrongly typed columns are skipped with a
        warning naming their job id, and left in the table."""
        return await self._read(lambda reader: reader.load())  # type: ignore[no-any-return]

    async def get(self, job_id: str) -> JobRecord | None:
        """The committed record with this id, or None (also, with a warning, when its row
        is undecodable)."""
        check_job_id(job_id)
        return await self._read(lambda reader: reader.get(job_id))  # type: ignore[no-any-return]

    async def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        """One page of committed records, ordered by ``(exec_at, job_id)`` (a page may be
        short of ``limit`` by the rows skipped as undecodable)."""
        check_job_query(query)
        return await self._read(lambda reader: reader.query_jobs(query))  # type: ignore[no-any-return]

    async def job_counts(self) -> dict[tuple[str, str], int]:
        """How many records there are per ``(task_name, status)``."""
        return await self._read(lambda reader: reader.job_counts())  # type: ignore[no-any-return]

    async def query_history(self, query: HistoryQuery) -> list[RunRecord]:
        """One page of committed runs, newest first."""
        check_history_query(query)
        return await self._read(lambda reader: reader.query_history(query))  # type: ignore[no-any-return]

    async def load_tasks(self) -> list[TaskRecord]:
        """The tasks the owning app registered when it last started, by name."""
        return await self._read(lambda reader: reader.load_tasks())  # type: ignore[no-any-return]

    async def _read(self, work: Callable[[Reader], Any]) -> Any:
        if self._state != "running":
            raise self._refusal()
        session = self._session_()
        return await self._thread_().call(lambda: work(session.reader))

    # -- writes ---------------------------------------------------------------------------

    async def save(self, record: JobRecord) -> None:
        """Insert or replace the record; return once its group commit is committed."""
        check_record(record)
        await self._owner("save()").write(SAVE, record)

    async def save_many(self, records: Sequence[JobRecord]) -> None:
        """Insert or replace every record in one transaction; return once committed."""
        for record in records:
            check_record(record)
        commit = self._owner("save_many()")
        if records:
            await commit.write(SAVE_MANY, tuple(records))

    async def delete(self, job_id: str) -> None:
        """Delete the record (no error when absent); return once committed."""
        check_job_id(job_id)
        await self._owner("delete()").write(DELETE, job_id)

    def save_soon(self, record: JobRecord) -> None:
        """Queue an insert-or-replace into the next group commit; a failure is logged."""
        check_record(record)
        self._owner("save_soon()").write_soon(SAVE, record)

    def delete_soon(self, job_id: str) -> None:
        """Queue a delete into the next group commit; a failure is logged."""
        check_job_id(job_id)
        self._owner("delete_soon()").write_soon(DELETE, job_id)

    def record_run_soon(self, run: RunRecord) -> None:
        """Queue a run record into the next group commit (in the same transaction as the
        job writes of that batch); a failure is logged. Text UTF-8 cannot hold is escaped."""
        check_run(run)
        # Its values are taken now: the caller's object is not kept.
        self._owner("record_run_soon()").write_soon(RUN, run_row(run))

    async def prune_history(self, *, before: float, keep: int) -> int:
        """Delete runs finished before ``before`` and all but the newest ``keep``, in the
        group commit after the writes queued before it; return how many were deleted."""
        check_prune(before, keep)
        return await self._owner("prune_history()").write(PRUNE, (float(before), keep))  # type: ignore[no-any-return]

    async def save_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Replace the registered-task list (rides the group commit); return once committed."""
        checked = check_tasks(tasks)
        await self._owner("save_tasks()").write(TASKS, checked)

    async def flush(self) -> None:
        """Return once every write queued so far is committed (StorageError if its whole
        batch failed; a queued write that failed alone is logged)."""
        await self._owner("flush()").drain()

    # -- commands ---------------------------------------------------------------------------

    async def owner_running(self) -> bool:
        """Whether an app owns the file right now: True on the owner itself; for an
        inspector, whether the owner lock is held by a live process (asked without taking
        it)."""
        if self._state != "running":
            raise self._refusal()
        if self._mode == "owner":
            return True
        # Two non-blocking flock calls: cheap enough for the loop.
        return self._session_().owner_running()

    async def send_command(self, job_id: str, action: str) -> int:
        """Queue a command for the owning app and wake it; return its id.

        From an inspector: one short write transaction on the commands table (waiting up to
        ``timeout`` for the owner's commits), then a touch of ``<database>.wake``. On the
        owner itself it rides the group commit and calls the watcher directly.
        """
        check_action(job_id, action)
        if self._state != "running":
            raise self._refusal()
        payload = (str(job_id), action, time.time())
        if self._mode == "inspector":
            session = self._session_()
            return await self._thread_().call(partial(session.send_command, payload))  # type: ignore[no-any-return]
        command_id: int = await self._owner("send_command()").write(COMMAND, payload)
        if self._on_command is not None:
            self._loop_().call_soon(self._wake)
        return command_id

    async def command_result(self, command_id: int) -> str | None:
        """The owner's answer, or None while pending; ValueError for an unknown id."""
        check_command_id(command_id)
        return await self._read(lambda reader: reader.command_result(command_id))  # type: ignore[no-any-return]

    async def take_commands(self) -> list[Command]:
        """Owner side: the commands not yet answered, oldest first."""
        self._owner("take_commands()")
        return await self._read(lambda reader: reader.pending_commands())  # type: ignore[no-any-return]

    async def finish_command(self, command_id: int, result: str) -> None:
        """Owner side: record the answer (rides the group commit); return once committed.
        Answers are kept for 7 days."""
        check_command_result(command_id, result)
        await self._owner("finish_command()").write(FINISH, (command_id, result, time.time()))

    def watch_commands(self, callback: Callable[[], None] | None) -> None:
        """Owner side: call ``callback`` on the loop when an inspector sends a command (and
        once right away if some are pending); None stops watching. Uses inotify on Linux
        (woken within milliseconds, no cost while idle; the app's own commits never wake
        it), else checks ``<database>.wake`` once a second. Stopped by ``shutdown()``."""
        self._owner("watch_commands()")
        if callback is None:
            self._stop_watching()
            return
        self._on_command = callback
        session = self._session_()
        if self._watcher is None and not self._memory:
            watcher = CommandWatcher(
                session.wake_path, self._loop_(), self._wake, file_mode=self.file_mode
            )
            try:
                watcher.start()
            except OSError as exc:
                raise StorageError(
                    f"cannot watch for commands to {self._path!r}: cannot create "
                    f"{watcher.path!r} ({exc.strerror})"
                ) from exc
            self._watcher = watcher
        # After the watch is in place, so that a command sent in between is not missed.
        self._thread_().submit(lambda: session.reader.any_pending_command(), self._pending_checked)

    @property
    def watch_mode(self) -> Literal["inotify", "poll", "stopped"]:
        """How commands are being watched for (for tests and diagnostics)."""
        return "stopped" if self._watcher is None else self._watcher.mode

    def _pending_checked(self, pending: object, error: BaseException | None) -> None:
        if error is None and pending:
            self._wake()

    def _wake(self) -> None:
        # Looked up at call time: watching may have stopped or changed since it was queued.
        callback = self._on_command
        if callback is not None and self._state == "running":
            callback()

    def _stop_watching(self) -> None:
        self._on_command = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    # -- event-loop side helpers ----------------------------------------------------------

    def _loop_(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _thread_(self) -> WorkerThread:
        assert self._thread is not None
        return self._thread

    def _session_(self) -> Session:
        assert self._session is not None
        return self._session

    def _owner(self, what: str) -> GroupCommit:
        """The group commit, if this storage is running as the owner; else raise."""
        commit = self._commit
        if commit is None or self._state != "running":
            if self._state == "running":
                raise StorageError(
                    f"{self!r} is open for inspection: {what} is for the owning app only "
                    "(await storage.startup() to own the file)"
                )
            raise self._refusal()
        return commit

    def _refusal(self) -> StorageError:
        if self._state in ("new", "starting"):
            return StorageError(f"{self!r} is not started: await storage.startup() first")
        return StorageError(f"{self!r} is shut down")

    # -- the worker thread ------------------------------------------------------------------

    def _map_error(self, exc: Exception) -> BaseException:
        """Map a driver error to a StorageError naming the file (runs in the thread)."""
        if isinstance(exc, sqlite3.Error):
            return map_error(exc, self._path, self.timeout)
        return exc

    async def run_on_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` in the storage's thread on its own connection and return
        its result. For diagnostics and tests (per-connection settings, fault injection);
        what ``work`` changes bypasses the storage's bookkeeping. The storage must be
        started, or open for inspection."""
        if self._state != "running":
            raise self._refusal()
        session = self._session_()
        return await self._thread_().call(lambda: work(session.conn))  # type: ignore[no-any-return, arg-type]


def _ignore(_result: object, _error: BaseException | None) -> None:
    """A completion callback for cleanup work whose outcome nobody awaits."""
