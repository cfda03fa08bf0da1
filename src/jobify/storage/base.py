"""The storage contract: the one seam between scheduling and persistence.

The scheduler core talks to persistence only through :class:`Storage`. It never sees SQL,
connections, files or transactions, and a backend never sees a task, a trigger or a
serializer: it stores :class:`JobRecord` values whose ``arguments`` and ``trigger`` are opaque
bytes produced by the core.

Ownership. An *embedded* backend (SQLite, memory) belongs to one running app, which owns every
record in it: it loads them all at startup and writes through (``save`` on schedule and after
each cron run, ``delete`` when a one-shot job is done or cancelled). A *shared* backend
(:class:`SharedStorage`, PostgreSQL) is used by many worker processes at once: a worker owns a
job only between :meth:`SharedStorage.claim` and its completion, guarded by a lease.

Writes are group-committed: many concurrent ``save``/``delete`` calls share one transaction.
An awaited write returns only once its change is committed (durable against a crash of the
process; with ``synchronous="full"`` on SQLite, also against power loss). Writes issued by one
task are applied in the order they were issued; ``*_soon`` writes are queued into the next
group commit without waiting for it (for outcomes where at-least-once is the contract).

Besides the owner, a store can be opened *for inspection* (:meth:`Storage.open_inspection`):
by the ``jobify`` command or the dashboard, possibly while an app runs on it. An inspector
reads (jobs, counts, run history, registered tasks). To change a job (cancel, pause, resume,
run now) it never edits records under a running owner of an embedded store: it sends a
command through the store's :class:`CommandChannel`, which the owning app applies. A shared
store is edited directly, and its workers are notified.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

__all__ = [
    "Command",
    "CommandAction",
    "CommandChannel",
    "HistoryQuery",
    "JobQuery",
    "JobRecord",
    "RecordStatus",
    "ResultRecord",
    "RunRecord",
    "SharedListener",
    "SharedStorage",
    "Storage",
    "TaskRecord",
]


class RecordStatus:
    """Values of :attr:`JobRecord.status`."""

    SCHEDULED = "scheduled"
    """Armed: restored and run at ``exec_at``."""
    PAUSED = "paused"
    """Kept with its counters, never armed until resumed."""
    PERMANENTLY_FAILED = "permanently_failed"
    """A cron job that hit ``max_failures``: kept for inspection, never armed."""
    FINISHED = "finished"
    """A cron job declared on a task (``@app.task(cron=...)``) that reached ``max_runs``:
    kept so that the unchanged declaration stays finished across restarts; never armed."""

    ALL = (SCHEDULED, PAUSED, PERMANENTLY_FAILED, FINISHED)


@dataclass(slots=True, frozen=True)
class JobRecord:
    """One durable job as the storage sees it.

    ``exec_at`` is the next fire time in UTC epoch seconds (indexable, zone-free).
    ``arguments`` are the task's arguments, encoded by the app's serializer.
    ``trigger`` is the core's own encoding of the trigger and its counters (a cron's run and
    failure counts, misfire policy, offset); storage keeps it byte for byte.
    """

    job_id: str
    task_name: str
    exec_at: float
    arguments: bytes
    trigger: bytes
    status: str = RecordStatus.SCHEDULED


@dataclass(slots=True)
class RunRecord:
    """One finished run of a job (one-shot job or one cron fire), for the run history.

    Times are UTC epoch seconds. ``outcome`` is a :class:`~jobify.JobStatus` value of the run
    (``"success"``, ``"failed"``, ``"timeout"``, ``"cancelled"``); ``attempts`` counts retries
    too (1 = no retry). For failures, ``error_type`` (qualified name), ``error_message`` and
    ``traceback`` (formatted text) describe the exception; they are untrusted text.
    ``worker`` names the process that ran it (``host:pid``).

    Unlike the other records it is not frozen: one is made for every finished run, and a
    frozen dataclass costs several times as much to build. Treat it as read-only; a storage
    stores its values, never the object it was given.
    """

    job_id: str
    task_name: str
    scheduled_at: float
    started_at: float
    finished_at: float
    outcome: str
    attempts: int = 1
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    worker: str | None = None


@dataclass(slots=True, frozen=True)
class TaskRecord:
    """A task the owning app had registered when it last started (for inspection).

    ``options`` is a small JSON document written by the core (run mode, retry, timeout,
    durability, cron declaration); storage keeps it as text.
    """

    name: str
    options: str
    updated_at: float


@dataclass(slots=True, frozen=True)
class JobQuery:
    """A filter over job records; results are ordered by ``(exec_at, job_id)``.

    Every field is optional; ``due_before``/``due_after`` bound ``exec_at`` (inclusive,
    epoch seconds). ``limit``/``offset`` page through the result.

    Checked when built: ``TypeError`` for a field of the wrong type, ``ValueError`` for a
    ``status`` outside :attr:`RecordStatus.ALL`, a NaN bound, or a negative ``limit`` or
    ``offset`` (so every backend refuses the same queries).
    """

    task_name: str | None = None
    status: str | None = None
    due_before: float | None = None
    due_after: float | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        _check_optional_text("task_name", self.task_name)
        _check_optional_text("status", self.status)
        if self.status is not None and self.status not in RecordStatus.ALL:
            raise ValueError(
                f"status must be one of {', '.join(RecordStatus.ALL)} (or None), "
                f"got {self.status!r}"
            )
        _check_optional_time("due_before", self.due_before)
        _check_optional_time("due_after", self.due_after)
        _check_page(self.limit, self.offset)


@dataclass(slots=True, frozen=True)
class HistoryQuery:
    """A filter over run records; results are ordered newest first: by ``finished_at``,
    then by the order the runs were recorded (the later first).

    Checked when built, like :class:`JobQuery` (``TypeError``/``ValueError``).
    """

    job_id: str | None = None
    task_name: str | None = None
    failed_only: bool = False
    """Only runs whose outcome is not ``"success"`` (and not ``"cancelled"``)."""
    since: float | None = None
    """Only runs finished at or after this epoch second."""
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        _check_optional_text("job_id", self.job_id)
        _check_optional_text("task_name", self.task_name)
        if type(self.failed_only) is not bool:
            raise TypeError(f"failed_only must be a bool, got {self.failed_only!r}")
        _check_optional_time("since", self.since)
        _check_page(self.limit, self.offset)


def _check_optional_text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")


def _check_optional_time(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be epoch seconds (a float) or None, got {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must be a number of epoch seconds, got NaN")


def _check_page(limit: object, offset: object) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


class CommandAction:
    """What an inspector asks the owning app to do with one job."""

    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    RUN = "run"
    """Run now: a one-shot job is moved to now; a cron job gets one extra run now that does
    not count against ``max_runs`` and does not move its next fire."""

    ALL = (CANCEL, PAUSE, RESUME, RUN)


@dataclass(slots=True, frozen=True)
class Command:
    """A command sent by an inspector, waiting for the owning app to apply it."""

    command_id: int
    job_id: str
    action: str
    created_at: float


@dataclass(slots=True, frozen=True)
class ResultRecord:
    """The outcome of a job run by some worker, kept for remote waiters (shared storage).

    ``value`` is the return value encoded by the core (opaque bytes), set for ``"success"``;
    ``error`` is a description of the failure otherwise.
    """

    job_id: str
    status: str
    value: bytes | None
    error: str | None
    finished_at: float


class Storage(abc.ABC):
    """A place where durable jobs live between restarts.

    Life cycle: ``startup()`` (as the owner) or ``open_inspection()`` (as an inspector) once
    before any other call, then any number of calls from the event loop that opened it, then
    ``shutdown()``. Calls after ``shutdown()`` raise
    :class:`~jobify.exceptions.StorageError`. Every driver error is mapped to a
    :class:`~jobify.exceptions.StorageError` (or a subclass) whose message names the database
    (never a password).

    Methods are grouped by who calls them: the owner (the running app's core), an inspector
    (the ``jobify`` command, the dashboard), or both (reads).
    """

    shared: bool = False
    """True for a backend that many processes use at once (a :class:`SharedStorage`);
    embedded backends (SQLite, memory) are owned whole by one app and say False."""

    # -- life cycle ---------------------------------------------------------------------

    @abc.abstractmethod
    async def startup(self) -> None:
        """Open the store as its owner, and create or migrate the schema.

        Raises :class:`~jobify.exceptions.StorageLockedError` when another running process
        owns an embedded store (the message names the file and the holder's pid),
        :class:`~jobify.exceptions.SchemaVersionError` when the schema is newer than this
        code, and :class:`~jobify.exceptions.StorageError` when the store is unreachable,
        unreadable, read-only or corrupt.
        """

    @abc.abstractmethod
    async def open_inspection(self) -> None:
        """Open the store without taking ownership, possibly while an app runs on it.

        Allowed afterwards: every read and, for a :class:`CommandChannel`, the inspector's
        calls (:meth:`~CommandChannel.owner_running`, :meth:`~CommandChannel.send_command`,
        :meth:`~CommandChannel.command_result`). Owner-only calls (every write, ``flush``,
        ``take_commands``, ``finish_command``, ``watch_commands``) raise
        :class:`~jobify.exceptions.StorageError`. Never creates or migrates a schema: a store
        without jobify's schema raises :class:`~jobify.exceptions.StorageError` ("not a
        jobify store"), a newer one :class:`~jobify.exceptions.SchemaVersionError`. An older
        schema is read as far as it goes (what it lacks reads as empty; commands to it raise
        :class:`~jobify.exceptions.StorageError`).
        """

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Commit every queued write, close, and release ownership. Idempotent."""

    # -- reads (owner and inspector) ------------------------------------------------------

    @abc.abstractmethod
    async def load(self) -> list[JobRecord]:
        """Every record, in no particular order (used by the owner to restore at startup)."""

    @abc.abstractmethod
    async def get(self, job_id: str) -> JobRecord | None:
        """The committed record with this id, or None."""

    @abc.abstractmethod
    async def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        """Records matching ``query``, ordered by ``(exec_at, job_id)``, one page of them.

        Must stay fast on 100,000 records (an index in that order that also serves the task
        and status filters, so that even a deep page is found walking the index alone)."""

    @abc.abstractmethod
    async def job_counts(self) -> dict[tuple[str, str], int]:
        """How many records there are per ``(task_name, status)``."""

    @abc.abstractmethod
    async def query_history(self, query: HistoryQuery) -> list[RunRecord]:
        """Run records matching ``query``, newest first, one page of them."""

    @abc.abstractmethod
    async def load_tasks(self) -> list[TaskRecord]:
        """The tasks the owning app registered when it last started (empty if never)."""

    # -- writes (owner) -------------------------------------------------------------------

    @abc.abstractmethod
    async def save(self, record: JobRecord) -> None:
        """Insert or replace the record with ``record.job_id``; return once committed."""

    @abc.abstractmethod
    async def save_many(self, records: Sequence[JobRecord]) -> None:
        """Insert or replace several records in one commit; return once committed."""

    @abc.abstractmethod
    async def delete(self, job_id: str) -> None:
        """Delete the record (no error when absent); return once committed."""

    @abc.abstractmethod
    def save_soon(self, record: JobRecord) -> None:
        """Queue an insert-or-replace into the next group commit without waiting for it."""

    @abc.abstractmethod
    def delete_soon(self, job_id: str) -> None:
        """Queue a delete into the next group commit without waiting for it."""

    @abc.abstractmethod
    def record_run_soon(self, run: RunRecord) -> None:
        """Queue a run record into the next group commit without waiting for it.

        Rides along with the job writes of the same batch (no transaction of its own).
        ``TypeError``/``ValueError`` for an ill-formed record (a non-finite ``finished_at``,
        ``attempts < 1``). Its text is untrusted: what the store cannot hold (a lone
        surrogate) is stored escaped (``\\udXXX``), never refused."""

    @abc.abstractmethod
    async def prune_history(self, *, before: float, keep: int) -> int:
        """Delete run records finished before ``before`` and all but the newest ``keep``;
        return how many were deleted.

        A run survives only if both rules keep it: finished at or after ``before``, and among
        the ``keep`` newest (in :class:`HistoryQuery` order). ``before=-math.inf`` prunes by
        count alone; ``keep=0`` with it empties the history. Applied in order with the
        writes queued before it (a run queued earlier is pruned like any other). Raises
        ``TypeError``/``ValueError`` for a NaN or non-number ``before`` or a negative
        ``keep``."""

    @abc.abstractmethod
    async def save_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Replace the registered-task list with ``tasks``; return once committed.

        ``ValueError`` when two tasks share a name; ``TypeError`` for an ill-typed one."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Return once every write queued so far is committed."""


class CommandChannel(abc.ABC):
    """How an inspector reaches the app that owns an embedded store (SQLite, memory).

    An embedded store must never be edited behind its running owner's back (the owner holds
    every job in memory). So while :meth:`owner_running` is True, an inspector asks the owner
    with :meth:`send_command`; the owner is woken (:meth:`watch_commands`), applies the
    command with :meth:`take_commands`/:meth:`finish_command`, and the inspector reads the
    answer with :meth:`command_result`. When no owner runs, the inspector opens the store as
    its owner (``startup()``) and edits it directly. A shared store does not implement this:
    there, edits are made directly and the workers are notified.
    """

    @abc.abstractmethod
    async def owner_running(self) -> bool:
        """Whether an owning app is running on this store right now (inspector side): its
        owner lock is held by a live process."""

    @abc.abstractmethod
    async def send_command(self, job_id: str, action: str) -> int:
        """Queue a :class:`CommandAction` for the owning app and wake it; return the
        command's id (ids only grow, never reused). Raises ``ValueError`` for an unknown
        action. Whether the job exists is for the owner to answer. Also allowed on the
        owner itself (its watcher is called). Sent while no owner runs, the command waits
        for the next owner's :meth:`watch_commands`."""

    @abc.abstractmethod
    async def command_result(self, command_id: int) -> str | None:
        """The owner's answer to a command (``"ok"`` or a one-line reason it was not
        applied), or None while it is still pending. Raises ``ValueError`` for an id no
        command has (answers may be discarded after some days)."""

    @abc.abstractmethod
    async def take_commands(self) -> list[Command]:
        """Owner side: the commands not yet answered, oldest first. Taking does not mark
        them: each stays pending (and is taken again) until :meth:`finish_command`."""

    @abc.abstractmethod
    async def finish_command(self, command_id: int, result: str) -> None:
        """Owner side: record the answer to a command; return once committed. Raises
        ``ValueError`` when no pending command has this id (unknown or already answered)
        or ``result`` is empty."""

    @abc.abstractmethod
    def watch_commands(self, callback: Callable[[], None] | None) -> None:
        """Owner side: call ``callback`` on the event loop when commands may be pending
        (None stops watching). Event-driven where the platform allows (SQLite on Linux:
        inotify on a sidecar file the inspector touches); otherwise a
        cheap check at most once a second. Also called once right away if commands are
        already pending when watching starts."""


class SharedListener(abc.ABC):
    """What a worker hears from a :class:`SharedStorage` (called on the event loop)."""

    @abc.abstractmethod
    def on_new_job(self, exec_at: float) -> None:
        """A job was inserted or rescheduled; it becomes claimable at ``exec_at``. The lease
        heartbeat also calls it with the earliest claimable time it read, so that a
        notification that never arrived delays a job by one heartbeat period at most."""

    @abc.abstractmethod
    def on_job_changed(self, job_id: str) -> None:
        """A job was cancelled, paused, resumed or replaced by someone else: a claimed but
        not yet started run of it must be re-checked before it starts."""

    @abc.abstractmethod
    def on_job_finished(self, job_id: str) -> None:
        """Some worker recorded a result for ``job_id`` (remote waiters may fetch it)."""

    @abc.abstractmethod
    def on_resync(self) -> None:
        """Notifications may have been missed (the listening connection dropped and came
        back): re-read whatever was derived from them (e.g. the earliest claimable time)."""


class SharedStorage(Storage):
    """A store shared by many worker processes (PostgreSQL): claims, leases, notifications.

    A worker owns a job only between :meth:`claim` and its completion. A claim holds a
    lease (``locked_by`` = :attr:`worker_id`, ``locked_until``); the backend renews every
    lease of this worker with one heartbeat per ``lease / 3`` seconds (not one per job). A
    worker that dies stops renewing; its jobs become claimable again when the lease expires
    (at-least-once for runs that had started). Every completion is guarded by the lease
    owner, so a worker whose lease was taken over cannot overwrite the new owner's state.

    In shared mode :meth:`Storage.load` is not used to restore (the store is not owned
    whole); ``save``/``delete`` are the producer's (and the inspector's) writes: insert or
    replace, cancel, pause (a record saved with status ``paused``), and they notify the
    workers inside the same transaction (:meth:`SharedListener.on_new_job`,
    :meth:`SharedListener.on_job_changed`). A completion never overwrites a ``paused``
    status set by someone else while the job ran (the new counters and ``exec_at`` apply,
    the job stays paused); a completion of a job deleted meanwhile changes nothing.
    """

    shared = True

    worker_id: str
    """This process's identity in leases (``host:pid:random``)."""

    @abc.abstractmethod
    def set_listener(self, listener: SharedListener | None) -> None:
        """Receive notifications (set before ``startup()``; None stops them)."""

    @abc.abstractmethod
    async def claim(
        self, task_names: Collection[str], limit: int, *, horizon: float = 0.0
    ) -> list[JobRecord]:
        """Claim up to ``limit`` jobs of ``task_names`` that are due by ``now + horizon``
        and unclaimed (or whose lease expired), in one statement (``FOR UPDATE SKIP
        LOCKED``); return them. Paused and finished records are never claimed."""

    @abc.abstractmethod
    def use_clock(self, clock: Callable[[], float]) -> None:
        """Read "now" (epoch seconds) from ``clock``, the app's clock, for due times and
        leases (set before ``startup()``)."""

    @abc.abstractmethod
    def has_claim(self, job_id: str) -> bool:
        """Whether this worker still holds its claim of ``job_id`` as far as it knows: claimed,
        and not completed, released, reported taken by the heartbeat, or let go by
        :meth:`confirm`. A completion is only sent for a claim it still has."""

    @abc.abstractmethod
    def holds(self, job_id: str) -> bool:
        """Whether this worker may start a run of a claimed job now without asking the
        store: its lease, as last renewed, still runs for a good part of its length."""

    @abc.abstractmethod
    async def confirm(self, job_id: str) -> bool:
        """Ask the store whether the claim of ``job_id`` is still this worker's, renewing
        it if so (called when :meth:`holds` is False: a run that starts late). False means
        the claim is gone (or could not be confirmed) and the run must not start."""

    @abc.abstractmethod
    async def next_claimable(self, task_names: Collection[str]) -> float | None:
        """The earliest moment something of ``task_names`` could be claimed: the earliest
        ``exec_at`` of an unclaimed scheduled job or the earliest lease expiry; None when
        there is nothing."""

    @abc.abstractmethod
    async def complete(
        self, job_id: str, record: JobRecord | None, result: ResultRecord | None
    ) -> bool:
        """Finish this worker's claim of ``job_id``, guarded by the lease: ``record`` None
        deletes the job (a one-shot job done), otherwise the record replaces it and the
        claim is released (a cron job advanced with its counters, or marked
        ``permanently_failed``/``finished``). ``result`` is kept for remote waiters. Group
        committed; returns False (and changes nothing) when this worker no longer holds
        the lease."""

    @abc.abstractmethod
    async def release(self, job_ids: Collection[str] | None = None) -> None:
        """Give back claims of this worker (all when None) so others take them at once."""

    @abc.abstractmethod
    async def get_result(self, job_id: str) -> ResultRecord | None:
        """The kept result of a job run by any worker, or None."""
