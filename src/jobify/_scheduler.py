"""Timers and the life of owned jobs: arm, fire, run, record the outcome, re-arm.

One ``loop.call_at`` per armed job; nothing polls. Timers are set from wall-clock instants
converted to loop time when armed. The wall clock is watched for steps (NTP, a manual change,
a VM resume): a timer that fires compares the wall/monotonic offset, a platform notification
reports steps where there is one (:mod:`jobify._clock`), and a watchdog (one timer a minute)
is the portable fallback. After a step every waiting job is planned again from the new time.

The scheduler drives two small ports it is handed: a job's ``Task.execute`` runs it, its
``Recorder`` keeps it durable (a null recorder for jobs that are not), and a :class:`RunLog`
keeps the run history. It never sees records, SQL or serializers.

Ownership: an entry is run and its outcome written only while ``entry.owned``. Every step that
follows an ``await`` checks it (through :meth:`Scheduler.settled`, which also waits out a
replacement being committed), so a job that was replaced, cancelled or stopped meanwhile is
never re-armed, saved or deleted by its old run.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from jobify._entry import JobEntry, Outcome, not_begun
from jobify._jobs import JobStatus, end_after_last_run, finish, is_final, park, resolve
from jobify._timers import Timers
from jobify._triggers import (
    MAX_CATCH_UP_RUNS,
    MISFIRE_TOLERANCE,
    MisfirePolicy,
    fire_after_step,
    latest_due_fire,
    runs_for_misfire,
)
from jobify.exceptions import (
    ApplicationStateError,
    CronExhaustedError,
    JobCancelledError,
    StorageError,
)

__all__ = ["RunLog", "Scheduler"]

log = logging.getLogger("jobify.scheduler")

ON_TIME_SECONDS = MISFIRE_TOLERANCE.total_seconds()
SAVE_RETRY_FIRST, SAVE_RETRY_MAX = 0.5, 60.0


class RunLog(Protocol):
    """Where finished runs are reported (the run history, or nowhere)."""

    def record(
        self, entry: JobEntry, scheduled: float, started: float, finished: float, outcome: Outcome
    ) -> None: ...


class Scheduler:
    """Owns the armed jobs of one app and drives them through execution."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float],
        run_log: RunLog,
        capacity: int | None = None,
    ) -> None:
        self.loop = loop
        self.capacity = capacity
        """The most runs at once (None: no limit); due jobs beyond it wait their turn."""
        self._active = 0
        self._queued: collections.deque[JobEntry] = collections.deque()
        self.on_release: Callable[[], None] | None = None
        """Called whenever a job stops being owned (a shared worker then has room to claim)."""
        self.clock = clock
        self.run_log = run_log
        self.jobs: dict[str, JobEntry] = {}
        self._idle: asyncio.Event | None = None
        self._running = False
        self._stopped = False
        self._saving: dict[JobEntry, asyncio.Task[None]] = {}
        self.timers = Timers(loop, clock, self._start, self._stepped)

    @property
    def running(self) -> bool:
        """Timers fire and runs start (between ``start()`` and ``drain()``/``stop()``)."""
        return self._running

    @property
    def stopped(self) -> bool:
        """``drain()`` or ``stop()`` was called: this scheduler takes no more jobs."""
        return self._stopped

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the clock guards and arm every job owned so far (restored ones included)."""
        self._running = True
        self.timers.start()
        for entry in list(self.jobs.values()):
            self.arm(entry)

    async def drain(self, grace: float) -> None:
        """Stop starting runs; wait up to ``grace`` seconds for the running ones to end."""
        self._running = False
        self._stopped = True
        for entry in list(self.jobs.values()):
            self.timers.disarm(entry)
        running = [e.run for e in self.jobs.values() if e.run is not None and not e.run.done()]
        if running:
            await asyncio.wait(running, timeout=grace)

    async def stop(self) -> None:
        """Stop timers; cancel running jobs and wait for them.

        Durable records stay in storage: those jobs run after the next start, and their
        handles keep the status SCHEDULED (or PAUSED) with their waiters woken; a cron job
        that is not durable keeps SCHEDULED too (and its last result); a one-shot job that is
        not durable ends CANCELLED. Running jobs cut short are named in one log line.
        """
        self._running = False
        self._stopped = True
        self.timers.stop()
        running: list[asyncio.Task[Any]] = []
        cut: list[JobEntry] = []
        for entry in list(self.jobs.values()):
            self.timers.disarm(entry)
            if entry.run is not None and not entry.run.done():
                entry.run.cancel()
                running.append(entry.run)
                cut.append(entry)
        if cut:
            _log_cut(cut)
        running.extend(t for t in self._saving.values() if not t.done())
        for task in self._saving.values():
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for entry in list(self.jobs.values()):
            entry.owned = False
            job = entry.job
            if is_final(job):
                continue
            if entry.recorder.durable or entry.cron is not None:
                entry.parked = True
                park(job, JobStatus.PAUSED if entry.paused else JobStatus.SCHEDULED)
            else:
                finish(job, JobStatus.CANCELLED)
        self.jobs.clear()
        if self._idle is not None:
            self._idle.set()

    # -- registry ------------------------------------------------------------------------

    def add(self, entry: JobEntry) -> None:
        self.jobs[entry.job.id] = entry
        if self._idle is not None:
            self._idle.clear()

    def _release(self, entry: JobEntry) -> None:
        """This process no longer owns the entry."""
        entry.owned = False
        job_id = entry.job.id
        if self.jobs.get(job_id) is entry:
            del self.jobs[job_id]
            if not self.jobs and self._idle is not None:
                self._idle.set()
            if self.on_release is not None:
                self.on_release()

    def drop(self, entry: JobEntry) -> None:
        """Let go of a job that was taken away before it started (a shared store's claim
        withdrawn: the job was cancelled, paused or replaced elsewhere)."""
        if entry.running() or not entry.owned:
            return
        self._stop_not_begun(entry)
        self._release(entry)
        finish(entry.job, JobStatus.CANCELLED)

    def move(self, entry: JobEntry, exec_ts: float) -> None:
        """Re-arm a waiting job for another time (moved elsewhere)."""
        if entry.running() or not entry.owned:
            return
        self.timers.disarm(entry)
        entry.exec_ts = exec_ts
        self.arm(entry)

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no job is owned; False if ``timeout`` passed first."""
        if not self.jobs:
            return True
        if self._idle is None:
            self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def settled(self, entry: JobEntry) -> bool:
        """Whether the entry is still owned, once any replacement of it being committed has
        been decided. Call it after every ``await`` before acting on the entry."""
        while entry.handover is not None:
            await asyncio.shield(entry.handover)
        return entry.owned

    # -- timers --------------------------------------------------------------------------

    def arm(self, entry: JobEntry) -> None:
        """Set the entry's timer for ``entry.exec_ts`` (or start it now if due)."""
        if self._running and entry.owned and not entry.paused:
            self.timers.arm(entry)

    def _stop_not_begun(self, entry: JobEntry) -> bool:
        """Disarm the entry and cancel its run if that has not taken a step yet. False when
        a run is under way (it cannot be taken back)."""
        self.timers.disarm(entry)
        run = entry.run
        if run is not None and not run.done():
            if not not_begun(run):
                return False
            # Due (e.g. just pushed) but its task has not taken a step: the job has not run,
            # so this is still "before it runs"; the coroutine never starts.
            run.cancel()
            entry.run = None
        return True

    def _start(self, entry: JobEntry) -> None:
        if self.capacity is not None:
            if self._active >= self.capacity:
                self._queued.append(entry)
                return
            self._active += 1
        run = self._run_once if entry.cron is None else self._run_cron
        task = entry.run = self.loop.create_task(run(entry))
        if self.capacity is not None:
            task.add_done_callback(self._slot_freed)

    def _slot_freed(self, _task: asyncio.Task[None]) -> None:
        self._active -= 1
        while self._queued and self._running:
            entry = self._queued.popleft()
            if entry.owned and not entry.paused and entry.timer is None and entry.run is None:
                self._start(entry)
                return

    def check_clock(self) -> None:
        """Look for a wall-clock step now (after a resume from suspend, say)."""
        self.timers.check_clock()

    def _stepped(self, jump: float) -> None:
        """The wall clock stepped by ``jump`` seconds: plan every waiting job again."""
        log.warning(
            "wall clock stepped by %+.3fs; planning %d job(s) again from the new time",
            jump,
            len(self.jobs),
            extra={"clock_step": jump},
        )
        now = self.clock()
        for entry in list(self.jobs.values()):
            if entry.paused or entry.running():
                continue  # a run in progress re-plans when it ends (see _run_cron)
            self.timers.disarm(entry)
            if entry.cron is not None:
                self._replan(entry, now, jump)
            self.arm(entry)

    def _replan(self, entry: JobEntry, now: float, jump: float) -> None:
        """A cron's next fire after a wall-clock step (see ``fire_after_step``)."""
        assert entry.parser is not None
        entry.exec_ts, missed = fire_after_step(
            entry.parser, entry.tz, entry.exec_ts, entry.last_fire, now, jump
        )
        if jump > 0:
            entry.missed = missed

    # -- control -------------------------------------------------------------------------

    async def cancel(self, entry: JobEntry) -> None:
        """Cancel a job; return once its removal is committed. A run under way is stopped
        (see :meth:`stop_running`)."""
        job = entry.job
        if not await self.settled(entry):
            if entry.parked:
                await self._cancel_parked(entry)
            return
        if is_final(job):
            return
        if not self._stop_not_begun(entry):
            await self._cancel_running(entry)
            return
        self._release(entry)
        try:
            await entry.recorder.delete(entry)
        except BaseException:
            self._reinstate(entry)
            raise
        finish(job, JobStatus.CANCELLED)
        log.info("job %r cancelled", job.id, extra={"job_id": job.id, "task_name": entry.task.name})

    async def _cancel_running(self, entry: JobEntry) -> None:
        """Cancel a job whose run is under way: its record goes first (so nothing runs it
        again, not after a restart), then the run is stopped."""
        self._release(entry)
        try:
            await entry.recorder.delete(entry)
        except BaseException:
            self._reinstate(entry)
            raise
        await self.stop_running(entry)

    async def stop_running(self, entry: JobEntry) -> None:
        """Stop a run under way of a job that is cancelled (here, or its record removed
        elsewhere): ``asyncio.CancelledError`` is raised in the run, which reaches a ``MAIN``
        body, ends a ``PROCESS`` job's child and leaves a ``THREAD`` job's thread to finish
        on its own; the outcome is CANCELLED whatever the body does. A cron job ends as a
        whole. Returns once the run has ended."""
        run = entry.run
        self._release(entry)
        if run is not None and not run.done() and not is_final(entry.job):
            entry.stopping = True
            run.cancel()
            await asyncio.wait([run])  # never cancels the run if this waiter is cancelled
        if not is_final(entry.job):  # (a cron whose fire ended just now: it ends here)
            finish(entry.job, JobStatus.CANCELLED, None, _cancelled_error(entry))
        log.info(
            "job %r cancelled while running",
            entry.job.id,
            extra={"job_id": entry.job.id, "task_name": entry.task.name},
        )

    def _cancelled_outcome(self, entry: JobEntry) -> Outcome:
        """The outcome of a run stopped by a cancel (the run's own task stays uncancelled)."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()
        return JobStatus.CANCELLED, None, _cancelled_error(entry), 1

    async def _cancel_parked(self, entry: JobEntry) -> None:
        """Cancel a durable job left stored by a stopped app: only its record can go."""
        try:
            await entry.recorder.delete(entry)
        except StorageError:
            raise ApplicationStateError(
                f"the app has shut down and its storage is closed: job {entry.job.id!r} stays "
                "stored and runs at the next start; cancel it then"
            ) from None
        entry.parked = False
        finish(entry.job, JobStatus.CANCELLED)

    def _reinstate(self, entry: JobEntry) -> None:
        """Own an entry again after a change of it could not be committed."""
        entry.owned = True
        if entry.parked:
            entry.parked = False
        self.add(entry)
        if entry.run is None or entry.run.done():
            self.arm(entry)

    async def pause(self, entry: JobEntry) -> None:
        """Stop the job from firing (a run under way finishes); persisted."""
        if not await self.settled(entry):
            if entry.parked:
                raise ApplicationStateError(
                    f"the app has shut down: job {entry.job.id!r} cannot be paused now"
                )
            return
        if entry.paused or is_final(entry.job):
            return
        entry.paused = True
        self._stop_not_begun(entry)
        if not entry.running():
            entry.job.status = JobStatus.PAUSED
        try:
            await entry.recorder.save(entry)
        except BaseException:
            entry.paused = False
            if entry.job.status is JobStatus.PAUSED:
                entry.job.status = JobStatus.SCHEDULED
            if entry.owned:
                self.arm(entry)
            raise
        log.info("job %r paused", entry.job.id, extra=_extra(entry))

    async def resume(self, entry: JobEntry) -> None:
        """Let a paused job fire again; a cron's fires missed meanwhile are misfires."""
        if not await self.settled(entry):
            if entry.parked:
                raise ApplicationStateError(
                    f"the app has shut down: job {entry.job.id!r} cannot be resumed now"
                )
            return
        if not entry.paused:
            return
        entry.paused = False
        if entry.cron is not None and entry.exec_ts < self.clock():
            entry.missed = True
        running = entry.running()
        if not running:
            entry.job.status = JobStatus.SCHEDULED
        try:
            await entry.recorder.save(entry)
        except BaseException:
            entry.paused = True
            if not running:
                entry.job.status = JobStatus.PAUSED
            raise
        log.info("job %r resumed", entry.job.id, extra=_extra(entry))
        if entry.owned and not entry.running():
            self.arm(entry)

    def run_now(self, entry: JobEntry) -> bool:
        """Move a waiting one-shot job to now (False if it is running, paused or a cron)."""
        if entry.cron is not None or entry.paused or entry.running() or not entry.owned:
            return False
        self.timers.disarm(entry)
        entry.exec_ts = min(entry.exec_ts, self.clock())
        self.arm(entry)
        return True

    # -- replacing -----------------------------------------------------------------------

    def retire(self, old: JobEntry) -> asyncio.Future[None]:
        """Start replacing ``old``: it stops firing, and a run of it that has not begun is
        called off. Until :meth:`handover` decides, its own steps wait (see :meth:`settled`)."""
        self._stop_not_begun(old)
        done: asyncio.Future[None] = self.loop.create_future()
        old.handover = done
        return done

    def handover(self, old: JobEntry, replaced: bool) -> None:
        """Finish replacing ``old``: it is gone (``replaced``), or it is owned again."""
        done, old.handover = old.handover, None
        if replaced:
            self._release(old)
            if not old.running() and not is_final(old.job):
                finish(old.job, JobStatus.CANCELLED)
        elif old.owned and (old.run is None or old.run.done()):
            self.arm(old)
        if done is not None and not done.done():
            done.set_result(None)

    # -- running -------------------------------------------------------------------------

    # A run is bracketed by two plain calls around ``await entry.task.execute(entry)``, not
    # wrapped in a coroutine of its own: one coroutine frame less per run (the hot path).

    def _began(self, entry: JobEntry) -> float:
        """A run starts: RUNNING, logged; returns its start time."""
        entry.job.status = JobStatus.RUNNING
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job %r started", entry.job.id, extra=_extra(entry))
        return self.clock()

    def _ran(self, entry: JobEntry, scheduled: float, started: float, outcome: Outcome) -> None:
        """A run ended: recorded in the run history, logged."""
        finished = self.clock()
        self.run_log.record(entry, scheduled, started, finished, outcome)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "job %r finished: %s in %.3fs",
                entry.job.id,
                outcome[0].value,
                finished - started,
                extra=_extra(entry),
            )

    async def _may_start(self, entry: JobEntry) -> bool:
        """Whether the run may start: a claim that waited (a frozen process, a full queue)
        is confirmed with the store first; one that is no longer ours is let go unrun."""
        recorder = entry.recorder
        if await recorder.confirm(entry):
            return True
        log.warning(
            "job %r: this worker's claim ended before its run could start (lease expired); "
            "it is not run here",
            entry.job.id,
            extra=_extra(entry),
        )
        self._release(entry)
        finish(entry.job, JobStatus.CANCELLED)
        return False

    async def _run_once(self, entry: JobEntry) -> None:
        if not entry.recorder.holds(entry) and not await self._may_start(entry):
            return
        started = self._began(entry)
        try:
            outcome = await entry.task.execute(entry)
        except asyncio.CancelledError:
            if entry.owned or not entry.stopping:
                raise
            outcome = self._cancelled_outcome(entry)
        if not entry.owned and entry.stopping:
            outcome = self._cancelled_outcome(entry)  # the body went on past the cancel
        self._ran(entry, entry.exec_ts, started, outcome)
        if entry.handover is not None:
            await self.settled(entry)
        if entry.owned:
            self._release(entry)
            outcome = entry.recorder.done(entry, outcome)
        finish(entry.job, outcome[0], outcome[1], outcome[2])

    async def _run_cron(self, entry: JobEntry) -> None:
        if not entry.recorder.holds(entry) and not await self._may_start(entry):
            return
        cron, parser, tz = entry.cron, entry.parser, entry.tz
        assert cron is not None and parser is not None
        steps = self.timers.steps
        wall = self.clock()
        fire = datetime.fromtimestamp(entry.exec_ts, tz)
        nxt = _next_or_none(parser, fire)
        if (
            not entry.missed
            and wall - entry.exec_ts <= ON_TIME_SECONDS
            and (nxt is None or nxt.timestamp() > wall)
        ):
            # The common case, kept cheap for many crons firing at once: one fire, on time.
            runs, latest = 1, fire
        else:
            now = datetime.fromtimestamp(wall, tz)
            due, due_latest = latest_due_fire(parser, fire, now)
            tolerance = timedelta(0) if entry.missed else MISFIRE_TOLERANCE
            entry.missed = False
            runs = runs_for_misfire(cron.misfire_policy, due, due_latest, now, tolerance)
            latest = due_latest or fire
            nxt = _next_or_none(parser, now)
            if due > 1 or runs != due:
                log.info(
                    "cron job %r missed fires between %s and %s; misfire policy %s runs %s now",
                    entry.job.id,
                    fire.isoformat(),
                    latest.isoformat(),
                    getattr(cron.misfire_policy, "name", cron.misfire_policy),
                    "each missed fire" if runs == due > 1 else runs,
                    extra={**_extra(entry), "misfire_runs": runs},
                )
        if cron.misfire_policy is MisfirePolicy.ALL and runs > 1:
            # Every missed fire, oldest first, progress committed fire by fire.
            done = await self._catch_up(entry, fire, latest, last=nxt is None)
        elif runs:
            # The last fire of the expression (no next one) ends the job once it has run.
            done = await self._fire_once(entry, latest.timestamp(), last=nxt is None)
        else:
            done = False
        if done or not (entry.owned if entry.handover is None else await self.settled(entry)):
            return
        if nxt is None:
            # The expression has no fire after this one: the job is exhausted.
            await self._end(entry, None, "finished")
            return
        entry.exec_ts = nxt.timestamp()
        if self.timers.steps != steps:
            # The wall clock stepped during the run: plan from the new time instead.
            self._replan(entry, self.clock(), self.timers.last_jump)
        await self._advance(entry)

    async def _catch_up(
        self, entry: JobEntry, first: datetime, latest: datetime, *, last: bool
    ) -> bool:
        """``MisfirePolicy.ALL``: run every due fire from ``first`` to ``latest`` in order."""
        parser = entry.parser
        assert parser is not None
        fire: datetime | None = first
        count = 0
        while fire is not None and fire <= latest:
            if count >= MAX_CATCH_UP_RUNS:
                log.warning(
                    "cron job %r: more than %d missed fires; the older ones are dropped",
                    entry.job.id,
                    MAX_CATCH_UP_RUNS,
                    extra=_extra(entry),
                )
                return False
            final = last and fire == latest
            if await self._fire_once(entry, fire.timestamp(), last=final):
                return True
            count += 1
            fire = _next_or_none(parser, fire)
            if fire is not None and fire <= latest:
                # Record progress fire by fire: a crash half-way repeats only the run in
                # progress, not the finished ones.
                entry.exec_ts = fire.timestamp()
                if not await self._commit(entry, entry.recorder.progress):
                    return True
        return False

    async def _fire_once(self, entry: JobEntry, scheduled: float, *, last: bool) -> bool:
        """Run one fire and count it; True when the job ended (or is no longer ours).
        ``last``: the expression has no fire after this one."""
        started = self._began(entry)
        try:
            outcome = await entry.task.execute(entry)
            # The bookkeeping of this fire (counters, history, the next fire) waits one loop
            # iteration: crons due on the same second all run their functions first, so the
            # k-th of them is late by k fires' calls, not by k whole fires with their upkeep.
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if entry.owned or not entry.stopping:
                raise
            outcome = self._cancelled_outcome(entry)
        if not entry.owned and entry.stopping:
            outcome = self._cancelled_outcome(entry)  # the body went on past the cancel
        self._ran(entry, scheduled, started, outcome)
        entry.last_outcome = outcome
        status, value, exc, _ = outcome
        entry.last_fire = scheduled
        if not (entry.owned if entry.handover is None else await self.settled(entry)):
            finish(entry.job, status, value, exc)  # replaced meanwhile: this job is over
            return True
        cron = entry.cron
        assert cron is not None
        entry.runs += 1
        entry.failures = 0 if status is JobStatus.SUCCESS else entry.failures + 1
        if entry.failures >= cron.max_failures:
            log.error(
                "cron job %r failed %d times in a row; it is now PERMANENTLY_FAILED",
                entry.job.id,
                entry.failures,
                extra=_extra(entry),
            )
            await self._end(entry, (JobStatus.PERMANENTLY_FAILED, None, exc), "permanently_failed")
            return True
        if last or (cron.max_runs != -1 and entry.runs >= cron.max_runs):
            await self._end(entry, (status, value, exc), "finished")
            return True
        # Between runs the job reads SCHEDULED, already while its counters are committed.
        entry.job.status = JobStatus.PAUSED if entry.paused else JobStatus.SCHEDULED
        resolve(entry.job, status, value, exc)
        return False

    async def _advance(self, entry: JobEntry) -> None:
        """Counters are committed after each run, before the next fire is armed."""
        entry.job.status = JobStatus.PAUSED if entry.paused else JobStatus.SCHEDULED
        outcome, entry.last_outcome = entry.last_outcome, None  # None: skipped, no run
        recorder = entry.recorder
        # A job that is not durable has nothing to commit: skip the await (the cron fan-out
        # of many jobs on one second is a hot path).
        if recorder.durable and not await self._commit(
            entry, lambda e: recorder.advance(e, outcome)
        ):
            return
        entry.run = None
        if not recorder.owns_between_runs:
            # A shared store: the completion ended this worker's claim; any worker may
            # claim the next fire.
            self._release(entry)
            return
        self.arm(entry)

    async def _end(
        self,
        entry: JobEntry,
        outcome: tuple[JobStatus, Any, BaseException | None] | None,
        record_status: str,
    ) -> None:
        """A cron job ended for good (exhausted, or permanently failed) with ``outcome``,
        or (None) with the outcome of its last run."""
        self._release(entry)
        try:
            await entry.recorder.finish(entry, record_status, entry.last_outcome)
        except StorageError as error:
            log.error(
                "cron job %r ended (%s) but its record could not be updated: %s; it is "
                "finished in this process and will be checked again at the next start",
                entry.job.id,
                record_status,
                error,
                extra=_extra(entry),
            )
        if outcome is None:
            end_after_last_run(entry.job)
        else:
            finish(entry.job, *outcome)

    async def _commit(
        self, entry: JobEntry, write: Callable[[JobEntry], Awaitable[bool | None]]
    ) -> bool:
        """Write the entry's state with ``write``; True if it is still owned afterwards.

        A failed write (disk full, a database gone for a while) does not end the job: it is
        logged at ERROR, the job keeps firing, and its state is saved again with back-off
        until that succeeds (the latest state then lands), the job ends, or the app stops.
        """
        try:
            if await write(entry) is False:
                self._release(entry)  # a shared store says another worker has it now
        except StorageError as exc:
            log.error(
                "job %r: saving its state failed (%s); it keeps running and the save is "
                "retried in the background",
                entry.job.id,
                exc,
                extra=_extra(entry),
            )
            if not entry.recorder.owns_between_runs:
                # A shared store: the outcome is unknown; the claim's lease will expire and
                # another worker takes the job over (the documented at-least-once case).
                self._release(entry)
            elif entry not in self._saving:
                self._saving[entry] = self.loop.create_task(self._save_later(entry))
        return await self.settled(entry)

    async def _save_later(self, entry: JobEntry) -> None:
        delay = SAVE_RETRY_FIRST
        try:
            while True:
                await asyncio.sleep(delay)
                if not await self.settled(entry) or is_final(entry.job):
                    return
                try:
                    await entry.recorder.save(entry)
                except StorageError as exc:
                    delay = min(delay * 2, SAVE_RETRY_MAX)
                    log.error(
                        "job %r: saving its state failed again (%s); next try in %.1fs",
                        entry.job.id,
                        exc,
                        delay,
                        extra=_extra(entry),
                    )
                    continue
                log.info("job %r: its state is saved again", entry.job.id, extra=_extra(entry))
                return
        finally:
            self._saving.pop(entry, None)


def _next_or_none(parser: Any, after: datetime) -> datetime | None:
    try:
        nxt: datetime = parser.next_run(now=after)
    except CronExhaustedError:
        return None
    return nxt


def _cancelled_error(entry: JobEntry) -> JobCancelledError:
    return JobCancelledError(entry.job.id, while_running=True)


def _extra(entry: JobEntry) -> dict[str, Any]:
    return {"job_id": entry.job.id, "task_name": entry.task.name}


def _log_cut(cut: list[JobEntry]) -> None:
    """One line naming the running jobs a shutdown cuts short: a stored one runs again after
    the next start (from its beginning), one that is not stored does not."""
    again = [e for e in cut if e.recorder.durable]
    lost = [e for e in cut if not e.recorder.durable]
    parts = []
    if again:
        names = ", ".join(f"{e.job.id!r} ({e.task.name})" for e in again)
        parts.append(f"{len(again)} stored job(s) run again after the next start: {names}")
    if lost:
        names = ", ".join(f"{e.job.id!r} ({e.task.name})" for e in lost)
        parts.append(f"{len(lost)} job(s) that are not stored do not run again: {names}")
    log.warning(
        "shutdown cut %d running job(s) short; %s",
        len(cut),
        "; ".join(parts),
        extra={"job_ids": [e.job.id for e in cut]},
    )
