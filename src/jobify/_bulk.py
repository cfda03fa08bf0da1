"""``task.push_many(items)``: many jobs of one task, validated together, written together.

Every item is bound to the task's signature and passed through the task's outer middleware
(per job, as with ``push``), then every job is encoded, and only then is anything written:
one bad item is a ``TypeError`` (a ``SerializationError`` when its arguments do not encode)
naming its index, and nothing is stored. The jobs are written with one ``save_many`` (one
group commit on SQLite; one multi-row statement with one notification on PostgreSQL), then
owned and armed like any pushed job (on a shared store, handles that follow them anywhere;
the rows go in with one ``COPY`` and one notification, as their ids are new).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

from jobify._builder import Bound
from jobify._entry import JobEntry, Recorder, Task
from jobify._jobs import Job, JobStatus, park
from jobify._records import StoreRecorder
from jobify._runmodes import RunMode, check_process_args
from jobify._scheduler import Scheduler
from jobify._shared import SharedWorker
from jobify._triggers import check_instant
from jobify.exceptions import SerializationError

__all__ = ["BulkSubmitter", "push_many"]

T = TypeVar("T")
Request = Any
"""A submitter's request (opaque here: made and read by the submitter only)."""


class BulkSubmitter(Protocol):
    """What push_many needs from the app's submitter."""

    scheduler: Scheduler
    shared: SharedWorker | None
    clock: Callable[[], float]

    def check_open(self) -> None: ...
    def one_shot(self, task: Task, arguments: Bound, exec_ts: float) -> Request: ...
    def through_outer(
        self,
        request: Request,
        outer: Sequence[Any],
        commit: Callable[[Request, Job[Any] | None], Awaitable[Job[Any]]],
    ) -> Awaitable[Job[Any]]: ...
    def entry_for(
        self, request: Request, job: Job[Any], recorder: Recorder | None = None
    ) -> JobEntry: ...
    def own(self, entry: JobEntry) -> None: ...


def _bind(task: Task, index: int, item: Any) -> Bound:
    """One item's arguments bound to the task, or a TypeError naming the item."""
    if isinstance(item, tuple):
        args, kwargs = item, {}
    elif isinstance(item, Mapping):
        args, kwargs = (), dict(item)
    else:
        raise TypeError(
            f"push_many of task {task.name!r}: item {index} is a {type(item).__name__}; each "
            "item is a tuple of positional arguments or a mapping of keyword arguments"
        )
    try:
        return task.spec.bind(args, kwargs)
    except TypeError as exc:
        raise TypeError(f"push_many of task {task.name!r}: item {index}: {exc}") from None


def _check_process(task: Task, arguments: Bound) -> None:
    task.spec.process_ref()
    check_process_args(task.name, (), task.spec.as_dict(arguments))


def _naming(task: Task, index: int, exc: TypeError) -> TypeError:
    """The error of one item (a TypeError, or a SerializationError), naming the item."""
    kind = SerializationError if isinstance(exc, SerializationError) else TypeError
    return kind(f"push_many of task {task.name!r}: item {index}: {exc}")


def _item(task: Task, index: int, make: Callable[[], T]) -> T:
    """``make()`` for one item; its TypeError (or SerializationError) names the item."""
    try:
        return make()
    except TypeError as exc:
        raise _naming(task, index, exc) from exc


async def push_many(submitter: BulkSubmitter, task: Task, items: Iterable[Any]) -> list[Job[Any]]:
    """Push one job per item; the handles in the order of the items (see the module)."""
    submitter.check_open()
    bound = [_bind(task, index, item) for index, item in enumerate(items)]
    now = check_instant(submitter.clock())
    requests = [submitter.one_shot(task, arguments, now) for arguments in bound]
    jobs: list[Job[Any]] = []
    accepted: list[tuple[int, Request, Job[Any]]] = []
    if task.outer is None:
        for index, request in enumerate(requests):
            job: Job[Any] = Job(request.job_id)
            jobs.append(job)
            accepted.append((index, request, job))
    else:
        # Outer middleware runs per job, as with push; a job it refuses is CANCELLED and
        # not stored. What it lets through is gathered here and written below, together.
        for index, request in enumerate(requests):

            async def gather(final: Request, job: Job[Any] | None, index: int = index) -> Job[Any]:
                assert job is not None  # a fresh id is never a replacement: no held handle
                accepted.append((index, final, job))
                return job

            jobs.append(await submitter.through_outer(request, task.outer, gather))
    if not accepted:
        return jobs
    shared = submitter.shared
    if shared is not None and task.durable:
        # No entry per job here: a shared store's job is owned by whichever worker claims
        # it; only its record and a handle are made.
        if task.spec.options.run_mode is RunMode.PROCESS:
            for i, request, _ in accepted:
                _item(task, i, partial(_check_process, task, request.arguments))
        made = shared.records.one_shot_records(
            task, [(request.job_id, request.arguments) for _, request, _ in accepted], now
        )
        records = []
        for i, _, _ in accepted:
            records.append(_item(task, i, partial(next, made)))
        submitter.check_open()
        # Handles listen before the write: a fast worker may finish a job before the
        # write's own acknowledgement arrives.
        for record, (_, _, job) in zip(records, accepted, strict=True):
            shared.handle_for(record, task, job)
        try:
            await shared.storage.insert_many(records)
        except BaseException:
            for record in records:
                shared.forget(record.job_id)
            raise
        return jobs
    entries = []
    index = 0
    try:
        for item in accepted:
            index = item[0]  # named in the error if this item fails
            entries.append(submitter.entry_for(item[1], item[2]))
        recorder = entries[0].recorder
        if isinstance(recorder, StoreRecorder):
            records = []
            made = recorder.one_shot_records(
                task, [(request.job_id, request.arguments) for _, request, _ in accepted], now
            )
            for item in accepted:
                index = item[0]
                records.append(next(made))
    except TypeError as exc:  # SerializationError included
        raise _naming(task, index, exc) from exc
    if isinstance(recorder, StoreRecorder):
        submitter.check_open()
        await recorder.storage.save_many(records)
    if submitter.scheduler.stopped:
        # The app stopped while the batch was being committed: it is stored and runs after
        # the next start (as with push).
        for entry in entries:
            entry.owned = False
            entry.parked = True
            park(entry.job, JobStatus.SCHEDULED)
        return jobs
    for entry in entries:
        submitter.own(entry)
    return jobs
