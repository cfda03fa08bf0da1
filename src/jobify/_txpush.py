"""Transactional enqueue: a job written inside the caller's own database transaction.

``await task.schedule(...).push(connection=conn)`` (and ``.at``/``.delay`` with
``connection=``) writes the job's row and its notification on ``conn``, an asyncpg connection
to a shared store's database, inside whatever transaction ``conn`` has open. Committed, the
job exists and runs (workers hear the notification at the commit); rolled back, it never
existed. The handle is returned right away, before the caller's transaction ends; it learns
the outcome of that transaction from the store (see
:meth:`~jobify._shared.SharedWorker.await_commit`): rolled back, it ends CANCELLED.

Outer middleware applies as with ``push``. The job id is checked by the insert itself: an id
in use is a ``DuplicateJobError`` and leaves the caller's transaction usable. ``replace`` is
refused: replacing a job owned by a running worker is not a thing one transaction of the
caller can do atomically with its own writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from jobify._jobs import Job
from jobify._runmodes import RunMode, check_process_args
from jobify._shared import SharedWorker
from jobify.exceptions import DuplicateJobError

__all__ = ["TxSubmitter", "push_on"]

Request = Any
"""A submitter's request (opaque here)."""


class TxSubmitter(Protocol):
    """What a transactional push needs from the app's submitter."""

    shared: SharedWorker | None

    def check_open(self) -> None: ...
    def through_outer(
        self,
        request: Request,
        outer: Sequence[Any],
        commit: Callable[[Request, Job[Any] | None], Awaitable[Job[Any]]],
    ) -> Awaitable[Job[Any]]: ...


async def push_on(submitter: TxSubmitter, request: Request, connection: Any) -> Job[Any]:
    """Write ``request``'s one-shot job on ``connection``; its handle (see the module)."""
    submitter.check_open()
    task = request.task
    shared = submitter.shared
    if shared is None:
        raise TypeError(
            "connection= (transactional enqueue) needs a PostgreSQL store: "
            "Jobify(storage=PostgresStorage(...)); this app's storage keeps jobs in its own "
            "commits, which no transaction of yours can include"
        )
    if not task.durable:
        raise TypeError(
            f"task {task.name!r} is not durable (durable=False): its jobs are not written to "
            "the store, so they cannot be part of your transaction"
        )
    if request.replace or request.force:
        raise ValueError(
            "replace=True and force=True cannot be combined with connection=; schedule the "
            "job with a new id instead"
        )
    worker = shared

    async def commit(final: Request, job: Job[Any] | None) -> Job[Any]:
        submitter.check_open()
        if task.spec.options.run_mode is RunMode.PROCESS:
            task.spec.process_ref()
            check_process_args(task.name, (), task.spec.as_dict(final.arguments))
        (record,) = worker.records.one_shot_records(
            task, [(final.job_id, final.arguments)], final.exec_ts
        )
        handle = worker.handle_for(record, task, job)
        try:
            transaction = await worker.storage.insert_on(connection, record)
        except BaseException:
            worker.forget(record.job_id)
            raise
        if transaction is None:
            worker.forget(record.job_id)
            raise DuplicateJobError(record.job_id)
        worker.await_commit(record.job_id, transaction)
        return handle

    if task.outer is None:
        return await commit(request, Job(request.job_id))
    return await submitter.through_outer(request, task.outer, commit)
