"""Scheduling calls: one request goes down submit → outer middleware → commit → arm.

A call (``push``, ``at``, ``delay``, ``cron``) is bound once into a :class:`Request` (task,
bound arguments, trigger, job id, options). The :class:`Submitter` validates it, answers an
identical re-schedule with the existing job before anything else runs, passes the request
through the task's outer middleware, then commits it: a durable job is written to storage
(the call returns once committed) and handed to the scheduler, which arms its timer.

Replacing is a cancel of the old job plus the new one, atomically: the old job stops firing
at once, the new record is committed, and only then does the old job lose its id (if the
commit fails, the old job is owned again, as if nothing happened). The caller's handle of the
old job is updated in place: it becomes the new job's handle (still SCHEDULED), so whoever
holds it follows the replacement; only a run already under way keeps its own handle. Calls
for one id are serialized: with ``replace=True`` the last caller wins; without it, a second
caller while one is being committed gets ``DuplicateJobError``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from dataclasses import replace as replace_
from datetime import datetime, timedelta, tzinfo
from random import getrandbits
from typing import Any, Generic, TypeVar

from jobify._builder import Bound, ScheduleBuilder
from jobify._bulk import push_many
from jobify._config import JobifyConfiguration
from jobify._context import OuterContext, RequestState, Runnable
from jobify._entry import JobEntry, Recorder, Task
from jobify._jobs import Job, JobStatus, attach, finish, is_final, park
from jobify._records import NULL_RECORDER, StoreRecorder
from jobify._runmodes import RunMode, check_process_args
from jobify._scheduler import Scheduler
from jobify._shared import SharedWorker
from jobify._task import check_text
from jobify._triggerdoc import decode_trigger
from jobify._triggers import Cron, CronParser, check_instant, localize
from jobify._txpush import push_on
from jobify.exceptions import ApplicationStateError, DuplicateJobError
from jobify.middleware._base import compose
from jobify.storage.base import JobRecord

__all__ = ["Request", "Submitter", "TaskPort", "id_factory"]

log = logging.getLogger("jobify.schedule")

T = TypeVar("T")


@dataclass(slots=True)
class Request:
    """One scheduling call, bound once: everything the way down needs."""

    task: Task
    arguments: Bound
    exec_ts: float | None
    cron: Cron | None
    parser: CronParser | None
    tz: tzinfo
    job_id: str
    replace: bool
    force: bool
    requested: Bound | None = None
    """The caller's arguments when outer middleware changed them."""
    declared: bool = False
    """A cron declared on the task (``@app.task(cron=...)``)."""
    chosen_id: bool = True
    """The caller chose the job id (a generated one cannot be in use anywhere)."""


def id_factory(generator: Callable[[], Any]) -> Callable[[], str]:
    """Job ids from ``generator()`` (a ``uuid.UUID``; the id is its hex).

    For the default ``uuid.uuid4`` the same value is made ~10x cheaper from
    ``random.getrandbits`` (a version-4 UUID needs unique ids, not unpredictable ones;
    ``random`` is reseeded in forked children).
    """
    if generator is uuid.uuid4:
        return _fast_uuid4_hex

    def new_id() -> str:
        value = generator()
        text = value.hex if isinstance(value, uuid.UUID) else value
        if not isinstance(text, str) or not text:
            raise TypeError(
                f"uuid_generator must return a uuid.UUID (or a non-empty str), got {value!r}"
            )
        return text

    return new_id


# Version 4 in bits 76-79, RFC 4122 variant in bits 62-63.
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID_SET = (0x4 << 76) | (0x2 << 62)


def _fast_uuid4_hex() -> str:
    n = (getrandbits(128) & _UUID_CLEAR) | _UUID_SET
    return f"{n:032x}"


class TaskPort(Generic[T]):
    """The port one task's routes and builders submit through."""

    __slots__ = ("_submitter", "_task")

    def __init__(self, submitter: Submitter, task: Task) -> None:
        self._submitter = submitter
        self._task = task

    @property
    def tz(self) -> tzinfo:
        return self._submitter.tz

    def now(self) -> float:
        return self._submitter.clock()

    def submit(
        self,
        arguments: Bound,
        exec_ts: float | None,
        cron: Cron | None,
        job_id: str | None,
        replace: bool,
        force: bool,
    ) -> Awaitable[Job[T]]:
        # The submitter's coroutine itself: no frame of its own on the way (the hot path).
        return self._submitter.submit(self._task, arguments, exec_ts, cron, job_id, replace, force)

    def submit_many(self, items: Iterable[Any]) -> Awaitable[list[Job[T]]]:
        """Push one job per item, written together (see :mod:`jobify._bulk`)."""
        return self._submitter.push_many(self._task, items)

    def submit_on(
        self,
        connection: Any,
        arguments: Bound,
        exec_ts: float,
        job_id: str | None,
        replace: bool,
        force: bool,
    ) -> Awaitable[Job[T]]:
        """One job in the caller's transaction (see :mod:`jobify._txpush`)."""
        return self._submitter.push_on(
            self._task, connection, arguments, exec_ts, job_id, replace=replace, force=force
        )


class NotStarted:
    """The port of a task whose app has not started yet."""

    def __init__(self, tz: tzinfo, clock: Callable[[], float]) -> None:
        self._tz = tz
        self._clock = clock

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def now(self) -> float:
        return self._clock()

    async def submit(self, *args: Any) -> Job[Any]:
        raise ApplicationStateError(
            "the app has not started; schedule jobs inside 'async with app:' or after "
            "'await app.startup()'"
        )

    async def submit_many(self, items: Iterable[Any]) -> list[Job[Any]]:
        await self.submit()  # raises
        return []

    async def submit_on(self, *args: Any) -> Job[Any]:
        return await self.submit()


class Submitter:
    """Turns scheduling requests into owned, committed, armed jobs."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        clock: Callable[[], float],
        tz: tzinfo,
        parser_for: Callable[[str], CronParser],
        new_id: Callable[[], str],
        config: JobifyConfiguration,
        recorder: StoreRecorder | None,
        shared: SharedWorker | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.shared = shared
        """Set with a shared store: durable jobs go to the store, for any worker to run."""
        self.clock = clock
        self.tz = tz
        self._parser_for = parser_for
        self._new_id = new_id
        self._config = config
        self._recorder = recorder
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self.open = True
        """False once the app began to shut down: new calls are refused, nothing stored."""

    async def drain(self) -> None:
        """Wait for every commit already under way (the app is shutting down: the storage
        must stay open until they land, and each caller gets its job)."""
        while self._inflight:
            pending = [asyncio.shield(done) for done in self._inflight.values()]
            await asyncio.gather(*pending, return_exceptions=True)

    def _check_open(self) -> None:
        if not self.open:
            raise ApplicationStateError(
                "the app has shut down (or is shutting down); jobs cannot be scheduled after "
                "shutdown, and nothing was stored"
            )

    def _job_id(self, job_id: str | None) -> str:
        if job_id is None:
            return self._new_id()
        return check_text(job_id, "job_id")

    # -- for push_many (jobify._bulk) ----------------------------------------------------

    def check_open(self) -> None:
        """ApplicationStateError once the app began to shut down."""
        if not self.open:
            self._check_open()

    def one_shot(self, task: Task, arguments: Bound, exec_ts: float) -> Request:
        """The request of a job to run at ``exec_ts``, with a generated id."""
        return Request(
            task,
            arguments,
            exec_ts,
            None,
            None,
            self.tz,
            self._new_id(),
            False,
            False,
            chosen_id=False,
        )

    def through_outer(
        self,
        request: Request,
        outer: Sequence[Any],
        commit: Callable[[Request, Job[Any] | None], Awaitable[Job[Any]]],
    ) -> Awaitable[Job[Any]]:
        """Pass ``request`` through outer middleware to ``commit`` instead of committing."""
        return self._through_outer(request, outer, commit)

    def entry_for(
        self, request: Request, job: Job[Any], recorder: Recorder | None = None
    ) -> JobEntry:
        """The entry of a new job (TypeError/SerializationError if it cannot be made)."""
        return self._entry(request, None, job, recorder)

    def own(self, entry: JobEntry) -> None:
        """Own and arm an entry whose record is committed (or that is not durable)."""
        self._own(entry)

    def push_many(self, task: Task, items: Iterable[Any]) -> Awaitable[list[Job[Any]]]:
        """One job per item, validated together and written in one commit."""
        return push_many(self, task, items)

    def push_on(
        self,
        task: Task,
        connection: Any,
        arguments: Bound,
        exec_ts: float,
        job_id: str | None,
        *,
        replace: bool,
        force: bool,
    ) -> Awaitable[Job[Any]]:
        """One job written in the caller's own transaction on ``connection``."""
        request = Request(
            task,
            arguments,
            check_instant(exec_ts),
            None,
            None,
            self.tz,
            self._job_id(job_id),
            replace,
            force,
            chosen_id=job_id is not None,
        )
        return push_on(self, request, connection)

    # -- the way down --------------------------------------------------------------------

    async def submit(
        self,
        task: Task,
        arguments: Bound,
        exec_ts: float | None,
        cron: Cron | None,
        job_id: str | None,
        replace: bool,
        force: bool,
    ) -> Job[Any]:
        """Validate a call, answer an identical re-schedule, run outer middleware, commit."""
        if not self.open:
            self._check_open()
        chosen_id = job_id is not None
        job_id = self._job_id(job_id)
        parser: CronParser | None = None
        tz = self.tz
        if cron is not None:
            parser = self._parser_for(cron.expression)
            tz = cron.zone or tz
            if cron.args or cron.kwargs:
                arguments = task.spec.bind(tuple(cron.args), dict(cron.kwargs))
        else:
            assert exec_ts is not None
            exec_ts = check_instant(exec_ts)
        existing = self.scheduler.jobs.get(job_id) if chosen_id else None
        if existing is not None and _identical(existing, task, exec_ts, cron, arguments):
            if not force:
                return existing.job  # a no-op: outer middleware does not run again
            replace = True  # forced: the same job scheduled again, replacing itself
        if not replace and (existing is not None or job_id in self._inflight):
            raise DuplicateJobError(job_id)
        request = Request(
            task, arguments, exec_ts, cron, parser, tz, job_id, replace, force, chosen_id=chosen_id
        )
        shared = self.shared
        if shared is not None and task.durable and chosen_id:
            # The id may be in use by any worker: ask the store (identical is a no-op too).
            current = await shared.storage.get(job_id)
            if current is not None:
                if not force and self._identical_record(request, current):
                    return shared.handle_for(current, task, None)
                if not replace:
                    raise DuplicateJobError(job_id)
                request = replace_(request, replace=True)
        if task.outer is None:
            return await self.commit(request)
        return await self._through_outer(request, task.outer)

    async def declare(self, request: Request) -> Job[Any]:
        """Commit a cron declared on a task that is new or changed, through the task's outer
        middleware (as a call would be); an unchanged one is not declared again."""
        outer = request.task.outer
        if outer is None:
            return await self.commit(request)
        return await self._through_outer(request, outer)

    async def _through_outer(
        self,
        request: Request,
        outer: Sequence[Any],
        commit: Callable[[Request, Job[Any] | None], Awaitable[Job[Any]]] | None = None,
    ) -> Job[Any]:
        """Pass ``request`` through the task's outer middleware to ``commit`` (default:
        :meth:`commit`; ``push_many`` gathers the requests instead, to write them at once)."""
        commit_ = self.commit if commit is None else commit
        task = request.task
        spec = task.spec
        when = self._display_time(request)
        # A replacement shows middleware the handle it updates in place (see _take_handle).
        old = self.scheduler.jobs.get(request.job_id) if request.replace else None
        held = None if old is None or old.running() or is_final(old.job) else old.job
        job: Job[Any] = held if held is not None else Job(request.job_id, when)
        args, kwargs = spec.call_args(request.arguments)
        port = task.port
        assert port is not None
        ctx = OuterContext(
            job=job,
            trigger=request.cron if request.cron is not None else when,
            runnable=Runnable(task.name, spec.func, args, kwargs, spec.options.run_mode),
            arguments=dict(spec.as_dict(request.arguments)),
            func_spec=spec.signature,
            is_force=request.force,
            is_persist=task.durable,
            is_replace=request.replace,
            state=task.state,
            route_options=spec.route_options,
            jobify_config=self._config,
            schedule_builder=ScheduleBuilder(port, request.arguments),
            request_state=RequestState(),
        )
        reached: Job[Any] | None = None

        async def innermost(c: OuterContext) -> Job[Any]:
            nonlocal reached
            reached = job
            # Middleware may have rewritten the arguments: bind them again, so a bad rewrite
            # is a TypeError here, at scheduling time, not a failure when the job runs.
            final = spec.bind((), dict(c.arguments))
            try:
                changed = bool(spec.as_dict(final) != spec.as_dict(request.arguments))
            except Exception:  # values whose comparison raises: keep what was asked
                changed = True
            requested = request.arguments if changed else None
            # A held handle moves over to the new job once it is committed (see commit).
            reached = await commit_(
                replace(request, arguments=final, requested=requested),
                None if job is held else job,
            )
            return reached

        await compose(outer, innermost)(ctx)
        if reached is not None:
            return reached  # the committed handle (a replaced job's own, updated in place)
        if job is held:
            return job  # a refused replacement: the job stays as it was
        # Refused: nothing is stored and nothing runs; the caller still gets its handle.
        finish(job, JobStatus.CANCELLED)
        log.info(
            "outer middleware refused job %r of task %r; nothing was scheduled",
            job.id,
            task.name,
            extra={"job_id": job.id, "task_name": task.name},
        )
        return job

    def _display_time(self, request: Request) -> datetime:
        if request.cron is None:
            assert request.exec_ts is not None
            return datetime.fromtimestamp(request.exec_ts, request.tz)
        assert request.parser is not None
        return datetime.fromtimestamp(
            _first_fire(request.cron, request.parser, request.tz, self.clock()), request.tz
        )

    async def commit(self, request: Request, job: Job[Any] | None = None) -> Job[Any]:
        """Own the requested job: commit it if durable, then arm it; returns its handle."""
        if not self.open:
            self._check_open()
        job_id = request.job_id
        scheduler = self.scheduler
        existing = None
        if request.chosen_id:  # a generated id is new everywhere: nothing to wait for
            while (pending := self._inflight.get(job_id)) is not None:
                if not request.replace:
                    raise DuplicateJobError(job_id)
                await asyncio.shield(pending)  # the last of several replacing callers wins
                self._check_open()
            existing = scheduler.jobs.get(job_id)
            if existing is not None and not request.replace:
                raise DuplicateJobError(job_id)
        if self.shared is not None and request.task.durable:
            return await self._commit_shared(self.shared, request, job)
        entry = self._entry(request, existing, job if job is not None else Job(job_id))
        recorder = entry.recorder
        if not isinstance(recorder, StoreRecorder):
            if existing is not None:
                scheduler.retire(existing)
                _take_handle(entry, existing)
                scheduler.handover(existing, replaced=True)
            self._own(entry)
            return entry.job
        record = recorder.record(entry)  # a SerializationError here: nothing has changed
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[job_id] = done
        if existing is not None:
            scheduler.retire(existing)
        try:
            await recorder.save_record(record)
        except asyncio.CancelledError:
            # The caller was cancelled after the write was issued: the storage commits it
            # anyway, so the job is owned as if the call had returned (memory and storage
            # must agree), and the cancellation goes on to the caller.
            self._landed(entry, existing, done)
            raise
        except BaseException:
            if existing is not None:
                scheduler.handover(existing, replaced=False)
            del self._inflight[job_id]
            done.set_result(None)
            raise
        self._landed(entry, existing, done)
        return entry.job

    def _landed(
        self, entry: JobEntry, existing: JobEntry | None, done: asyncio.Future[None]
    ) -> None:
        """The record of ``entry`` is committed (or will be): own and arm it."""
        del self._inflight[entry.job.id]
        done.set_result(None)
        if existing is not None:
            _take_handle(entry, existing)
            self.scheduler.handover(existing, replaced=True)
        if self.scheduler.stopped:
            # The app stopped while the record was being committed: it is stored and runs
            # after the next start. Not an error: a durable call returns once committed.
            entry.owned = False
            entry.parked = True
            park(entry.job, JobStatus.SCHEDULED)
            return
        self._own(entry)

    async def _commit_shared(
        self, shared: SharedWorker, request: Request, job: Job[Any] | None
    ) -> Job[Any]:
        """Write the job into the shared store (its insert notifies every worker) and return
        a handle that follows it wherever it runs."""
        job_id = request.job_id
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[job_id] = done
        try:
            kept: tuple[int, int, float | None] = (0, 0, None)
            cron = request.cron
            if cron is not None and request.replace and not request.declared:
                # A replaced cron keeps its counters, and its next fire when the schedule is
                # the same (as in one process).
                current = await shared.storage.get(job_id)
                if current is not None:
                    doc = decode_trigger(current.trigger)
                    if doc.cron is not None and doc.cron.start_date == cron.start_date:
                        same = doc.cron.expression == cron.expression and doc.tz == request.tz
                        kept = (doc.runs, doc.failures, current.exec_at if same else None)
            previous = shared.remote.get(job_id) if request.replace else None
            if previous is not None and not is_final(previous.job):
                handle = previous.job  # replaced in place: the caller's handle follows it
                handle.status = JobStatus.SCHEDULED
            else:
                handle = job if job is not None else Job(job_id)
            entry = self._entry(request, None, handle, shared.recorder)
            entry.runs, entry.failures = kept[0], kept[1]
            if kept[2] is not None:
                entry.exec_ts = kept[2]
            record = shared.records.record(entry)  # a SerializationError: nothing changed
            # The handle listens before the record is written: a fast worker's "finished"
            # notification may arrive before the write's own acknowledgement does.
            job_handle = shared.handle_for(record, request.task, handle)
            try:
                await shared.storage.save(record)
            except BaseException:
                shared.forget(job_id)
                raise
        finally:
            del self._inflight[job_id]
            done.set_result(None)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "job %r of task %r written to the shared store",
                job_id,
                request.task.name,
                extra={"job_id": job_id, "task_name": request.task.name},
            )
        return job_handle

    def _identical_record(self, request: Request, current: JobRecord) -> bool:
        """Whether the stored record is exactly the job ``request`` asks for."""
        shared = self.shared
        assert shared is not None
        if current.task_name != request.task.name or current.status != "scheduled":
            return False
        try:
            doc = decode_trigger(current.trigger)
            stored = shared.records.decode(current, {request.task.name: request.task})
        except Exception:
            return False
        if doc.cron != request.cron or (
            request.cron is None and current.exec_at != request.exec_ts
        ):
            return False
        spec = request.task.spec
        try:
            return bool(spec.as_dict(stored.arguments) == spec.as_dict(request.arguments))
        except Exception:
            return False

    def _own(self, entry: JobEntry) -> None:
        self.scheduler.add(entry)
        self.scheduler.arm(entry)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "job %r of task %r scheduled for %s",
                entry.job.id,
                entry.task.name,
                entry.job.exec_at.isoformat(),
                extra={"job_id": entry.job.id, "task_name": entry.task.name},
            )

    def _entry(
        self,
        request: Request,
        existing: JobEntry | None,
        job: Job[Any],
        recorder: Recorder | None = None,
    ) -> JobEntry:
        task = request.task
        cron = request.cron
        runs = failures = 0
        exec_ts = request.exec_ts
        if cron is not None:
            assert request.parser is not None
            exec_ts = _first_fire(cron, request.parser, request.tz, self.clock())
            if (
                not request.declared
                and existing is not None
                and existing.cron is not None
                and existing.cron.start_date == cron.start_date
            ):
                # A replaced cron keeps its counters and, if its schedule is the same, its
                # next fire (spec: "the run counters and schedule offset are kept").
                runs, failures = existing.runs, existing.failures
                if existing.cron.expression == cron.expression and existing.tz == request.tz:
                    exec_ts = existing.exec_ts
                    if existing.running():
                        # That fire is running under the old job: the new one takes over
                        # from the fire after it, and never runs it again.
                        fire = datetime.fromtimestamp(exec_ts, request.tz)
                        exec_ts = request.parser.next_run(now=fire).timestamp()
        assert exec_ts is not None
        if task.spec.options.run_mode is RunMode.PROCESS:
            task.spec.process_ref()
            check_process_args(task.name, (), task.spec.as_dict(request.arguments))
        if recorder is None:
            recorder = (
                self._recorder if task.durable and self._recorder is not None else NULL_RECORDER
            )
        entry = JobEntry(
            task,
            job,
            request.arguments,
            exec_ts,
            request.tz,
            recorder,
            cron,
            request.parser,
            runs,
            failures,
        )
        if request.requested is not None:
            entry.requested = request.requested
        if request.declared:
            entry.declared = True
        return entry


def _take_handle(entry: JobEntry, existing: JobEntry) -> None:
    """``replace=True`` updates the replaced job's handle in place: the new ``entry`` takes
    it over (SCHEDULED), and the replaced entry ends with the fresh handle nobody holds.
    A run of the replaced job already under way keeps its handle for its own outcome."""
    handle = existing.job
    if existing.running() or is_final(handle):
        return
    fresh = entry.job
    existing.job = fresh
    entry.job = handle
    attach(handle, entry)
    handle.status = fresh.status


def _first_fire(cron: Cron, parser: CronParser, tz: tzinfo, now_ts: float) -> float:
    """The first fire of a new cron job: the first match after now, or at/after its
    ``start_date`` when that is later."""
    now = datetime.fromtimestamp(now_ts, tz)
    start = cron.start_date
    if start is not None:
        if start.tzinfo is None:
            start = localize(start, tz)
        if start > now:
            return parser.next_run(
                now=(start - timedelta(microseconds=1)).astimezone(tz)
            ).timestamp()
    return parser.next_run(now=now).timestamp()


def _identical(
    entry: JobEntry, task: Task, exec_ts: float | None, cron: Cron | None, arguments: Bound
) -> bool:
    """Whether a call asks for exactly the job ``entry`` already is."""
    if entry.task is not task or entry.cron != cron or entry.paused:
        return False
    if cron is None and entry.exec_ts != exec_ts:
        return False
    stored = entry.requested if entry.requested is not None else entry.arguments
    try:
        if type(stored) is type(arguments):
            return bool(stored == arguments)
        spec = task.spec
        return bool(spec.as_dict(stored) == spec.as_dict(arguments))
    except Exception:
        return False
