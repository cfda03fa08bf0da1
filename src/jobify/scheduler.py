"""Timers and the life of owned jobs: arm, fire, run, record the outcome, re-arm.

One ``loop.call_at`` per armed job; nothing polls. Timers are set from wall-clock instants
converted to loop time when armed. Two guards keep them honest about the wall clock:
- a timer that fires early by wall clock (monotonic/wall drift over long delays) re-arms;
- a watchdog, one timer a minute, compares the wall/monotonic offset and re-arms every timer
  when the wall clock jumped (NTP step, manual change, resume), so misfire policies apply to
  what the jump skipped.

Storage is reached only through the ``Persistence`` object (``persistence.py``); this module
never sees records, SQL or serializers.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from jobify.jobs import Job, JobStatus
from jobify.triggers import (
    MISFIRE_TOLERANCE,
    Cron,
    CronParser,
    due_fires,
    runs_for_misfire,
)

if TYPE_CHECKING:
    from jobify.execution import Executor
    from jobify.persistence import Persistence
    from jobify.router import Bound, Route

__all__ = ["JobEntry", "Scheduler"]

log = logging.getLogger("jobify.scheduler")

WATCHDOG_INTERVAL = 60.0
CLOCK_JUMP_THRESHOLD = 1.0
EARLY_TOLERANCE = 0.001
PREWAKE = 0.02
ON_TIME_SECONDS = MISFIRE_TOLERANCE.total_seconds()


def _not_begun(task: asyncio.Task[Any]) -> bool:
    """True while a task's coroutine has not started executing."""
    coro = task.get_coro()
    return inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED


class JobEntry:
    """The scheduler's side of one owned job: trigger state, timer and running task."""

    __slots__ = (
        "arguments",
        "cron",
        "durable",
        "exec_ts",
        "failures",
        "job",
        "missed_while_down",
        "parser",
        "requested",
        "route",
        "runs",
        "scheduler",
        "task",
        "timer",
        "tz",
    )

    def __init__(
        self,
        scheduler: Scheduler,
        route: Route[Any, Any],
        job: Job[Any],
        arguments: Bound,
        exec_ts: float,
        durable: bool,
        cron: Cron | None = None,
        parser: CronParser | None = None,
        tz: tzinfo | None = None,
        runs: int = 0,
        failures: int = 0,
    ) -> None:
        self.scheduler = scheduler
        self.route = route
        self.job = job
        self.arguments = arguments
        self.exec_ts = exec_ts
        self.durable = durable
        self.cron = cron
        self.parser = parser
        self.tz = tz
        self.runs = runs
        self.failures = failures
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        # The arguments as the caller gave them, when outer middleware changed them (None
        # otherwise): an identical re-schedule is judged against what the caller asked for.
        self.requested: Bound | None = None
        # Set for entries restored from storage: fires due at restore happened while the app
        # was down, so none of them is "merely late" (no tolerance applies).
        self.missed_while_down = False
        job._entry = self

    @property
    def cron_expression(self) -> str | None:
        return self.cron.expression if self.cron is not None else None

    async def cancel(self) -> None:
        await self.scheduler.cancel(self)


class _Landing:
    """One timer shared by the jobs due at one instant, for the last stretch of their wait."""

    __slots__ = ("entries", "handle")

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self.handle = handle
        self.entries: dict[JobEntry, None] = {}


class Scheduler:
    """Owns the armed jobs of one app and drives them through execution."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        persistence: Persistence | None,
        wall: Callable[[], float] = time.time,
        tz: tzinfo = UTC,
    ) -> None:
        self.loop = loop
        self.tz = tz
        self.executor = executor
        self.persistence = persistence
        self.wall = wall
        self.jobs: dict[str, JobEntry] = {}
        self._idle: asyncio.Event | None = None
        self._offset = wall() - loop.time()
        self._watchdog: asyncio.TimerHandle | None = None
        self._running = False
        # One bound method and one context for every timer: asyncio would otherwise copy the
        # context and we would bind a method per armed job (100k timers = ~20 MB of them).
        self._fire_cb = self._fire
        self._context = contextvars.copy_context()
        self._landings: dict[float, _Landing] = {}

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._offset = self.wall() - self.loop.time()
        self._watchdog = self.loop.call_later(WATCHDOG_INTERVAL, self._check_clock)

    async def drain(self, grace: float) -> None:
        """Stop starting runs; wait up to ``grace`` seconds for the running ones to end."""
        self._running = False
        for entry in list(self.jobs.values()):
            self._disarm(entry)
        running = [e.task for e in self.jobs.values() if e.task is not None and not e.task.done()]
        if running:
            await asyncio.wait(running, timeout=grace)

    async def stop(self) -> None:
        """Stop timers; cancel running jobs and wait for them. Durable records stay."""
        self._running = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        running: list[asyncio.Task[None]] = []
        for entry in list(self.jobs.values()):
            self._disarm(entry)
            if entry.task is not None and not entry.task.done():
                entry.task.cancel()
                running.append(entry.task)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for entry in list(self.jobs.values()):
            if not entry.job._final:
                entry.job._finish(JobStatus.CANCELLED)
        self.jobs.clear()
        if self._idle is not None:
            self._idle.set()

    # -- registry ------------------------------------------------------------------------

    def add(self, entry: JobEntry) -> None:
        self.jobs[entry.job.id] = entry
        if self._idle is not None:
            self._idle.clear()

    def _remove(self, entry: JobEntry) -> bool:
        """Forget the entry if it is still the one registered under its id."""
        job_id = entry.job.id
        if self.jobs.get(job_id) is entry:
            del self.jobs[job_id]
            if not self.jobs and self._idle is not None:
                self._idle.set()
            return True
        return False

    async def wait_idle(self, timeout: float | None) -> None:
        if not self.jobs:
            return
        if self._idle is None:
            self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return

    # -- timers --------------------------------------------------------------------------

    def arm(self, entry: JobEntry) -> None:
        """Set the entry's timer for ``entry.exec_ts`` (or start it now if due)."""
        if not self._running:
            return
        delay = entry.exec_ts - self.wall()
        if delay <= 0:
            entry.timer = None
            self._start(entry)
            return
        if delay > 2 * PREWAKE:
            # Linux lets an epoll wait overrun by 0.1% of its length (timer slack): a
            # one-second wait ends ~1 ms late. Stop PREWAKE short; _fire then finishes the
            # wait with a short timer whose overrun is a few microseconds.
            entry.timer = self.loop.call_at(
                self.loop.time() + delay - PREWAKE, self._fire_cb, entry, context=self._context
            )
            return
        # The last stretch: jobs due at the same instant (crons on the same second) share one
        # timer, so a fan-out of many jobs costs one timer callback, not one per job.
        landing = self._landings.get(entry.exec_ts)
        if landing is None:
            handle = self.loop.call_at(
                self.loop.time() + delay, self._land, entry.exec_ts, context=self._context
            )
            landing = self._landings[entry.exec_ts] = _Landing(handle)
        landing.entries[entry] = None
        entry.timer = landing.handle

    def _disarm(self, entry: JobEntry) -> None:
        """Stop the entry's timer (its own, or its place in a shared landing)."""
        timer = entry.timer
        if timer is None:
            return
        entry.timer = None
        landing = self._landings.get(entry.exec_ts)
        if landing is not None and landing.handle is timer:
            landing.entries.pop(entry, None)
            if landing.entries:
                return
            del self._landings[entry.exec_ts]
        timer.cancel()

    def _land(self, exec_ts: float) -> None:
        landing = self._landings.pop(exec_ts, None)
        if landing is None:
            return
        early = exec_ts - self.wall() > EARLY_TOLERANCE
        for entry in landing.entries:
            entry.timer = None
            if early:  # see _fire
                self.arm(entry)
            else:
                self._start(entry)

    def _fire(self, entry: JobEntry) -> None:
        entry.timer = None
        if entry.exec_ts - self.wall() > EARLY_TOLERANCE:
            # The monotonic clock ran ahead of the wall clock (drift or a backward jump):
            # never run early, wait the rest by wall time.
            self.arm(entry)
            return
        self._start(entry)

    def _start(self, entry: JobEntry) -> None:
        run = self._run_once if entry.cron is None else self._run_cron
        entry.task = self.loop.create_task(run(entry))

    def _check_clock(self) -> None:
        offset = self.wall() - self.loop.time()
        jump = offset - self._offset
        self._offset = offset
        if abs(jump) > CLOCK_JUMP_THRESHOLD:
            log.warning("wall clock jumped by %+.3fs; re-arming %d timers", jump, len(self.jobs))
            self.rearm_all()
        if self._watchdog is not None:
            # Called early (not by its own timer): keep a single watchdog, never two.
            self._watchdog.cancel()
            self._watchdog = None
        if self._running:
            self._watchdog = self.loop.call_later(WATCHDOG_INTERVAL, self._check_clock)

    def rearm_all(self) -> None:
        """Re-arm every waiting timer from wall time (after a clock jump)."""
        for entry in list(self.jobs.values()):
            if entry.timer is not None:
                self._disarm(entry)
                self.arm(entry)

    # -- cancel --------------------------------------------------------------------------

    async def cancel(self, entry: JobEntry) -> None:
        job = entry.job
        task = entry.task
        if job._final or (task is not None and not task.done() and not _not_begun(task)):
            return
        if self.jobs.get(job.id) is not entry:
            return
        self._disarm(entry)
        if task is not None and not task.done():
            # Due (e.g. just pushed) but its task has not taken a step yet: the job has not
            # run, so cancelling is still "before it runs"; the coroutine never starts.
            task.cancel()
            entry.task = None
        self._remove(entry)
        if entry.durable and self.persistence is not None:
            await self.persistence.delete(job.id)
        job._finish(JobStatus.CANCELLED)

    def replace(self, old: JobEntry) -> None:
        """Retire ``old`` because a new job takes its id (the caller stores the new one)."""
        self._disarm(old)
        if self.jobs.get(old.job.id) is old:
            del self.jobs[old.job.id]
        if old.task is None or old.task.done():
            old.job._finish(JobStatus.CANCELLED)

    # -- running -------------------------------------------------------------------------

    async def _run_once(self, entry: JobEntry) -> None:
        job = entry.job
        job.status = JobStatus.RUNNING
        status, result, exc = await self.executor.execute(entry)
        owned = self._remove(entry)
        if owned and entry.durable and self.persistence is not None:
            self.persistence.delete_soon(job.id)
        job._finish(status, result, exc)

    async def _run_cron(self, entry: JobEntry) -> None:
        cron = entry.cron
        parser = entry.parser
        assert cron is not None and parser is not None and entry.tz is not None
        job = entry.job
        wall = self.wall()
        fire = datetime.fromtimestamp(entry.exec_ts, entry.tz)
        nxt = parser.next_run(now=fire)
        if (
            not entry.missed_while_down
            and wall - entry.exec_ts <= ON_TIME_SECONDS
            and nxt.timestamp() > wall
        ):
            # The common case, kept cheap for many crons firing at once: one fire, on time.
            count = runs = 1
        else:
            now = datetime.fromtimestamp(wall, entry.tz)
            count, latest, nxt = due_fires(parser, fire, now)
            tolerance = timedelta(0) if entry.missed_while_down else MISFIRE_TOLERANCE
            entry.missed_while_down = False
            runs = runs_for_misfire(cron.misfire_policy, count, latest, now, tolerance)
        if count > 1 or runs != count:
            log.info(
                "cron job %r missed %d fire(s); policy %s runs %d now",
                job.id,
                count - (1 if runs else 0),
                getattr(cron.misfire_policy, "name", cron.misfire_policy),
                runs,
            )
        done_fire = fire
        for i in range(runs):
            job.status = JobStatus.RUNNING
            status, result, exc = await self.executor.execute(entry)
            entry.runs += 1
            entry.failures = 0 if status is JobStatus.SUCCESS else entry.failures + 1
            if entry.failures >= cron.max_failures:
                log.error(
                    "cron job %r failed %d times in a row; it is now PERMANENTLY_FAILED",
                    job.id,
                    entry.failures,
                )
                if self._remove(entry) and entry.durable and self.persistence is not None:
                    await self.persistence.mark_failed(entry)
                job._finish(JobStatus.PERMANENTLY_FAILED, None, exc)
                return
            if cron.max_runs != -1 and entry.runs >= cron.max_runs:
                if self._remove(entry) and entry.durable and self.persistence is not None:
                    await self.persistence.delete(job.id)
                job._finish(status, result, exc)
                return
            if self.jobs.get(job.id) is not entry:
                job._finish(status, result, exc)
                return
            job._resolve(status, result, exc)
            if i + 1 < runs and entry.durable and self.persistence is not None:
                # ALL runs several missed fires in a row: record progress fire by fire, so
                # a crash half-way repeats only the run in progress, not the finished ones.
                done_fire = parser.next_run(now=done_fire)
                entry.exec_ts = done_fire.timestamp()
                await self.persistence.save(entry)
        if self.jobs.get(job.id) is not entry:
            return
        entry.exec_ts = nxt.timestamp()
        if runs == 0:
            job.status = JobStatus.SCHEDULED
        if entry.durable and self.persistence is not None:
            # Counted after each run and committed before the next is armed: a crash during
            # a run repeats that run after restart (at-least-once), never skips it.
            await self.persistence.save(entry)
        entry.task = None
        self.arm(entry)
