"""The shared storage: one PostgreSQL schema used by many worker processes at once.

How a worker uses it (the semantics are those of :class:`~jobify.storage.base.SharedStorage`):

- :meth:`PostgresStorage.claim` takes due jobs in one statement (``UPDATE … WHERE job_id IN
  (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING …``): two workers never get the same
  row, and neither waits for the other. A claim sets ``locked_by`` (:attr:`worker_id`) and
  ``locked_until`` (now + ``lease``).
- One background heartbeat per storage renews every lease it holds, every ``lease / 3``
  seconds, in one statement; it runs only while the worker holds claims.
- :meth:`PostgresStorage.complete` is group-committed: the completions of many jobs, the
  saves and deletes issued meanwhile, results and run records all go out as ONE statement
  per batch, guarded by ``locked_by``.
- Inserts and changes are announced with ``NOTIFY`` in the same transaction (see
  :mod:`jobify.storage.postgres_listen` for the payloads); the storage LISTENs on a dedicated
  connection, which needs a session-mode connection (not PgBouncer in transaction mode).

Between events the storage sends nothing but that heartbeat: no polling.

Times (``exec_at``, leases) are compared with the local clock of the process that runs the
statement (``time.time()``), so hosts must keep their clocks in sync (NTP). A live worker's
lease always runs at least ``2/3 * lease`` ahead of its clock, so a skew smaller than that
never lets another worker take a live claim.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Collection, Sequence
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
    map_error,
    migrate,
    quote_schema,
    retrying,
    validate_schema,
)
from jobify.storage.postgres_listen import Notifications
from jobify.storage.postgres_reads import PostgresReads
from jobify.storage.sql import postgres as sql

__all__ = ["PostgresStorage"]

logger = logging.getLogger("jobify.storage")

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


class PostgresStorage(PostgresReads, SharedStorage):
    """Jobs in a PostgreSQL schema shared by many workers, on ``asyncpg`` (extra ``postgres``).

    ``dsn`` is a ``postgresql://user:password@host:port/database`` URI. Every table lives in
    ``schema`` (created and migrated by :meth:`startup`, under an advisory lock so that
    workers starting together are safe); nothing is created outside it. ``lease`` is how long
    a claim stays valid without a heartbeat (a dead worker's jobs are taken over after it).
    ``results_ttl`` is how long results are kept for remote waiters. ``pool_size`` bounds
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
        results_ttl: float = 3600.0,
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
        self._state: _State = "new"
        self._pool: Any = None
        self._listener: SharedListener | None = None
        self._notifications: Notifications | None = None
        self._commit: GroupCommit | None = None
        self._held: set[str] = set()
        self._claimed_ever = False
        self._has_claims = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._last_prune = 0.0

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
                server_settings={"application_name": self.application_name},
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
        self._claimed_ever = False
        self._closed = None
        self._state = "running" if create else "inspecting"
        if create:
            self._heartbeat = loop.create_task(self._heartbeat_loop())

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
        self._notifications = Notifications(
            self._connect, self.channel, self._target, lambda: self._listener
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
    ) -> Any:
        """Run a statement through the pool (``fetch``/``fetchrow``/``fetchval``/
        ``execute``), retrying for up to ``patience`` (default ``retry_timeout``) seconds
        while the server is away."""
        text, names = self._sql(template)
        args = [values[name] for name in names]
        pool = self._pool

        async def call() -> Any:
            if pool is None:
                raise StorageError(f"{self!r} is shut down")
            return await getattr(pool, method)(text, *args)

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
        now = time.time()
        if "results" in parts and now - self._last_prune >= min(60.0, self.results_ttl / 4):
            # Expired results are pruned in passing, by a batch that writes results anyway:
            # an idle store is never touched for it (get_result ignores expired ones).
            self._last_prune = now
            parts |= {"prune"}
        values.update(
            worker=self.worker_id, channel=self.channel, res_oldest=now - self.results_ttl
        )
        row = await self._run(
            "fetchrow", sql.batch_statement(parts), values, "committing writes", idempotent=False
        )
        return list(row["completed"])

    def _forget(self, job_ids: Sequence[str]) -> None:
        self._held.difference_update(job_ids)

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
        now = time.time()
        values = {
            "worker": self.worker_id,
            "until": now + self.lease,
            "due": now + horizon,
            "tasks": list(task_names),
            "now": now,
            "limit": limit,
        }
        # Safe to retry even when a lost connection leaves the outcome unknown: rows claimed
        # by an attempt whose answer never came are not in self._held, so the heartbeat never
        # renews them and they become claimable again when their lease expires.
        rows = await self._run("fetch", sql.CLAIM, values, "claiming jobs", idempotent=True)
        records = sorted((JobRecord(*row[:6]) for row in rows), key=lambda r: r.exec_at)
        _log_takeovers(rows, self.worker_id)
        if records:
            self._held.update(record.job_id for record in records)
            self._claimed_ever = True
            self._has_claims.set()
        return records

    async def next_claimable(self, task_names: Collection[str]) -> float | None:
        """The earliest moment something of ``task_names`` could be claimed: the earliest
        unclaimed ``exec_at``, or the earliest expiry of another worker's lease (this
        worker's own leases are renewed while it lives); None when there is nothing."""
        self._check()
        if not task_names:
            return None
        values = {"tasks": list(task_names), "worker": self.worker_id}
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
            self._held.difference_update(job_ids)

    async def _heartbeat_loop(self) -> None:
        period = self.lease / 3
        while True:
            await self._has_claims.wait()
            await asyncio.sleep(period)
            ids = list(self._held)
            if not ids:
                self._has_claims.clear()
                continue
            values = {"worker": self.worker_id, "until": time.time() + self.lease, "ids": ids}
            try:
                await self._run(
                    "execute",
                    sql.HEARTBEAT,
                    values,
                    "renewing leases",
                    idempotent=True,
                    patience=period,
                )
            except StorageError as exc:
                logger.warning("lease heartbeat failed (leases expire in %.1f s): %s", period, exc)

    # -- owner maintenance ----------------------------------------------------------------

    async def prune_history(self, *, before: float, keep: int) -> int:
        """Delete run records finished before ``before`` and all but the newest ``keep``;
        return how many were deleted."""
        check_prune(before, keep)
        self._check(owner=True)
        await self._commit_().drain()  # it applies to the runs queued before it
        count = await self._run(
            "fetchval",
            sql.PRUNE_HISTORY,
            {"before": before, "keep": keep},
            "pruning history",
            idempotent=True,
        )
        return int(count)

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
