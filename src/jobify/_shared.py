"""Scale-out on a shared store (PostgreSQL): what this worker owns, and handles of jobs that
run anywhere in the cluster.

The core's ownership rule: an embedded store owns every job; a shared store owns a job only
between claim and completion. So with a :class:`~jobify.storage.base.SharedStorage`:

- scheduling a durable job writes its record (the store notifies every worker inside the
  same transaction) and returns a :class:`RemoteSource` handle: ``await job``, ``wait()``,
  ``result()``, ``cancel()``, ``pause()`` and ``resume()`` work whichever worker runs it;
- :class:`SharedWorker` keeps one timer at the earliest moment something could be claimed,
  and claims due jobs in batches up to the free capacity when it fires or when a
  notification says a job became due (no polling); a claimed job becomes an ordinary entry
  of the scheduler, recorded by a :class:`SharedRecorder`, whose completion (delete a one-shot
  job, advance a cron, mark it failed) is guarded by the lease and ends the claim.
"""

from __future__ import annotations

import asyncio
import logging
import typing
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import tzinfo
from typing import Any

from jobify._arguments import ArgumentCodec
from jobify._entry import JobEntry, Outcome, Task
from jobify._jobs import Job, JobStatus, attach, finish, resolve
from jobify._records import StoreRecorder, Unrestorable
from jobify._scheduler import Scheduler
from jobify._triggerdoc import decode_trigger
from jobify._triggers import CronParser
from jobify.exceptions import (
    BaseJobifyError,
    JobFailedError,
    JobTimeoutError,
    SerializationError,
    StorageError,
)
from jobify.storage.base import (
    JobRecord,
    RecordStatus,
    ResultRecord,
    SharedListener,
    SharedStorage,
)

__all__ = ["DEFAULT_CAPACITY", "RemoteSource", "ResultCodec", "SharedRecorder", "SharedWorker"]

log = logging.getLogger("jobify.shared")

DEFAULT_CAPACITY = 100
"""How many jobs a worker claims and runs at once when ``Jobify(concurrency=...)`` is not set."""
HORIZON = 0.25
"""Seconds ahead of its time a job may be claimed, so the local timer fires on the instant."""
BUSY_RETRY = 0.02
"""Seconds to wait when something is claimable but another worker's claim holds it right now."""
ERROR_RETRY_MAX = 30.0


class ResultCodec:
    """A task's return value to bytes and back, for waiters in other processes."""

    def __init__(self, codec: ArgumentCodec) -> None:
        self.codec = codec
        self._hints: dict[str, dict[str, Any]] = {}

    def _hint(self, task: Task) -> dict[str, Any]:
        hints = self._hints.get(task.name)
        if hints is None:
            try:
                annotation = typing.get_type_hints(task.spec.func).get("return")
            except Exception:  # an unresolvable annotation: no hint
                annotation = None
            hints = self._hints[task.name] = {} if annotation is None else {"value": annotation}
        return hints

    def encode(self, task: Task, value: Any) -> bytes:
        return self.codec.encode(task.name, {"value": value}, self._hint(task))

    def decode(self, task: Task | None, data: bytes) -> Any:
        hints = self._hint(task) if task is not None else {}
        name = task.name if task is not None else "?"
        return self.codec.decode(name, data, hints)["value"]


def _result(
    results: ResultCodec, entry: JobEntry, outcome: Outcome, clock: Callable[[], float]
) -> tuple[Outcome, ResultRecord]:
    """The result to keep for remote waiters; a value that cannot be encoded makes the run
    FAILED with a SerializationError saying so."""
    status, value, exc, attempts = outcome
    data: bytes | None = None
    if status is JobStatus.SUCCESS:
        try:
            data = results.encode(entry.task, value)
        except SerializationError as error:
            failure = SerializationError(
                f"job {entry.job.id!r} of task {entry.task.name!r} returned a value that "
                f"cannot be sent to its waiters: {error}"
            )
            failure.__cause__ = error
            log.error("%s", failure, extra={"job_id": entry.job.id, "task_name": entry.task.name})
            status, value, exc = JobStatus.FAILED, None, failure
    error_text = None if exc is None else f"{type(exc).__name__}: {exc}"
    record = ResultRecord(entry.job.id, status.value, data, error_text, clock())
    return (status, value, exc, attempts), record


class SharedRecorder:
    """The recorder of a claimed job: every write is guarded by this worker's lease, and the
    completion of a run ends the claim (``owns_between_runs`` is False)."""

    durable = True
    owns_between_runs = False

    def __init__(
        self,
        storage: SharedStorage,
        records: StoreRecorder,
        results: ResultCodec,
        clock: Callable[[], float],
    ) -> None:
        self.storage = storage
        self.records = records
        self.results = results
        self.clock = clock
        self._completing: set[asyncio.Task[Any]] = set()

    async def save(self, entry: JobEntry) -> None:
        await self.storage.save(self.records.record(entry))

    async def progress(self, entry: JobEntry) -> None:
        # Committed with the completion: a save now would end this worker's claim.
        return None

    async def delete(self, entry: JobEntry) -> None:
        await self.storage.delete(entry.job.id)

    def done(self, entry: JobEntry, outcome: Outcome) -> Outcome:
        outcome, result = _result(self.results, entry, outcome, self.clock)
        task = asyncio.get_running_loop().create_task(self._complete(entry, None, result))
        self._completing.add(task)
        task.add_done_callback(self._completing.discard)
        return outcome

    async def _complete(
        self, entry: JobEntry, record: JobRecord | None, result: ResultRecord | None
    ) -> bool:
        try:
            applied = await self.storage.complete(entry.job.id, record, result)
        except StorageError as exc:
            log.error(
                "job %r: its completion could not be recorded (%s); its lease will expire "
                "and another worker may run it again",
                entry.job.id,
                exc,
                extra={"job_id": entry.job.id, "task_name": entry.task.name},
            )
            return False
        if not applied:
            log.warning(
                "job %r: this worker's claim was lost (lease expired, or the job was changed "
                "or removed); its outcome here is dropped",
                entry.job.id,
                extra={"job_id": entry.job.id, "task_name": entry.task.name},
            )
        return applied

    async def advance(self, entry: JobEntry, outcome: Outcome | None) -> bool:
        result = None
        if outcome is not None:
            _, result = _result(self.results, entry, outcome, self.clock)
        return await self._complete(entry, self.records.record(entry), result)

    async def finish(self, entry: JobEntry, status: str, outcome: Outcome | None) -> None:
        result = None
        if outcome is not None:
            _, result = _result(self.results, entry, outcome, self.clock)
        await self._complete(entry, self.records.record(entry, status), result)

    async def flush(self) -> None:
        """Wait for the completions already issued."""
        while self._completing:
            await asyncio.gather(*self._completing, return_exceptions=True)


class RemoteSource:
    """The handle side of a job in a shared store, run by whichever worker claims it."""

    def __init__(
        self,
        worker: SharedWorker,
        record: JobRecord,
        tz: tzinfo,
        task: Task | None,
        job: Job[Any] | None = None,
    ) -> None:
        self.worker = worker
        self.record = record
        self.task = task
        self._tz = tz
        doc = decode_trigger(record.trigger)
        self.cron_expression = doc.cron.expression if doc.cron is not None else None
        self.job: Job[Any] = job if job is not None else Job(record.job_id)
        if record.status == RecordStatus.PAUSED:
            self.job.status = JobStatus.PAUSED
        attach(self.job, self)

    @property
    def exec_ts(self) -> float:
        return self.record.exec_at

    @property
    def tz(self) -> tzinfo:
        return self._tz

    async def cancel(self) -> None:
        """Remove the job from the store: it never starts anywhere (a run already under way
        elsewhere finishes, and its outcome is dropped)."""
        await self.worker.storage.delete(self.record.job_id)
        self.worker.forget(self.record.job_id)
        finish(self.job, JobStatus.CANCELLED)

    async def _set_status(self, status: str) -> JobRecord | None:
        storage = self.worker.storage
        current = await storage.get(self.record.job_id)
        if current is None:
            return None
        self.record = replace(current, status=status)
        await storage.save(self.record)
        return self.record

    async def pause(self) -> None:
        if await self._set_status(RecordStatus.PAUSED) is not None:
            self.job.status = JobStatus.PAUSED

    async def resume(self) -> None:
        if await self._set_status(RecordStatus.SCHEDULED) is not None:
            self.job.status = JobStatus.SCHEDULED

    def deliver(self, result: ResultRecord) -> None:
        """A worker recorded an outcome of this job."""
        try:
            status = JobStatus(result.status)
        except ValueError:
            status = JobStatus.FAILED
        value: Any = None
        exc: BaseException | None = None
        if status is JobStatus.SUCCESS and result.value is not None:
            try:
                value = self.worker.results.decode(self.task, result.value)
            except BaseJobifyError as error:
                status, exc = JobStatus.FAILED, error
        elif status is JobStatus.TIMEOUT:
            exc = JobTimeoutError(self.record.job_id, 0.0)
        elif status is not JobStatus.SUCCESS:
            exc = JobFailedError(self.record.job_id, result.error or "failed on another worker")
        if self.cron_expression is None or status is JobStatus.PERMANENTLY_FAILED:
            self.worker.forget(self.record.job_id)
            finish(self.job, status, value, exc)
        else:
            resolve(self.job, status, value, exc)


class SharedWorker(SharedListener):
    """Claims due jobs for this process and delivers results to handles made here."""

    def __init__(
        self,
        storage: SharedStorage,
        scheduler: Scheduler,
        records: StoreRecorder,
        recorder: SharedRecorder,
        tasks: Mapping[str, Task],
        parser_for: Callable[[str], CronParser],
        tz: tzinfo,
        capacity: int,
        claims: bool,
    ) -> None:
        self.storage = storage
        self.scheduler = scheduler
        self.records = records
        self.recorder = recorder
        self.results = recorder.results
        self.tasks = tasks
        self._parser_for = parser_for
        self.tz = tz
        self.capacity = capacity
        self.claims = claims
        """False for a producer-only app: it schedules jobs that workers run."""
        self.remote: dict[str, RemoteSource] = {}
        # Records stored under a task's old default name are its jobs too.
        self._names = sorted({*tasks, *(n for n, t in records.former.items() if t.name in tasks)})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._claiming: asyncio.Task[None] | None = None
        self._again = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._full = False
        self._errors = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Event | None = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._running = True
        self.scheduler.on_release = self._capacity_freed
        if self.claims:
            self._claim_soon()

    def stop_claiming(self) -> None:
        """Claim nothing more (shutdown has begun); jobs already claimed go on."""
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def stop(self) -> None:
        self.stop_claiming()
        tasks = [t for t in (self._claiming, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: typing.Coroutine[Any, Any, Any]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- notifications (SharedListener) --------------------------------------------------

    def on_new_job(self, exec_at: float) -> None:
        if not (self._running and self.claims):
            return
        at = exec_at - HORIZON
        if at <= self.scheduler.clock():
            self._claim_soon()
        elif self._timer is None or at < self._timer_at:
            self._arm(at)

    def on_job_changed(self, job_id: str) -> None:
        entry = self.scheduler.jobs.get(job_id)
        if entry is not None and entry.recorder is self.recorder and not entry.running():
            self._spawn(self._recheck_claim(entry))
        handle = self.remote.get(job_id)
        if handle is not None:
            self._spawn(self._recheck_handle(handle))

    def on_job_finished(self, job_id: str) -> None:
        handle = self.remote.get(job_id)
        if handle is not None:
            self._spawn(self._fetch_result(handle))

    def on_resync(self) -> None:
        if self._running and self.claims:
            self._claim_soon()
        for handle in list(self.remote.values()):
            self._spawn(self._recheck_handle(handle))

    # -- results for handles made here ---------------------------------------------------

    def track(self, handle: RemoteSource) -> None:
        self.remote[handle.record.job_id] = handle
        if self._idle is not None:
            self._idle.clear()

    def forget(self, job_id: str) -> None:
        self.remote.pop(job_id, None)
        if not self.pending() and self._idle is not None:
            self._idle.set()

    def pending(self) -> list[RemoteSource]:
        """Handles of one-shot jobs made here that have no outcome yet."""
        return [h for h in self.remote.values() if h.cron_expression is None]

    async def wait_remote(self, timeout: float | None) -> bool:
        if not self.pending():
            return True
        if self._idle is None:
            self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _fetch_result(self, handle: RemoteSource) -> None:
        try:
            result = await self.storage.get_result(handle.record.job_id)
        except StorageError as exc:
            log.warning("the result of job %r could not be read: %s", handle.record.job_id, exc)
            return
        if result is not None:
            handle.deliver(result)

    async def _recheck_handle(self, handle: RemoteSource) -> None:
        """A job made here changed elsewhere (or notifications were missed)."""
        job_id = handle.record.job_id
        try:
            current = await self.storage.get(job_id)
            result = await self.storage.get_result(job_id)
        except StorageError as exc:
            log.warning("job %r could not be checked: %s", job_id, exc)
            return
        if result is not None and (current is None or handle.cron_expression is not None):
            handle.deliver(result)
        elif current is None:
            self.forget(job_id)
            finish(handle.job, JobStatus.CANCELLED)
        else:
            handle.record = current
            if current.status == RecordStatus.PAUSED:
                handle.job.status = JobStatus.PAUSED
            elif handle.job.status is JobStatus.PAUSED:
                handle.job.status = JobStatus.SCHEDULED

    # -- claiming ------------------------------------------------------------------------

    def _capacity_freed(self) -> None:
        if self._full and self._running and self.claims:
            self._full = False
            self._claim_soon()

    def _claim_soon(self) -> None:
        if self._claiming is not None and not self._claiming.done():
            self._again = True
            return
        assert self._loop is not None
        self._claiming = self._loop.create_task(self._claim())

    def _arm(self, at: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, at - self.scheduler.clock())
        self._timer_at = at
        self._timer = self._loop.call_later(delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._claim_soon()

    async def _claim(self) -> None:
        while self._running:
            self._again = False
            free = self.capacity - len(self.scheduler.jobs)
            if free <= 0:
                self._full = True  # claim again when a run ends
                return
            try:
                records = await self.storage.claim(self._names, free, horizon=HORIZON)
                for record in records:
                    self._own(record)
                if len(records) >= free or self._again:
                    continue
                nxt = await self.storage.next_claimable(self._names)
            except StorageError as exc:
                self._errors += 1
                delay = min(ERROR_RETRY_MAX, 0.1 * 2**self._errors)
                log.warning("claiming jobs failed (%s); trying again in %.1fs", exc, delay)
                self._arm(self.scheduler.clock() + delay)
                return
            self._errors = 0
            if nxt is None:
                return  # nothing anywhere: the next notification wakes us
            at = nxt - HORIZON
            now = self.scheduler.clock()
            if at <= now:
                # Due, yet not claimed: another worker's claim holds it this very moment, or
                # its lease is about to end. Look again shortly.
                at = now + BUSY_RETRY
            self._arm(at)
            return

    def _own(self, record: JobRecord) -> None:
        try:
            found = self.records.decode(record, self.tasks)
        except Unrestorable as exc:
            log.error(
                "claimed job %r of task %r cannot be run here: %s; this worker keeps it "
                "claimed (so it does not bounce between workers) until it stops",
                record.job_id,
                record.task_name,
                exc,
                extra={"job_id": record.job_id, "task_name": record.task_name},
            )
            return
        entry = found.entry(self.recorder, self._parser_for, self.tz)
        self.scheduler.add(entry)
        self.scheduler.arm(entry)

    async def _recheck_claim(self, entry: JobEntry) -> None:
        """A job this worker claimed but has not started changed elsewhere."""
        job_id = entry.job.id
        try:
            current = await self.storage.get(job_id)
        except StorageError as exc:
            log.warning("claimed job %r could not be checked: %s", job_id, exc)
            return
        if entry.running() or not entry.owned:
            return
        unchanged = current is not None and (
            current.status == RecordStatus.SCHEDULED
            and current.arguments == self.records.record(entry).arguments
            and current.trigger == self.records.record(entry).trigger
        )
        if unchanged:
            assert current is not None
            if current.exec_at != entry.exec_ts:
                self.scheduler.move(entry, current.exec_at)
            return
        self.scheduler.drop(entry)
        if current is not None:
            try:
                await self.storage.release([job_id])
            except StorageError as exc:
                log.warning("claimed job %r could not be released: %s", job_id, exc)

    # -- scheduling into the store ------------------------------------------------------

    def handle_for(self, record: JobRecord, task: Task | None, job: Job[Any] | None) -> Job[Any]:
        existing = self.remote.get(record.job_id)
        if existing is not None and job is None:
            existing.record = record
            return existing.job
        handle = RemoteSource(self, record, self.tz, task, job)
        self.track(handle)
        return handle.job
