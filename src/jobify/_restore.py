"""Bringing what is stored in line with what the app declares, at startup.

For an embedded store every record is restored: a restorable one becomes an owned entry (not
yet armed: the scheduler arms what it owns when it starts), one that cannot run here is
shown as an orphaned job (its record left untouched, removable with ``cancel()``). Then the
crons declared on tasks (``@app.task(cron=...)``) are brought in line: an unchanged declaration
keeps its stored state (counters, next fire, or its end), a changed one starts afresh, and a
stored declaration whose task no longer declares a cron is removed. With a shared store only
the declarations are reconciled (every worker does it; it is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import tzinfo

from jobify._builder import Bound
from jobify._entry import JobEntry, Task
from jobify._jobs import Job, JobStatus
from jobify._records import (
    OrphanSource,
    Restored,
    StoreRecorder,
    Unrestorable,
    retry_record,
    same_arguments,
    same_cron,
)
from jobify._scheduler import Scheduler
from jobify._shared import SharedWorker
from jobify._submit import Request, Submitter
from jobify._triggers import Cron, CronParser
from jobify.exceptions import CronExhaustedError
from jobify.storage.base import JobRecord, RecordStatus, Storage

__all__ = ["Restorer"]

log = logging.getLogger("jobify")


class Restorer:
    """Restores stored jobs and reconciles declared crons, once, at startup."""

    def __init__(
        self,
        scheduler: Scheduler,
        submitter: Submitter,
        parser_for: Callable[[str], CronParser],
        tz: tzinfo,
        orphans: dict[str, OrphanSource],
    ) -> None:
        self._scheduler = scheduler
        self._submitter = submitter
        self._parser_for = parser_for
        self._tz = tz
        self._orphans = orphans

    def _forget(self, job_id: str) -> None:
        self._orphans.pop(job_id, None)

    async def restore(
        self, storage: Storage, recorder: StoreRecorder, tasks: Mapping[str, Task]
    ) -> None:
        """Own every restorable stored job; show the others as orphans; declare crons.
        Nothing is armed yet: the scheduler arms what it owns when it starts."""
        scheduler = self._scheduler
        assert scheduler is not None
        crons: dict[str, JobEntry] = {}  # only cron jobs can be declarations
        ended: dict[str, Restored] = {}
        restored = 0
        for record in await storage.load():
            if record.status not in RecordStatus.ALL:
                self._orphan(storage, record, f"unknown record status {record.status!r}")
                continue
            try:
                found = recorder.decode(record, tasks)
            except Unrestorable as exc:
                self._orphan(storage, record, str(exc))
                continue
            if record.status in RecordStatus.ENDED:
                ended[record.job_id] = found
                continue
            try:
                entry = self._restored_entry(found, recorder)
            except Exception as exc:  # e.g. a stored cron expression that does not parse
                self._orphan(storage, record, f"{type(exc).__name__}: {exc}")
                continue
            restored += 1
            if entry.cron is not None:
                crons[record.job_id] = entry
            scheduler.add(entry)
        await self.declare(tasks, crons, ended, storage)
        if restored:
            log.info("restored %d job(s) from storage", restored)

    async def retry(
        self,
        storage: Storage,
        recorder: StoreRecorder,
        tasks: Mapping[str, Task],
        clock: Callable[[], float],
        job_id: str,
    ) -> str | None:
        """Retry a failed job by hand in the running app (a command from the ``jobify``
        command or the dashboard): its record is armed for now with its arguments (see
        :func:`~jobify._records.retry_record`) and the job is owned again. None when done,
        else why not."""
        record = await storage.get(job_id)
        if record is None:
            return f"no job with id {job_id!r} is stored"
        if record.status not in (RecordStatus.FAILED, RecordStatus.PERMANENTLY_FAILED):
            return f"job {job_id!r} is {record.status}: only a failed job can be retried"
        fresh = retry_record(record, clock())
        try:
            found = recorder.decode(fresh, tasks)
        except Unrestorable as exc:
            return f"job {job_id!r} cannot run in this app: {exc}"
        await storage.save(fresh)
        entry = found.entry(recorder, self._parser_for, self._tz)
        self._scheduler.add(entry)
        self._scheduler.arm(entry)
        log.info("job %r retried by hand", job_id, extra={"job_id": job_id})
        return None

    def _restored_entry(self, found: Restored, recorder: StoreRecorder) -> JobEntry:
        # Restored records are durable whatever the task says now: a task switched to
        # durable=False still finishes (deletes) the record it left behind.
        entry = found.entry(recorder, self._parser_for, self._tz)
        entry.missed = True  # fires due now happened while the app was down
        if found.record.status == RecordStatus.PAUSED:
            entry.paused = True
            entry.job.status = JobStatus.PAUSED
        return entry

    async def declare_shared(self, worker: SharedWorker, tasks: Mapping[str, Task]) -> None:
        """Every worker declares the same crons; an unchanged stored one is kept as it is
        (counters, next fire, or its end), so declaring is idempotent across the cluster."""
        submitter = self._submitter
        assert submitter is not None
        storage = worker.storage
        for name, task in tasks.items():
            cron = task.spec.options.cron
            job_id = name
            current = await storage.get(name)
            for old in task.spec.former_names if current is None else ():
                # Declared under the task's old default name: that job is this declaration.
                current = await storage.get(old)
                if current is not None:
                    job_id = old
                    break
            found = None
            if current is not None:
                try:
                    found = worker.records.decode(current, tasks)
                except Unrestorable:
                    found = None
                if found is not None and found.task is not task:
                    found = None
            if cron is None or not task.durable:
                if found is not None and found.declared:
                    log.info("cron job %r is no longer declared on its task; removed", job_id)
                    await storage.delete(job_id)
                continue
            arguments = task.spec.bind(tuple(cron.args), dict(cron.kwargs))
            tz = cron.zone or self._tz
            if found is not None and found.declares(task, cron, tz, arguments):
                continue  # unchanged: keep its state, whichever worker wrote it
            await self._commit_declared(self._declaration(task, cron, tz, arguments))
            if job_id != name and found is not None and found.declared:
                await storage.delete(job_id)  # the changed declaration replaced it

    def _declaration(self, task: Task, cron: Cron, tz: tzinfo, arguments: Bound) -> Request:
        """The request that (re)declares ``task``'s cron under its own name."""
        return Request(
            task,
            arguments,
            None,
            cron,
            self._parser_for(cron.expression),
            tz,
            task.name,
            replace=True,
            force=True,
            declared=True,
        )

    async def _commit_declared(self, request: Request) -> None:
        try:
            await self._submitter.declare(request)
        except CronExhaustedError as exc:
            # A declaration that can never fire again (e.g. a one-off whose year has passed)
            # is not a reason to refuse to start every other job.
            assert request.cron is not None
            log.warning(
                "task %r declares cron %r, which never fires again (%s); nothing is "
                "scheduled for it",
                request.task.name,
                request.cron.expression,
                exc,
                extra={"task_name": request.task.name},
            )

    async def _rename_declared(self, task: Task, restored: dict[str, JobEntry]) -> None:
        """Move the declared cron stored under ``task``'s old default name (its job id was
        the task's name) to the task's name now, keeping its counters and next fire."""
        scheduler = self._scheduler
        for old in task.spec.former_names:
            entry = restored.get(old)
            if entry is None or not entry.declared or entry.task is not task:
                continue
            renamed = JobEntry(
                task,
                Job(task.name),
                entry.arguments,
                entry.exec_ts,
                entry.tz,
                entry.recorder,
                entry.cron,
                entry.parser,
                entry.runs,
                entry.failures,
            )
            renamed.declared = renamed.missed = True
            if entry.paused:
                renamed.paused = True
                renamed.job.status = JobStatus.PAUSED
            await renamed.recorder.save(renamed)  # the new record first: nothing is lost
            del restored[old]
            scheduler.retire(entry)
            scheduler.handover(entry, replaced=True)
            await entry.recorder.delete(entry)
            scheduler.add(renamed)
            restored[task.name] = renamed
            log.info(
                "declared cron job %r of task %r is now known by the task's name %r (its "
                "counters and next fire are kept)",
                old,
                task.name,
                task.name,
                extra={"job_id": task.name, "task_name": task.name},
            )
            return

    def _orphan(self, storage: Storage, record: JobRecord, reason: str) -> None:
        log.error(
            "job %r of task %r cannot be restored: %s. Its record is left in storage; "
            "register the task, or remove the record with `await app.find_job(%r).cancel()` "
            "(or `jobify jobs cancel %s`)",
            record.job_id,
            record.task_name,
            reason,
            record.job_id,
            record.job_id,
            extra={"job_id": record.job_id, "task_name": record.task_name},
        )
        self._orphans[record.job_id] = OrphanSource(storage, record, self._tz, reason, self._forget)

    async def declare(
        self,
        tasks: Mapping[str, Task],
        restored: dict[str, JobEntry],
        ended: Mapping[str, Restored],
        storage: Storage | None,
    ) -> None:
        """Bring the crons declared on tasks (``@app.task(cron=...)``) in line with storage:
        ``restored`` holds the restored cron jobs, ``ended`` the finished or permanently
        failed records.

        An unchanged declaration keeps its stored job: its counters and next fire, or its
        finished / permanently failed end (it does not start again). A changed declaration
        starts afresh. A stored declared cron whose task no longer declares one is removed.
        """
        submitter, scheduler = self._submitter, self._scheduler
        assert submitter is not None and scheduler is not None
        for job_id, found in ended.items():
            if job_id in found.task.spec.former_names and found.task.spec.options.cron:
                continue  # the declaration under the task's old default name
            if found.declared and (
                found.task.spec.options.cron is None or job_id != found.task.name
            ):
                log.info("ended cron job %r is no longer declared on its task; removed", job_id)
                if storage is not None:
                    await storage.delete(job_id)
        for job_id, entry in list(restored.items()):
            task = tasks[entry.task.name]
            if job_id in task.spec.former_names and task.spec.options.cron is not None:
                continue  # stored under the task's old default name: renamed below
            if entry.declared and (task.spec.options.cron is None or job_id != task.name):
                log.info("cron job %r is no longer declared on its task; removed", job_id)
                del restored[job_id]
                scheduler.retire(entry)
                scheduler.handover(entry, replaced=True)
                await entry.recorder.delete(entry)
        for name, task in tasks.items():
            cron = task.spec.options.cron
            if cron is None:
                continue
            if name not in restored:
                await self._rename_declared(task, restored)
            arguments = task.spec.bind(tuple(cron.args), dict(cron.kwargs))
            tz = cron.zone or self._tz
            current = restored.get(name)
            if current is not None and _same_declaration(current, task, cron, tz, arguments):
                current.declared = True
                continue
            final = ended.get(name)
            for old in task.spec.former_names if final is None else ():
                earlier = ended.get(old)
                if earlier is not None and earlier.task is task and earlier.declared:
                    final = earlier  # ended under the task's old default name
                    break
            if current is None and final is not None and final.declares(task, cron, tz, arguments):
                continue  # it ran to its end: an unchanged declaration stays finished
            request = self._declaration(task, cron, tz, arguments)
            restored.pop(name, None)
            await self._commit_declared(request)
            if final is not None and final.record.job_id != name and storage is not None:
                await storage.delete(final.record.job_id)  # the changed declaration's old end


def _same_declaration(
    entry: JobEntry, task: Task, cron: Cron, tz: tzinfo, arguments: Bound
) -> bool:
    return (
        entry.cron is not None
        and same_cron(entry.cron, cron)
        and entry.tz == tz
        and same_arguments(task, entry.arguments, arguments)
    )
