"""The shared storage: one PostgreSQL schema used by many worker processes at once.

How a worker uses it (the semantics are those of :class:`~jobify.storage.base.SharedStorage`):

- :meth:`PostgresStorage.claim` takes due jobs in one statement (``UPDATE … WHERE job_id IN
  (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING …``): two workers never get the same
  row, and neither waits for the other. A claim sets ``locked_by`` (:attr:`worker_id`) and
  ``locked_until`` (now + ``lease``).
- One background heartbeat per storage renews every lease it holds, every ``lease / 3``
  seconds, in one statement that also says which claims were taken over and reads the
  earliest claimable time (handed to the listener as if it were a notification: a lost
  notification delays a job by one period at most). Each attempt is bounded (a heartbeat
  that cannot complete leaves the claims in place and is tried again at once); only a row
  that is gone or held by another worker ends a claim.
- :meth:`PostgresStorage.complete` is group-committed: the completions of many jobs, the
  saves and deletes issued meanwhile, results and run records all go out as ONE statement
  per batch, guarded by ``locked_by``.
- Inserts and changes are announced with ``NOTIFY`` in the same transaction (see
  :mod:`jobify.storage.postgres_listen` for the payloads); the storage LISTENs on a dedicated
  connection, which needs a session-mode connection (not PgBouncer in transaction mode).

Between events the storage sends nothing but that heartbeat: no polling.

Times (``exec_at``, leases) are compared with the local clock of the process that runs the
statement (the app's clock, :meth:`PostgresStorage.use_clock`; ``time.time()`` by default),
so hosts must keep their clocks in sync (NTP). A live worker's
lease always runs at least ``2/3 * lease`` ahead of its clock, so a skew smaller than that
never lets another worker take a live claim.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any, Literal

from jobify.exceptions import StorageError
from jobify.storage.base import (
    JobRecord,
    ResultRecord,
    RunRecord,
    SharedListener,
    SharedStorage,
    TaskRecord,
)
from jobify.storage.checks import (
    check_job_id,
    check_prune,
    check_record,
    check_run,
    check_tasks,
    clean_text,
    is_storable_text,
)
from jobify.storage.postgres_batch import Batch, GroupCommit
from jobify.storage.postgres_connection import (
    Target,
    driver,
    is_unsent,
    map_error,
    migrate,
    quote_schema,
    retrying,
    validate_schema,
)
from jobify.storage.postgres_cursor import ClaimCursor, CursorListener
from jobify.storage.postgres_leases import PostgresLeases
from jobify.storage.postgres_listen import Notifications, listening_connection
from jobify.storage.postgres_producer import (
    TRANSACTION_STATUS,
    copy_new_jobs,
    insert_on,
    insert_statement,
)
from jobify.storage.postgres_reads import PostgresReads
from jobify.storage.postgres_results import ResultReads
from jobify.storage.sql import postgres as sql

__all__ = ["PostgresStorage"]

logger = logging.getLogger("jobify.storage")

PRUNE_STEP = 1000
"""Run records deleted per statement when the history is pruned."""
FLOOR_RESET = 3600.0
"""Seconds between prunes that start at the oldest row rather than where the last stopped."""

_State = Literal["new", "starting", "running", "inspecting", "closing", "closed"]


def _check_key(name: str, value: str) -> None:
    """Refuse text PostgreSQL cannot store in a key column, when the write is issued (in a
    group commit it would fail every write of the batch)."""
    if "\x00" in value or not is_storable_text(value):
        raise ValueError(
            f"{name} {value!r} cannot be stored in PostgreSQL: it holds a NUL character or a "
            "lone surrogate"
        )


def _check_job(record: JobRecord) -> None:
    check_record(record)
    _check_key("job_id", record.job_id)
    _check_key("task_name", record.task_name)
    _check_key("status", record.status)


def _pg_str(text: str) -> str:
    """Free text (error messages, tracebacks) made storable: never a reason to fail."""
    return clean_text(text).replace("\x00", "\\x00")


def _pg_text(text: str | None) -> str | None:
    return None if text is None else _pg_str(text)


async def _keep_session(_conn: object) -> None:
    """Pool reset hook: jobify never changes session state, so a released connection needs
    no reset query (asyncpg's default costs one round trip per use)."""


class PostgresStorage(PostgresReads, PostgresLeases, SharedStorage):
    """Jobs in a PostgreSQL schema shared by many workers, on ``asyncpg`` (extra ``postgres``).

    ``dsn`` is a ``postgresql://user:password@host:port/database`` URI. Every table lives in
    ``schema`` (created and migrated by :meth:`startup`, under an advisory lock so that
    workers starting together are safe); nothing is created outside it. ``lease`` is how long
    a claim stays valid without a heartbeat (a dead worker's jobs are taken over after it).
    ``results_ttl`` is how long results are kept for remote waiters (a waiter is told at the
    commit and reads its result at once; the retention is for one that reconnects, or asks
    later), pruned a few at a time by the commits that write results. ``pool_size`` bounds
    the connections used for statements (plus one for LISTEN). ``connect_timeout`` bounds
    one connection attempt; ``retry_timeout`` is how long a statement keeps being retried
    while the server is unreachable or restarting before the caller gets a
    :class:`~jobify.exceptions.StorageError`.

    The LISTEN connection needs a session-mode connection: PostgreSQL directly, or a pooler
    in session mode (PgBouncer in transaction mode would lose every notification).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "jobify",
        lease: float = 30.0,
        results_ttl: float = 300.0,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        retry_timeout: float = 30.0,
    ) -> None:
        self._target = Target.parse(dsn)
        driver()  # fail now, with the extra's name, when asyncpg is missing
        self.schema = validate_schema(schema)
        for name, value, low in (
            ("lease", lease, 0.1),
            ("results_ttl", results_ttl, 0.0),
            ("connect_timeout", connect_timeout, 0.0),
            ("retry_timeout", retry_timeout, 0.0),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
                raise ValueError(f"{name} must be a number of seconds >= {low}, got {value!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be an int >= 1, got {pool_size!r}")
        self._dsn = dsn
        self.lease = float(lease)
        self.results_ttl = float(results_ttl)
        self.pool_size = pool_size
        self.connect_timeout = float(connect_timeout)
        self.retry_timeout = float(retry_timeout)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.channel = f"jobify.{schema}"
        """The NOTIFY channel of this schema."""
        self._quoted = quote_schema(schema)
        self._statements: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._insert_on: str | None = None
        self._state: _State = "new"
        self._pool: Any = None
        self._listener: SharedListener | None = None
        self._notifications: Notifications | None = None
        self._commit: GroupCommit | None = None
        self._held: dict[str, float] = {}
        """Job id -> when its lease ends, by this clock, as of the last renewal sent."""
        self._tasks: list[str] = []
        """The task names of the last claim: what the heartbeat looks for."""
        self._clock: Callable[[], float] = time.time
        self._claimed_ever = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        # Where the last prune of results / of the history stopped (see the statements),
        # and when these floors last went back to the start (hourly: rows written by a host
        # whose clock lags are then pruned too).
        self._results_floor = -math.inf
        self._runs_floor = -math.inf
        self._floors_since = 0.0
        self._cursor = ClaimCursor()
        self._result_reads = ResultReads(self._get_results)

    def __repr__(self) -> str:
        return f"PostgresStorage({self._target.safe_dsn(self._dsn)!r}, schema={self.schema!r})"

    @property
    def commit_count(self) -> int:
        """How many group commits were committed so far (for tests and monitoring)."""
        return 0 if self._commit is None else self._commit.commits

    @property
    def held(self) -> frozenset[str]:
        """Ids of the jobs this worker has claimed and not yet completed or released."""
        return frozenset(self._held)

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Compare times with ``clock`` (epoch seconds; the app's clock) instead of
        ``time.time()``: due times, leases and result retention all read it."""
        self._clock = clock

    @property
    def claim_cursor(self) -> float:
        """The ``exec_at`` where the next claim starts reading the due jobs (``-inf``: at the
        start); see :mod:`jobify.storage.postgres_cursor`. For tests and monitoring."""
        return self._cursor.position

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up right now."""
        return self._notifications is not None and self._notifications.connected

    # -- life cycle ---------------------------------------------------------------------

    async def startup(self) -> None:
        """Connect, create or migrate the schema (under an advisory lock), and LISTEN when a
        listener is set.

        Raises :class:`~jobify.exceptions.StorageError` naming host and port (never the
        password) when the server is unreachable or refuses the login, and
        :class:`~jobify.exceptions.SchemaVersionError` when the schema is newer than this
        code. May be called again after ``shutdown()``.
        """
        await self._open(create=True)

    async def open_inspection(self) -> None:
        """Connect without creating anything: reads, and direct edits (``save``, ``delete``:
        the workers are notified). Raises StorageError ("not a jobify store") when the
        schema holds no jobify tables, SchemaVersionError when it is newer than this code."""
        await self._open(create=False)

    async def _open(self, *, create: bool) -> None:
        if self._state not in ("new", "closed"):
            raise StorageError(f"{self!r} is already started")
        self._state = "starting"
        pg = driver()
        loop = asyncio.get_running_loop()
        try:
            self._pool = await pg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self.pool_size if create else min(self.pool_size, 2),
                reset=_keep_session,
                timeout=self.connect_timeout,
                server_settings=self._settings(create),
            )
            async with self._pool.acquire() as conn:
                await migrate(conn, self.schema, create=create)
            if create and self._listener is not None:
                await self._listen()
        except BaseException as exc:
            await self._close_connections()
            self._state = "new"
            if isinstance(exc, Exception) and not isinstance(exc, StorageError):
                raise map_error(exc, self._target, "connecting") from exc
            raise
        self._commit = GroupCommit(loop, self._execute_batch, self._forget, str(self._target))
        self._held.clear()
        self._tasks = []
        self._claimed_ever = False
        self._closed = None
        self._state = "running" if create else "inspecting"
        if create:
            self._heartbeat = loop.create_task(self._heartbeat_loop())

    def _settings(self, owner: bool) -> dict[str, str]:
        settings = {"application_name": self.application_name}
        if owner:
            # A worker's statements walk an index in order and stop after a few rows (the
            # claim, the next due time). Planned on statistics taken when few jobs waited, a
            # bitmap scan of the whole range plus a sort looks as cheap, and then reads every
            # waiting job on each claim once a backlog builds: claims slow down as the
            # backlog grows, and it grows faster. Without bitmap scans the plan that stops
            # early is the cheap one whatever the statistics say.
            settings["enable_bitmapscan"] = "off"
        return settings

    @property
    def application_name(self) -> str:
        """How this storage's connections appear in ``pg_stat_activity``."""
        return f"jobify {self.worker_id}"[:63]

    async def shutdown(self) -> None:
        """Commit every queued write, give back this worker's claims, stop listening and
        close. Idempotent. Raises StorageError if the last writes could not be committed;
        the connections are closed either way."""
        if self._state in ("new", "starting", "closed"):
            return
        if self._state == "closing":
            assert self._closed is not None
            await asyncio.shield(self._closed)
            return
        owner = self._state == "running"
        self._state = "closing"
        self._closed = asyncio.get_running_loop().create_future()
        failure: StorageError | None = None
        try:
            commit = self._commit_()
            while not commit.idle:
                try:
                    await commit.drain()
                except StorageError as exc:  # keep committing what is left; report the first
                    failure = failure or exc
            if owner and self._claimed_ever:
                try:
                    await self._release(None)
                except StorageError as exc:
                    failure = failure or exc
        finally:
            await self._close_connections()
            self._state = "closed"
            self._closed.set_result(None)
        if failure is not None:
            raise failure

    async def _close_connections(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        notifications, self._notifications = self._notifications, None
        if notifications is not None:
            await notifications.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except Exception:  # TimeoutError included
                pool.terminate()

    # -- notifications --------------------------------------------------------------------

    def set_listener(self, listener: SharedListener | None) -> None:
        """Receive notifications (set before ``startup()``; None stops them). Set on a
        running storage, it starts listening in the background and calls ``on_resync()``
        once the LISTEN is in place (what happened before that was not heard)."""
        self._listener = listener
        if listener is not None and self._state == "running" and self._notifications is None:
            asyncio.get_running_loop().create_task(self._listen_late())

    async def _listen(self) -> None:
        heard = CursorListener(self._cursor, lambda: self._listener)
        self._notifications = Notifications(
            self._connect, self.channel, self._target, lambda: heard
        )
        await self._notifications.start()

    async def _listen_late(self) -> None:
        try:
            await self._listen()
        except StorageError as exc:
            logger.error("cannot LISTEN for jobify notifications: %s", exc)
            self._notifications = None
            return
        if self._listener is not None:
            self._listener.on_resync()

    async def _connect(self) -> Any:
        return await driver().connect(
            self._dsn,
            timeout=self.connect_timeout,
            server_settings={"application_name": self.application_name},
            connection_class=listening_connection(),
        )

    # -- plumbing -------------------------------------------------------------------------

    def _check(self, *, owner: bool = False) -> None:
        if self._state == "running" or (self._state == "inspecting" and not owner):
            return
        if self._state in ("new", "starting"):
            raise StorageError(f"{self!r} is not started: await storage.startup() first")
        if self._state == "inspecting":
            raise StorageError(
                f"{self!r} is open for inspection: this call is for workers (startup())"
            )
        raise StorageError(f"{self!r} is shut down")

    def _commit_(self) -> GroupCommit:
        assert self._commit is not None
        return self._commit

    def _sql(self, template: str) -> tuple[str, tuple[str, ...]]:
        """The bound statement of a template (cached: binding is string work)."""
        found = self._statements.get(template)
        if found is None:
            found = self._statements[template] = sql.bind(template, self._quoted)
        return found

    async def _run(
        self,
        method: str,
        template: str,
        values: dict[str, Any],
        doing: str,
        *,
        idempotent: bool,
        patience: float | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run a statement through the pool (``fetch``/``fetchrow``/``fetchval``/
        ``execute``), retrying for up to ``patience`` (default ``retry_timeout``) seconds
        while the server is away; ``timeout`` bounds each attempt, the wait for a pooled
        connection included (the statement is cancelled on the server when it passes)."""
        text, names = self._sql(template)
        args = [values[name] for name in names]
        pool = self._pool

        async def call() -> Any:
            if pool is None:
                raise StorageError(f"{self!r} is shut down")
            async with pool.acquire(timeout=timeout) as conn:
                try:
                    return await getattr(conn, method)(text, *args, timeout=timeout)
                except Exception as exc:
                    if is_unsent(exc):
                        # Its backend is gone (see is_unsent): close it now, so that the
                        # pool opens a new connection instead of handing this one out again.
                        conn.terminate()
                    raise

        return await retrying(
            call,
            target=self._target,
            doing=doing,
            idempotent=idempotent,
            deadline=time.monotonic() + (self.retry_timeout if patience is None else patience),
        )

    # -- writes (group-committed) ---------------------------------------------------------

    async def save(self, record: JobRecord) -> None:
        """Insert or replace the record; return once committed (workers are notified).

        A replacement that changes the task, arguments or trigger takes the job from a
        worker that claimed it (its completion is refused); one that changes only
        ``exec_at`` or ``status`` (a move, pause or resume) leaves the claim in place."""
        _check_job(record)
        self._check()
        await self._commit_().wait(self._commit_().put(record.job_id, record, soon=False))

    async def save_many(self, records: Sequence[JobRecord]) -> None:
        """Insert or replace every record in one transaction; return once committed."""
        for record in records:
            _check_job(record)
        self._check()
        if not records:
            return
        commit = self._commit_()
        batches = [commit.put(record.job_id, record, soon=False) for record in records]
        await commit.wait(batches[-1])  # batches commit in order: the last one covers all

    async def insert_many(self, records: Sequence[JobRecord]) -> None:
        """Insert the records of new jobs with one ``COPY`` and one notification, in one
        transaction (see :mod:`jobify.storage.postgres_producer`); return once committed."""
        for record in records:
            _check_job(record)
        self._check()
        if not records:
            return
        pool = self._pool

        async def call() -> None:
            if pool is None:
                raise StorageError(f"{self!r} is shut down")
            async with pool.acquire() as conn:
                await copy_new_jobs(conn, self.schema, self.channel, records)

        await retrying(
            call,
            target=self._target,
            doing="inserting jobs",
            idempotent=False,
            deadline=time.monotonic() + self.retry_timeout,
        )

    async def insert_on(self, connection: Any, record: JobRecord) -> int | None:
        """Insert a new job's row and its notification on the caller's asyncpg
        ``connection``, in its transaction; the transaction's id, or None if the id is in
        use. Never retried: the caller's transaction is the caller's."""
        _check_job(record)
        self._check()
        if not callable(getattr(connection, "fetchrow", None)):
            raise TypeError(
                f"connection must be an asyncpg connection, got {type(connection).__name__} "
                "(from SQLAlchemy: the driver connection of the session's connection, see "
                "the transactional enqueue recipe in the docs)"
            )
        if self._insert_on is None:
            self._insert_on = insert_statement(self._quoted)
        try:
            return await insert_on(connection, self._insert_on, self.channel, record)
        except Exception as exc:
            raise StorageError(
                f"writing job {record.job_id!r} on the given connection failed "
                f"({type(exc).__name__}: {exc}); it must be a connection to the database of "
                f"{self!r}, whose schema exists (the store was started once)"
            ) from exc

    async def transaction_committed(self, transaction: Any) -> bool | None:
        status: str | None = await self._run(
            "fetchval",
            TRANSACTION_STATUS,
            {"xid": int(transaction)},
            "checking a transaction",
            idempotent=True,
        )
        if status == "in progress":
            return None
        return status != "aborted"  # NULL (too old to know): it ended long ago, committed

    async def delete(self, job_id: str) -> None:
        """Delete the record (no error when absent); return once committed."""
        check_job_id(job_id)
        _check_key("job_id", job_id)
        self._check()
        await self._commit_().wait(self._commit_().put(job_id, None, soon=False))

    def save_soon(self, record: JobRecord) -> None:
        """Queue an insert-or-replace into the next group commit; a failure is logged."""
        _check_job(record)
        self._check()
        self._commit_().put(record.job_id, record, soon=True)

    def delete_soon(self, job_id: str) -> None:
        """Queue a delete into the next group commit; a failure is logged."""
        check_job_id(job_id)
        _check_key("job_id", job_id)
        self._check()
        self._commit_().put(job_id, None, soon=True)

    def record_run_soon(self, run: RunRecord) -> None:
        """Queue a run record into the next group commit (workers only)."""
        check_run(run)
        _check_key("job_id", run.job_id)
        _check_key("task_name", run.task_name)
        self._check(owner=True)
        if run.finished_at < self._runs_floor:  # a run older than the pruned ones
            self._runs_floor = -math.inf
        self._commit_().put_run(
            replace(
                run,
                outcome=_pg_str(run.outcome),
                error_type=_pg_text(run.error_type),
                error_message=_pg_text(run.error_message),
                traceback=_pg_text(run.traceback),
                worker=_pg_text(run.worker),
            )
        )

    async def flush(self) -> None:
        """Return once every write queued so far is committed (StorageError if it failed)."""
        self._check()
        await self._commit_().drain()

    async def _execute_batch(self, batch: Batch) -> list[str]:
        parts = batch.parts()
        values = batch.arguments()
        now = self._clock()
        self._reset_floors(now)
        if "results" in parts:
            # Expired results are pruned in passing, by each batch that writes results, up to
            # twice as many as it writes: the table keeps pace without a burst of deletes,
            # and an idle store is never touched for it (get_result ignores expired ones).
            parts |= {"prune"}
            values.update(
                res_oldest=now - self.results_ttl,
                res_floor=self._results_floor,
                res_limit=2 * len(values["res_ids"]) + 16,
            )
        values.update(worker=self.worker_id, channel=self.channel)
        # Sent again even when a lost connection leaves its outcome unknown: every write in
        # it is keyed by job id (an upsert or delete lands the same twice; a guarded
        # completion that did land finds its claim gone and changes nothing; expired results
        # are deleted once), so a push is not failed for a commit that may well have happened.
        row = await self._run(
            "fetchrow", sql.batch_statement(parts), values, "committing writes", idempotent=True
        )
        if "prune" in parts and row["pruned_upto"] is not None:
            self._results_floor = float(row["pruned_upto"])
        earliest = batch.earliest_armed()
        if earliest is not None:
            # Committed: a claim that began before this and ends after it must not move the
            # cursor past these rows (its snapshot may not hold them); the notification that
            # says the same may come later.
            self._cursor.lower(earliest)
        return list(row["completed"])

    def _forget(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._held.pop(job_id, None)

    # -- worker calls ---------------------------------------------------------------------

    async def claim(
        self, task_names: Collection[str], limit: int, *, horizon: float = 0.0
    ) -> list[JobRecord]:
        """Claim up to ``limit`` due jobs of ``task_names`` (earliest first), unclaimed or
        with an expired lease, in one statement; they are this worker's until completed,
        released or their lease expires. Paused and finished records are never claimed."""
        self._check(owner=True)
        if limit <= 0 or not task_names:
            return []
        self._tasks = list(task_names)
        now = self._clock()
        start, watch = self._cursor.begin(task_names, valid=self.listening)
        values = {
            "worker": self.worker_id,
            "until": now + self.lease,
            "due": now + horizon,
            "tasks": list(task_names),
            "now": now,
            "limit": limit,
            "from": start,
        }
        # Safe to retry even when a lost connection leaves the outcome unknown: rows claimed
        # by an attempt whose answer never came are not in self._held, so the heartbeat never
        # renews them and they become claimable again when their lease expires.
        try:
            rows = await self._run("fetch", sql.CLAIM, values, "claiming jobs", idempotent=True)
        except BaseException:
            self._cursor.abandon(watch)
            raise
        self._cursor.end(watch, rows[0]["low"] if rows else None, now)
        records = sorted(
            (JobRecord(*row[1:7]) for row in rows if row["job_id"] is not None),
            key=lambda r: r.exec_at,
        )
        _log_takeovers(rows, self.worker_id)
        if records:
            until = now + self.lease
            for record in records:
                self._held[record.job_id] = until
            self._claimed_ever = True
        return records

    async def next_claimable(self, task_names: Collection[str]) -> float | None:
        """The earliest moment something of ``task_names`` could be claimed: the earliest
        unclaimed ``exec_at``, or the earliest expiry of another worker's lease (this
        worker's own leases are renewed while it lives); None when there is nothing."""
        self._check()
        if not task_names:
            return None
        values = {
            "tasks": list(task_names),
            "worker": self.worker_id,
            "from": self._cursor.start_for(task_names, valid=self.listening),
        }
        value = await self._run(
            "fetchval", sql.NEXT_CLAIMABLE, values, "reading the next due job", idempotent=True
        )
        return None if value is None else float(value)

    async def complete(
        self, job_id: str, record: JobRecord | None, result: ResultRecord | None
    ) -> bool:
        """Finish this worker's claim of ``job_id`` (delete it, or replace it with
        ``record`` and release it) and keep ``result``, guarded by the lease; group
        committed with other writes. False (nothing changed) when the lease was lost or the
        job was deleted meanwhile. A pause set by someone else meanwhile is kept."""
        check_job_id(job_id)
        _check_key("job_id", job_id)
        if record is not None:
            _check_job(record)
            if record.job_id != job_id:
                raise ValueError(f"record {record.job_id!r} does not match job {job_id!r}")
        if result is not None and type(result) is not ResultRecord:
            raise TypeError(f"expected a ResultRecord or None, got {type(result).__name__}")
        if result is not None and result.error is not None:
            result = replace(result, error=_pg_text(result.error))
        self._check(owner=True)
        if result is not None and result.finished_at < self._results_floor:
            self._results_floor = -math.inf
        return await self._commit_().complete(job_id, record, result)

    async def release(self, job_ids: Collection[str] | None = None) -> None:
        """Give back claims of this worker (all when None) so others take them at once;
        completions already queued are committed first."""
        self._check(owner=True)
        await self._commit_().drain()
        await self._release(job_ids)

    async def _release(self, job_ids: Collection[str] | None) -> None:
        values: dict[str, Any] = {"worker": self.worker_id, "channel": self.channel}
        if job_ids is None:
            template = sql.RELEASE_ALL
        else:
            template = sql.RELEASE_SOME
            values["ids"] = list(job_ids)
        await self._run("fetchrow", template, values, "releasing claims", idempotent=True)
        if job_ids is None:
            self._held.clear()
        else:
            for job_id in job_ids:
                self._held.pop(job_id, None)

    # -- owner maintenance ----------------------------------------------------------------

    async def prune_history(self, *, before: float, keep: int) -> int:
        """Delete run records finished before ``before`` and all but the newest ``keep``;
        return how many were deleted."""
        check_prune(before, keep)
        self._check(owner=True)
        await self._commit_().drain()  # it applies to the runs queued before it
        self._reset_floors(self._clock())
        total = 0
        while True:
            # In steps of PRUNE_STEP rows, each its own short statement: no burst of deletes
            # holds locks or fills the WAL while the workers commit beside it.
            values = {
                "before": before,
                "keep": keep,
                "floor": self._runs_floor,
                "batch": PRUNE_STEP,
            }
            row = await self._run(
                "fetchrow", sql.PRUNE_HISTORY, values, "pruning history", idempotent=True
            )
            total += int(row["deleted"])
            if row["upto"] is not None:
                self._runs_floor = float(row["upto"])
            if int(row["deleted"]) < PRUNE_STEP:
                return total
            await asyncio.sleep(0)

    def _reset_floors(self, now: float) -> None:
        if now - self._floors_since >= FLOOR_RESET:
            self._floors_since = now
            self._results_floor = self._runs_floor = -math.inf

    async def save_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Replace the registered-task list with ``tasks``; return once committed."""
        tasks = check_tasks(tasks)
        for task in tasks:
            _check_key("task name", task.name)
        self._check(owner=True)
        values = {
            "names": [t.name for t in tasks],
            "options": [_pg_str(t.options) for t in tasks],
            "updated": [t.updated_at for t in tasks],
        }
        await self._run("execute", sql.SAVE_TASKS, values, "saving tasks", idempotent=True)


def _log_takeovers(rows: Sequence[Any], worker_id: str) -> None:
    """Name the jobs a claim took over from another worker whose lease had expired (it died
    or stalled), one line per previous holder."""
    taken: dict[str, list[str]] = {}
    for row in rows:
        previous = row["previous"]
        if previous is not None and previous != worker_id:
            taken.setdefault(previous, []).append(row["job_id"])
    for previous, job_ids in taken.items():
        logger.warning(
            "took over %d job(s) from worker %s, whose lease expired: %s",
            len(job_ids),
            previous,
            ", ".join(repr(job_id) for job_id in job_ids),
            extra={"job_ids": job_ids, "previous_worker": previous},
        )
