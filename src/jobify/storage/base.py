"""The storage contract: the one seam between scheduling and persistence.

The scheduler core talks to persistence only through :class:`Storage`. It never sees SQL,
connections, files or transactions, and a backend never sees a task, a trigger or a
serializer: it stores :class:`JobRecord` values whose ``arguments`` and ``trigger`` are opaque
bytes produced by the core.

Ownership (see ``shared/design/scheduling-and-storage.md``): an embedded backend (SQLite,
memory) belongs to one running app, which owns every record in it. It loads them all at
startup and writes through: ``save`` on schedule and after each cron run, ``delete`` when a
one-shot job is done or cancelled. A shared backend (PostgreSQL, later) adds claiming; the
scheduler asks :attr:`Storage.shared` which kind it has.

Writes are group-committed: many concurrent ``save``/``delete`` calls share one transaction.
An awaited write returns only once its change is committed (durable against a crash of the
process; with ``synchronous="full"`` on SQLite, also against power loss). Writes issued by one
task are applied in the order they were issued; ``*_soon`` writes are queued into the next
group commit without waiting for it (for outcomes where at-least-once is the contract).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["JobRecord", "RecordStatus", "Storage"]


class RecordStatus:
    """Values of :attr:`JobRecord.status`."""

    SCHEDULED = "scheduled"
    """Armed: restored and run at ``exec_at``."""
    PERMANENTLY_FAILED = "permanently_failed"
    """A cron job that hit ``max_failures``: kept for inspection, never armed."""


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


class Storage(abc.ABC):
    """A place where durable jobs live between restarts.

    Life cycle: ``startup()`` once before any other call, then any number of reads and writes
    from the event loop of ``startup()``, then ``shutdown()``. Calls after ``shutdown()`` raise
    :class:`~jobify.exceptions.StorageError`. Every driver error is mapped to a
    :class:`~jobify.exceptions.StorageError` (or a subclass) whose message names the database.
    """

    shared: bool = False
    """True for a backend that many processes use at once (claims and leases); embedded
    backends (SQLite, memory) are owned whole by one app and say False."""

    @abc.abstractmethod
    async def startup(self) -> None:
        """Open the store, take ownership and create or migrate the schema.

        Raises :class:`~jobify.exceptions.StorageLockedError` when another running process
        owns it (the message names the file and the holder's pid),
        :class:`~jobify.exceptions.SchemaVersionError` when the schema is newer than this code,
        and :class:`~jobify.exceptions.StorageError` when the store is unreadable, read-only
        or corrupt.
        """

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Commit every queued write, close, and release ownership. Idempotent."""

    @abc.abstractmethod
    async def load(self) -> list[JobRecord]:
        """Every record in the store, in no particular order (used to restore at startup)."""

    @abc.abstractmethod
    async def get(self, job_id: str) -> JobRecord | None:
        """The committed record with this id, or None."""

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
    async def flush(self) -> None:
        """Return once every write queued so far is committed."""
