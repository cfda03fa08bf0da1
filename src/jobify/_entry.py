"""The core's records of work: a compiled :class:`Task` and a :class:`JobEntry` per owned job.

A ``Task`` is a registered task as the core runs it, built once at startup: its spec, its
execution pipeline, its outer middleware chain and the state its jobs see. A ``JobEntry`` is
the scheduler's side of one job this process owns: trigger state, counters, timer, the run in
progress, and the :class:`Recorder` that keeps it durable (a null one for jobs that are not).

The entry is plain data plus two small interfaces it is handed: the :class:`EntryControl`
that steers it (the scheduler) and its ``Recorder``. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from jobify._builder import Bound, ScheduleBuilder, SubmitPort
from jobify._context import CronContext, State
from jobify._jobs import Job, JobStatus, attach
from jobify._triggers import Cron, CronParser

if TYPE_CHECKING:
    from jobify._task import TaskSpec

__all__ = ["EntryControl", "JobEntry", "Outcome", "OwnsWhole", "Recorder", "Task", "not_begun"]

Outcome = tuple[JobStatus, Any, BaseException | None, int]
"""One execution's result: ``(status, value, exception, attempts)``."""


class Recorder(Protocol):
    """Keeps one entry's record in step with it (the durable one, or a null one).

    ``owns_between_runs``: whether this process still owns a recurring job after a fire has
    been recorded (an embedded store: yes; a shared store: no, the claim ends with the
    completion and any worker may claim the next fire).
    """

    durable: bool
    owns_between_runs: bool

    async def save(self, entry: JobEntry) -> None:
        """Insert or replace the entry's record (status from the entry); once committed."""
        ...

    async def progress(self, entry: JobEntry) -> None:
        """Record that some of a series of missed fires ran (``MisfirePolicy.ALL``)."""
        ...

    async def delete(self, entry: JobEntry) -> None:
        """Delete the entry's record; return once committed."""
        ...

    def done(self, entry: JobEntry, outcome: Outcome) -> Outcome:
        """A one-shot job ran: let its record go (with the next group commit). Returns the
        outcome to finish with (a value a remote waiter cannot receive makes it FAILED)."""
        ...

    async def advance(self, entry: JobEntry, outcome: Outcome | None) -> bool:
        """A cron fire ran (``outcome``; None: its due fires were skipped): commit the
        counters and the next fire. False when this process turns out not to own the job
        any more."""
        ...

    async def finish(self, entry: JobEntry, status: str, outcome: Outcome | None) -> None:
        """Keep (or drop) the record of a cron job that ended for good, with ``status``."""
        ...

    def holds(self, entry: JobEntry) -> bool:
        """Whether a run (or a retry attempt) of the entry may start now without asking the
        store. Always, for a store this process owns whole; for a shared store, while the
        claim's lease is known to be fresh."""
        ...

    async def confirm(self, entry: JobEntry) -> bool:
        """Ask the store whether the entry is still this process's (``holds`` was False: the
        run starts late). False: it is not, and the run must not start."""
        ...


class OwnsWhole:
    """The lease part of a recorder of a store this process owns whole: every run may start."""

    def holds(self, entry: JobEntry) -> bool:
        return True

    async def confirm(self, entry: JobEntry) -> bool:
        return True


class EntryControl(Protocol):
    """What steers an entry from its job handle (the scheduler)."""

    async def cancel(self, entry: JobEntry) -> None: ...
    async def pause(self, entry: JobEntry) -> None: ...
    async def resume(self, entry: JobEntry) -> None: ...


class Task:
    """A registered task, compiled at startup: what the core needs to run its jobs."""

    __slots__ = ("control", "durable", "execute", "name", "outer", "port", "spec", "state")

    def __init__(
        self,
        spec: TaskSpec,
        name: str,
        durable: bool,
        state: State,
    ) -> None:
        self.spec = spec
        self.name = name
        self.durable = durable
        """New jobs of this task are persisted (the task is durable and the app has storage)."""
        self.state = state
        self.execute: Callable[[JobEntry], Awaitable[Outcome]] = _not_compiled
        self.outer: Sequence[Any] | None = None
        """Its outer middleware, outermost first (None: none), composed per call."""
        self.port: SubmitPort[Any] | None = None
        self.control: EntryControl = _NOT_STARTED
        """What steers this task's jobs from their handles (the app's scheduler)."""

    def __repr__(self) -> str:
        return f"<Task {self.name!r}>"


class _NotStarted:
    """The control of a task whose app has not started (no job of it exists yet)."""

    async def cancel(self, entry: JobEntry) -> None:
        raise RuntimeError("the app has not started")

    pause = resume = cancel


_NOT_STARTED = _NotStarted()


async def _not_compiled(entry: JobEntry) -> Outcome:
    raise RuntimeError(f"task {entry.task.name!r} has no pipeline yet")


class _Rare:
    """The parts of an entry most jobs never use (replaced, declared, cron history, a stop),
    kept apart so that 100,000 waiting one-shot jobs do not each carry them."""

    __slots__ = ("declared", "handover", "last_fire", "last_outcome", "parked", "requested")

    def __init__(self) -> None:
        self.handover: asyncio.Future[None] | None = None
        self.parked = False
        self.declared = False
        self.last_outcome: Outcome | None = None
        self.last_fire: float | None = None
        self.requested: Bound | None = None


_NO_RARE = _Rare()  # read-only defaults (never written: see JobEntry._rare_)


class JobEntry:
    """The scheduler's side of one owned job: trigger state, timer and running task."""

    __slots__ = (
        "_rare",
        "arguments",
        "cron",
        "exec_ts",
        "failures",
        "job",
        "missed",
        "owned",
        "parser",
        "paused",
        "recorder",
        "run",
        "runs",
        "task",
        "timer",
        "tz",
    )

    def __init__(
        self,
        task: Task,
        job: Job[Any],
        arguments: Bound,
        exec_ts: float,
        tz: tzinfo,
        recorder: Recorder,
        cron: Cron | None = None,
        parser: CronParser | None = None,
        runs: int = 0,
        failures: int = 0,
    ) -> None:
        self.task = task
        self.job = job
        self.arguments = arguments
        self.exec_ts = exec_ts
        """Epoch seconds of the next (or current) fire."""
        self.tz = tz
        """The zone the job's times are shown in (and a cron evaluated in)."""
        self.recorder = recorder
        self.cron = cron
        self.parser = parser
        self.runs = runs
        self.failures = failures
        self.timer: asyncio.TimerHandle | None = None
        self.run: asyncio.Task[None] | None = None
        self.owned = True
        """This process may run the job and write its outcome. False once it was replaced,
        cancelled or finished, or the app stopped: every step after an ``await`` checks it."""
        self.paused = False
        self.missed = False
        """Fires due at the next run step were missed (restored after downtime, resumed
        after a pause, after a clock step): no lateness tolerance applies to them."""
        self._rare = _NO_RARE
        attach(job, self)

    def _rare_(self) -> _Rare:
        rare = self._rare
        if rare is _NO_RARE:
            rare = self._rare = _Rare()
        return rare

    @property
    def handover(self) -> asyncio.Future[None] | None:
        """Set while a replacement of this job is being committed: its outcome decides
        whether this entry is still owned."""
        return self._rare.handover

    @handover.setter
    def handover(self, value: asyncio.Future[None] | None) -> None:
        self._rare_().handover = value

    @property
    def parked(self) -> bool:
        """The app stopped while this durable job was stored and waiting: it runs after the
        next start (its handle can still cancel it while the storage is open)."""
        return self._rare.parked

    @parked.setter
    def parked(self, value: bool) -> None:
        self._rare_().parked = value

    @property
    def declared(self) -> bool:
        """A cron declared on the task (``@app.task(cron=...)``), not made by a call."""
        return self._rare.declared

    @declared.setter
    def declared(self, value: bool) -> None:
        self._rare_().declared = value

    @property
    def last_outcome(self) -> Outcome | None:
        """The outcome of the latest fire of a cron job (None before one in this process)."""
        return self._rare.last_outcome

    @last_outcome.setter
    def last_outcome(self, value: Outcome | None) -> None:
        self._rare_().last_outcome = value

    @property
    def last_fire(self) -> float | None:
        """Epoch seconds of the last fire that ran (for the wall-clock step rule)."""
        return self._rare.last_fire

    @last_fire.setter
    def last_fire(self, value: float | None) -> None:
        self._rare_().last_fire = value

    @property
    def requested(self) -> Bound | None:
        """The arguments as the caller gave them, when outer middleware changed them (None
        otherwise): an identical re-schedule is judged against what the caller asked for."""
        return self._rare.requested

    @requested.setter
    def requested(self, value: Bound | None) -> None:
        self._rare_().requested = value

    def __repr__(self) -> str:
        return f"<JobEntry {self.job.id!r} of {self.task.name!r}>"

    @property
    def cron_expression(self) -> str | None:
        return self.cron.expression if self.cron is not None else None

    @property
    def record_status(self) -> str:
        """The status its record is saved with."""
        return JobStatus.PAUSED.value if self.paused else JobStatus.SCHEDULED.value

    def running(self) -> bool:
        """A run of this job has started (its task took a step) and not finished."""
        run = self.run
        return run is not None and not run.done() and not not_begun(run)

    def schedule_builder(self) -> ScheduleBuilder[Any]:
        port = self.task.port
        if port is None:
            raise AttributeError("this job's task is not connected to a running app")
        return ScheduleBuilder(port, self.arguments)

    def cron_context(self) -> CronContext | None:
        cron = self.cron
        return None if cron is None else CronContext(cron, self.runs, self.failures)

    async def cancel(self) -> None:
        await self.task.control.cancel(self)

    async def pause(self) -> None:
        await self.task.control.pause(self)

    async def resume(self) -> None:
        await self.task.control.resume(self)


def not_begun(task: asyncio.Task[Any]) -> bool:
    """True while a task's coroutine has not started executing."""
    coro = task.get_coro()
    return inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
