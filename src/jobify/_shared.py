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

from jobify._arguments import ArgumentCodec, return_hint
from jobify._entry import JobEntry, Outcome, Task
from jobify._jobs import Job, JobStatus, attach, finish, resolve
from jobify._records import FAILED_OUTCOMES, StoreRecorder
from jobify._scheduler import Scheduler
from jobify._triggerdoc import decode_trigger
from jobify._triggers import CronParser
from jobify.exceptions import (
    BaseJobifyError,
    JobCancelledError,
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
COMMIT_CHECK_FIRST, COMMIT_CHECK_MAX = 0.005, 1.0
"""Seconds between checks of a caller's transaction that holds a job (doubling)."""


class ResultCodec:
    """A task's return value to bytes and back, for waiters in other processes."""

    def __init__(self, codec: ArgumentCodec) -> None:
        self.codec = codec
        self._hints: dict[str, dict[str, Any]] = {}

    def _hint(self, task: Task) -> dict[str, Any]:
        hints = self._hints.get(task.name)
        if hints is None:
            annotation = return_hint(task.spec.func)
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

    def holds(self, entry: JobEntry) -> bool:
        return self.storage.holds(entry.job.id)

    async def confirm(self, entry: JobEntry) -> bool:
        return await self.storage.confirm(entry.job.id)

    async def progress(self, entry: JobEntry) -> None:
        # Committed with the completion: a save now would end this worker's claim.
        return None

    async def delete(self, entry: JobEntry) -> None:
        await self.storage.delete(entry.job.id)

    def done(self, entry: JobEntry, outcome: Outcome) -> Outcome:
        outcome, result = _result(self.results, entry, outcome, self.clock)
        # A failed run's row is kept (never armed) so that it can be retried by hand.
        kept = None
        if outcome[0] in FAILED_OUTCOMES:
            kept = self.records.record(entry, RecordStatus.FAILED)
        task = asyncio.get_running_loop().create_task(self._complete(entry, kept, result))
        self._completing.add(task)
        task.add_done_callback(self._completing.discard)
        return outcome

    async def _complete(
        self, entry: JobEntry, record: JobRecord | None, result: ResultRecord | None
    ) -> bool:
        if not self.storage.has_claim(entry.job.id):
            # The claim was taken (the heartbeat said so) or could not be confirmed before a
            # retry: the job is another worker's, or will be once the lease runs out. A
            # completion must not land meanwhile (a failed outcome would end the job without
            # the retries that worker will make).
            log.warning(
                "job %r: this worker's claim ended during the run; its outcome here is dropped",
                entry.job.id,
                extra={"job_id": entry.job.id, "task_name": entry.task.name},
            )
            return False
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
        """Remove the job from the store: it never starts anywhere, and a run under way on
        any worker is stopped by that worker when it hears of the removal."""
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
            except (Exception, SystemExit) as error:  # a stored result is untrusted data
                status = JobStatus.FAILED
                exc = SerializationError(
                    f"the result of job {self.record.job_id!r} cannot be decoded: "
                    f"{type(error).__name__}: {error}"
                )
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
        # Notifications arrive from the moment the store listens, which is before start()
        # (while the app declares its jobs): they run on the loop all the same.
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- notifications (SharedListener) --------------------------------------------------

    def on_new_job(self, exec_at: float) -> None:
        if not (self._running and self.claims):
            return
        at = exec_at - HORIZON
        if at <= self.scheduler.clock():
            self._claim_soon()
        else:
            # Only ever earlier: a claim under way may read the next claimable time from a
            # snapshot taken before this job was committed, and must not move the timer
            # past it.
            self._arm_by(at)

    def on_job_changed(self, job_id: str) -> None:
        entry = self.scheduler.jobs.get(job_id)
        if entry is not None and entry.recorder is self.recorder:
            if entry.running():
                self._spawn(self._recheck_running(entry))
            else:
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
        for entry in list(self.scheduler.jobs.values()):
            # A cancel (a removed row) may have been missed while not listening.
            if entry.recorder is self.recorder and entry.running():
                self._spawn(self._recheck_running(entry))

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
        ended = current is None or current.status == RecordStatus.FAILED
        if result is not None and (ended or handle.cron_expression is not None):
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

    def await_commit(self, job_id: str, transaction: Any) -> None:
        """A job made here was written in a caller's own transaction: learn how that
        transaction ends; rolled back, the job never existed and its handle ends CANCELLED
        (committed, the handle simply follows the job)."""
        self._spawn(self._await_commit(job_id, transaction))

    async def _await_commit(self, job_id: str, transaction: Any) -> None:
        # PostgreSQL tells nobody else when a transaction ends, so its status is asked,
        # quickly at first (a request's transaction usually ends within milliseconds),
        # then less often.
        delay = COMMIT_CHECK_FIRST
        while True:
            try:
                committed = await self.storage.transaction_committed(transaction)
            except StorageError as exc:
                log.warning("the transaction of job %r could not be checked: %s", job_id, exc)
                committed = None
            if committed is not None:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, COMMIT_CHECK_MAX)
        handle = self.remote.get(job_id)
        if committed or handle is None:
            return
        log.info(
            "job %r was written in a transaction that rolled back; it never existed",
            job_id,
            extra={"job_id": job_id},
        )
        self.forget(job_id)
        finish(handle.job, JobStatus.CANCELLED, None, JobCancelledError(job_id))

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

    def _arm_by(self, at: float) -> None:
        """Make sure the timer fires at ``at`` at the latest (an earlier one stays: firing
        early costs one claim that finds nothing; firing late loses a wake-up)."""
        if self._timer is None or at < self._timer_at:
            self._arm(at)

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
            if self._again:
                # A notification came while that read ran: its snapshot may predate the
                # insert it announced (PostgreSQL notifies at COMMIT, the read may have
                # started just before). Claim again rather than trust the read.
                continue
            if nxt is None:
                return  # nothing anywhere: the next notification (or heartbeat) wakes us
            at = nxt - HORIZON
            now = self.scheduler.clock()
            if at <= now:
                # Due, yet not claimed: another worker's claim holds it this very moment, or
                # its lease is about to end. Look again shortly.
                at = now + BUSY_RETRY
            self._arm_by(at)
            return

    def _own(self, record: JobRecord) -> None:
        try:
            found = self.records.decode(record, self.tasks)
            entry = found.entry(self.recorder, self._parser_for, self.tz)
        except Exception as exc:  # Unrestorable, or e.g. a cron expression that fails
            self._spawn(self._set_aside(record, exc))
            return
        self.scheduler.add(entry)
        self.scheduler.arm(entry)

    async def _set_aside(self, record: JobRecord, reason: BaseException) -> None:
        """A claimed record this worker cannot decode is paused, which ends the claim: it
        neither stays claimed by a worker that cannot run it nor bounces between workers.
        Its data is left as it is; once its task or types are registered where it runs,
        ``resume`` makes it claimable again."""
        log.error(
            "claimed job %r of task %r cannot be run here: %s; it is paused and left in the "
            "store (register what it needs, then resume it: `jobify jobs resume %s`)",
            record.job_id,
            record.task_name,
            reason,
            record.job_id,
            extra={"job_id": record.job_id, "task_name": record.task_name},
        )
        try:
            await self.storage.complete(
                record.job_id, replace(record, status=RecordStatus.PAUSED), None
            )
        except StorageError as exc:
            log.warning("claimed job %r could not be paused: %s", record.job_id, exc)

    async def _recheck_running(self, entry: JobEntry) -> None:
        """A job running here changed elsewhere: gone from the store means cancelled (by a
        handle in any process, the command or the dashboard), so its run is stopped."""
        try:
            current = await self.storage.get(entry.job.id)
        except StorageError as exc:
            log.warning("running job %r could not be checked: %s", entry.job.id, exc)
            return
        if current is None and entry.running():
            await self.scheduler.stop_running(entry)

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
