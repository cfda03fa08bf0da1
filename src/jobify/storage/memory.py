"""An in-process storage: the reference implementation of the contract and a test double.

:class:`MemoryStorage` keeps records in a dict. It has the semantics of the SQLite backend
(life cycle, validation, ordering, errors) without a disk: a write "commits" the moment it is
issued, so every write is applied in the order it was issued and ``flush()`` has nothing to
wait for. Awaited writes still yield to the event loop once, like a real backend does, so code
tested against it cannot come to rely on a write never suspending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from jobify.exceptions import StorageError
from jobify.storage.base import JobRecord, Storage

__all__ = ["MemoryStorage", "check_record"]


def check_record(record: JobRecord) -> None:
    """Raise :class:`TypeError` unless ``record`` is a :class:`JobRecord` with well-typed fields.

    Every backend checks a record when the write is issued, so a bad value fails the one
    caller that passed it instead of a whole group commit shared with other callers.
    """
    if type(record) is not JobRecord:
        raise TypeError(f"expected a JobRecord, got {type(record).__name__}")
    if (
        type(record.job_id) is not str
        or type(record.task_name) is not str
        or type(record.arguments) is not bytes
        or type(record.trigger) is not bytes
        or type(record.status) is not str
        or not isinstance(record.exec_at, int | float)
        or isinstance(record.exec_at, bool)
    ):
        raise TypeError(
            f"JobRecord {record.job_id!r} has a field of the wrong type: job_id, task_name and "
            "status must be str, exec_at a float, arguments and trigger bytes"
        )


def _stored(record: JobRecord) -> JobRecord:
    """The record as a database would give it back: checked, with a float ``exec_at``."""
    check_record(record)
    if type(record.exec_at) is not float:
        return replace(record, exec_at=float(record.exec_at))
    return record


class MemoryStorage(Storage):
    """Records in a dict, for ``storage=False`` and for tests.

    Nothing survives the process, but the records do survive ``shutdown()`` followed by
    ``startup()`` on the same instance, which lets tests simulate a restart.
    """

    shared = False

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}
        self._running = False
        self._started_once = False

    def _check_running(self) -> None:
        if not self._running:
            if self._started_once:
                raise StorageError("MemoryStorage is shut down")
            raise StorageError("MemoryStorage is not started: await storage.startup() first")

    async def startup(self) -> None:
        """Start accepting calls; records from before a ``shutdown()`` are still there."""
        self._running = True
        self._started_once = True

    async def shutdown(self) -> None:
        """Stop accepting calls (there is nothing to commit). Idempotent."""
        self._running = False

    async def load(self) -> list[JobRecord]:
        """Every record, in no particular order."""
        self._check_running()
        return list(self._records.values())

    async def get(self, job_id: str) -> JobRecord | None:
        """The record with this id, or None."""
        self._check_running()
        return self._records.get(job_id)

    async def save(self, record: JobRecord) -> None:
        """Insert or replace the record; it is visible before this returns."""
        self.save_soon(record)
        await asyncio.sleep(0)

    async def save_many(self, records: Sequence[JobRecord]) -> None:
        """Insert or replace several records, all or none (each is checked first)."""
        self._check_running()
        stored = [_stored(record) for record in records]
        for record in stored:
            self._records[record.job_id] = record
        await asyncio.sleep(0)

    async def delete(self, job_id: str) -> None:
        """Delete the record (no error when absent)."""
        self.delete_soon(job_id)
        await asyncio.sleep(0)

    def save_soon(self, record: JobRecord) -> None:
        """Insert or replace the record now (memory has no commit to wait for)."""
        self._check_running()
        self._records[record.job_id] = _stored(record)

    def delete_soon(self, job_id: str) -> None:
        """Delete the record now (no error when absent)."""
        self._check_running()
        self._records.pop(job_id, None)

    async def flush(self) -> None:
        """Return at once: every write is applied when it is issued."""
        self._check_running()
