"""Between owned jobs and a ``Storage``: entries ⇄ records, restore decoding, orphans.

:class:`StoreRecorder` encodes a :class:`~jobify._entry.JobEntry` into a
:class:`~jobify.storage.base.JobRecord` (arguments with the app's serializer through
``ArgumentCodec``, the trigger and its counters as the core's trigger document) and writes it
through. :data:`NULL_RECORDER` stands in for it for jobs that are not durable, so the
scheduler never asks "is this durable?".

Restoring: :meth:`StoreRecorder.decode` turns a record back into what an entry is made of, or
raises :class:`Unrestorable` saying why (task not registered, arguments that do not decode or
no longer fit the task's signature, an unknown trigger). Such a record is left untouched, and
the app shows it as an orphaned job (:class:`OrphanSource`) that ``cancel()`` removes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any

from jobify._arguments import ArgumentCodec, argument_hints
from jobify._builder import Bound
from jobify._entry import JobEntry, Outcome, OwnsWhole, Recorder, Task
from jobify._jobs import Job, JobStatus, attach, finish
from jobify._triggerdoc import AT_TRIGGER, decode_trigger, encode_trigger, retried
from jobify._triggers import Cron, CronParser
from jobify.exceptions import ApplicationStateError, BaseJobifyError
from jobify.storage.base import JobRecord, RecordStatus, Storage

__all__ = [
    "FAILED_OUTCOMES",
    "NULL_RECORDER",
    "OrphanSource",
    "Restored",
    "StoreRecorder",
    "Unrestorable",
    "former_names",
    "retry_record",
]

log = logging.getLogger("jobify.persistence")


class _NullRecorder(OwnsWhole):
    """The recorder of a job that is not durable: nothing to write."""

    durable = False
    owns_between_runs = True

    async def save(self, entry: JobEntry) -> None:
        return None

    async def progress(self, entry: JobEntry) -> None:
        return None

    async def delete(self, entry: JobEntry) -> None:
        return None

    def done(self, entry: JobEntry, outcome: Outcome) -> Outcome:
        return outcome

    async def advance(self, entry: JobEntry, outcome: Outcome | None) -> bool:
        return True

    async def finish(self, entry: JobEntry, status: str, outcome: Outcome | None) -> None:
        return None


NULL_RECORDER = _NullRecorder()


class Unrestorable(Exception):
    """A stored record this app cannot turn back into a job (the message says why)."""


@dataclass(frozen=True, slots=True)
class Restored:
    """A decoded record, ready to become an entry."""

    record: JobRecord
    task: Task
    arguments: Bound
    cron: Cron | None
    tz: tzinfo | None
    runs: int
    failures: int
    declared: bool

    def entry(
        self, recorder: Recorder, parser_for: Callable[[str], CronParser], tz: tzinfo
    ) -> JobEntry:
        """The entry this record becomes, written through ``recorder``; ``tz`` is the app's
        zone, used where neither the record nor its cron names one."""
        cron = self.cron
        entry = JobEntry(
            self.task,
            Job(self.record.job_id),
            self.arguments,
            self.record.exec_at,
            self.tz or (cron.zone if cron is not None else None) or tz,
            recorder,
            cron,
            parser_for(cron.expression) if cron is not None else None,
            self.runs,
            self.failures,
        )
        if self.declared:
            entry.declared = True
        return entry

    def declares(self, task: Task, cron: Cron, tz: tzinfo, arguments: Bound) -> bool:
        """Whether this record is the cron ``task`` declares, unchanged: same schedule, zone
        and arguments."""
        return (
            self.cron is not None
            and same_cron(self.cron, cron)
            and (self.tz or tz) == tz
            and same_arguments(task, self.arguments, arguments)
        )


def former_names(tasks: Mapping[str, Task]) -> dict[str, Task]:
    """Old default task names (the bare function name) → the task each one now names.

    Task names used to default to the function's name; they are ``module:qualname`` now.
    A record stored under an old default name still belongs to its task when exactly one
    task had that name and no task is called so today.
    """
    found: dict[str, list[Task]] = {}
    for task in tasks.values():
        for old in task.spec.former_names:
            found.setdefault(old, []).append(task)
    return {old: ts[0] for old, ts in found.items() if len(ts) == 1 and old not in tasks}


def same_cron(a: Cron, b: Cron) -> bool:
    """Two Crons declare the same schedule (their ``args``/``kwargs`` compared apart)."""
    return bool(
        a.expression == b.expression
        and a.max_runs == b.max_runs
        and a.max_failures == b.max_failures
        and a.misfire_policy == b.misfire_policy
        and a.start_date == b.start_date
        and a.zone == b.zone
    )


def same_arguments(task: Task, a: Bound, b: Bound) -> bool:
    """Two bound argument sets of ``task`` are equal (False where comparing fails)."""
    try:
        return bool(task.spec.as_dict(a) == task.spec.as_dict(b))
    except Exception:
        return False


FAILED_OUTCOMES = (JobStatus.FAILED, JobStatus.TIMEOUT)
"""Outcomes of a one-shot run whose record is kept with status ``failed``."""


def retry_record(record: JobRecord, now: float) -> JobRecord:
    """The record of a failed job retried by hand: armed for ``now`` with its arguments (a
    cron keeps its run counter; its consecutive failures start again from 0)."""
    return replace(
        record, exec_at=now, status=RecordStatus.SCHEDULED, trigger=retried(record.trigger)
    )


class StoreRecorder(OwnsWhole):
    """Write-through of durable jobs to an embedded ``Storage``, and decoding for restore."""

    durable = True
    owns_between_runs = True

    def __init__(self, storage: Storage, codec: ArgumentCodec) -> None:
        self.storage = storage
        self.codec = codec
        self._hints: dict[str, dict[str, Any]] = {}
        self.former: Mapping[str, Task] = {}
        """Old default task name → the one task it names now (see :func:`former_names`)."""

    def _hints_for(self, task: Task) -> dict[str, Any]:
        hints = self._hints.get(task.name)
        if hints is None:
            hints = self._hints[task.name] = argument_hints(task.spec.func)
        return hints

    def record(self, entry: JobEntry, status: str | None = None) -> JobRecord:
        """The entry as a record; raises ``SerializationError`` naming a bad argument."""
        task = entry.task
        data = self.codec.encode(
            task.name, task.spec.as_dict(entry.arguments), self._hints_for(task)
        )
        cron = entry.cron
        return JobRecord(  # by position: this runs for every durable write
            entry.job.id,
            task.name,
            entry.exec_ts,
            data,
            encode_trigger(
                cron,
                entry.tz if cron is not None else None,
                entry.runs,
                entry.failures,
                declared=entry.declared,
            ),
            status if status is not None else entry.record_status,
        )

    def one_shot_records(
        self, task: Task, jobs: Iterable[tuple[str, Bound]], exec_ts: float
    ) -> Iterator[JobRecord]:
        """Records of new one-shot jobs ``(job_id, arguments)`` due at ``exec_ts``, one by
        one, made without an entry each (``push_many``); ``SerializationError`` for a job
        whose arguments do not encode."""
        name = task.name
        as_dict = task.spec.as_dict
        hints = self._hints_for(task)
        encode = self.codec.encode
        scheduled = RecordStatus.SCHEDULED
        for job_id, arguments in jobs:
            data = encode(name, as_dict(arguments), hints)
            yield JobRecord(job_id, name, exec_ts, data, AT_TRIGGER, scheduled)

    async def save(self, entry: JobEntry) -> None:
        await self.storage.save(self.record(entry))

    async def save_record(self, record: JobRecord) -> None:
        await self.storage.save(record)

    async def progress(self, entry: JobEntry) -> None:
        await self.storage.save(self.record(entry))

    async def delete(self, entry: JobEntry) -> None:
        await self.storage.delete(entry.job.id)

    def done(self, entry: JobEntry, outcome: Outcome) -> Outcome:
        if outcome[0] in FAILED_OUTCOMES:
            # Kept (never armed) so that it can be retried by hand with its arguments.
            self.storage.save_soon(self.record(entry, RecordStatus.FAILED))
        else:
            self.storage.delete_soon(entry.job.id)
        return outcome

    async def advance(self, entry: JobEntry, outcome: Outcome | None) -> bool:
        await self.storage.save(self.record(entry))
        return True

    async def finish(self, entry: JobEntry, status: str, outcome: Outcome | None) -> None:
        """A cron job ended: a permanently failed one is kept for inspection; an exhausted
        one is deleted, unless it was declared on its task (kept as ``finished``, so that the
        unchanged declaration stays finished across restarts)."""
        if status == RecordStatus.FINISHED and not entry.declared:
            await self.storage.delete(entry.job.id)
        else:
            await self.storage.save(self.record(entry, status))

    # -- restore -------------------------------------------------------------------------

    def decode(self, record: JobRecord, tasks: Mapping[str, Task]) -> Restored:
        """Decode one record, or raise :class:`Unrestorable` saying why."""
        task = tasks.get(record.task_name)
        if task is None:
            task = self.former.get(record.task_name)
            if task is None:
                raise Unrestorable(f"task {record.task_name!r} is not registered in this app")
            log.info(
                "job %r was stored under task name %r, the old default name of task %r; "
                "it is restored as a job of that task",
                record.job_id,
                record.task_name,
                task.name,
                extra={"job_id": record.job_id, "task_name": task.name},
            )
        # Stored data is untrusted: whatever decoding raises (SystemExit included, which no
        # record may use to end the process) makes this one record unrestorable.
        try:
            stored = self.codec.decode(task.name, record.arguments, self._hints_for(task))
            doc = decode_trigger(record.trigger)
        except (Exception, SystemExit) as exc:
            raise Unrestorable(_reason(exc)) from exc
        try:
            arguments = task.spec.bind((), stored)
        except (Exception, SystemExit) as exc:
            raise Unrestorable(
                f"its stored arguments no longer fit the task's signature ({_reason(exc)})"
            ) from exc
        return Restored(
            record,
            task,
            arguments,
            doc.cron,
            doc.tz,
            doc.runs,
            doc.failures,
            doc.declared,
        )


def _reason(exc: BaseException) -> str:
    """The text of a decode failure: our own errors say what went wrong, others are named."""
    if isinstance(exc, BaseJobifyError | ValueError | KeyError | TypeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class OrphanSource:
    """The handle side of a stored job this app cannot run: only ``cancel()`` acts on it
    (it removes the record)."""

    def __init__(
        self,
        storage: Storage,
        record: JobRecord,
        tz: tzinfo,
        reason: str,
        forget: Callable[[str], None],
    ) -> None:
        self.storage = storage
        self.record = record
        self.reason = reason
        self._tz = tz
        self._forget = forget
        self.job: Job[Any] = Job(record.job_id)
        self.job.status = JobStatus.ORPHANED
        attach(self.job, self)

    @property
    def exec_ts(self) -> float:
        return self.record.exec_at

    @property
    def tz(self) -> tzinfo:
        return self._tz

    @property
    def cron_expression(self) -> str | None:
        try:
            cron = decode_trigger(self.record.trigger).cron
        except (BaseJobifyError, ValueError, KeyError, TypeError):
            return None
        return cron.expression if cron is not None else None

    async def cancel(self) -> None:
        await self.storage.delete(self.record.job_id)
        self._forget(self.record.job_id)
        finish(self.job, JobStatus.CANCELLED)
        log.info("orphaned job %r removed from storage", self.record.job_id)

    def _refuse(self, what: str) -> ApplicationStateError:
        return ApplicationStateError(
            f"job {self.record.job_id!r} is orphaned ({self.reason}): it cannot be {what}; "
            "register its task again, or cancel it to remove its record"
        )

    async def pause(self) -> None:
        raise self._refuse("paused")

    async def resume(self) -> None:
        raise self._refuse("resumed")
