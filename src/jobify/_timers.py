"""Timers of armed jobs on ``loop.call_at``, kept honest about the wall clock.

One timer per armed job; nothing polls. Jobs are due at wall-clock instants, turned into loop
time when armed. A long wait is armed :data:`PREWAKE` short and finished with a short timer
(Linux lets an ``epoll`` wait overrun by 0.1% of its length), and jobs due at one instant share
one timer for that last stretch (a fan-out of many crons on the same second costs one
callback).

The wall clock may step (NTP, a manual change, a VM resume). A step is noticed when any timer
fires (its wall/monotonic offset changed), at once where the platform reports it
(:mod:`jobify._clock`), and by a watchdog once a minute otherwise; the owner is then told, and
plans every waiting job again. A timer that fires early by wall clock (drift) re-arms instead
of running early.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable

from jobify._clock import ClockWatch
from jobify._entry import JobEntry

__all__ = ["Timers"]

WATCHDOG_INTERVAL = 60.0
CLOCK_JUMP_THRESHOLD = 1.0
EARLY_TOLERANCE = 0.001
PREWAKE = 0.02


class _Landing:
    """One timer shared by the jobs due at one instant, for the last stretch of their wait."""

    __slots__ = ("entries", "handle")

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self.handle = handle
        self.entries: dict[JobEntry, None] = {}


class Timers:
    """Arms entries for their ``exec_ts``; calls ``due(entry)`` when one is due and
    ``stepped(jump)`` when the wall clock stepped by ``jump`` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float],
        due: Callable[[JobEntry], None],
        stepped: Callable[[float], None],
    ) -> None:
        self.loop = loop
        self.clock = clock
        self._due = due
        self._stepped = stepped
        self._offset = clock() - loop.time()
        self._watchdog: asyncio.TimerHandle | None = None
        self._clock_watch: ClockWatch | None = None
        self.steps = 0
        """How many wall-clock steps were seen so far."""
        self.last_jump = 0.0
        """The size of the latest step, in seconds (negative: backward)."""
        # One bound method and one context for every timer: asyncio would otherwise copy the
        # context and we would bind a method per armed job (100k timers = ~20 MB of them).
        self._fire_cb = self._fire
        self._context = contextvars.copy_context()
        self._landings: dict[float, _Landing] = {}

    def start(self) -> None:
        """Start watching the wall clock."""
        self._offset = self.clock() - self.loop.time()
        self._watchdog = self.loop.call_later(WATCHDOG_INTERVAL, self.check_clock)
        self._clock_watch = ClockWatch.start(self.loop, self.check_clock)

    def stop(self) -> None:
        """Stop watching the wall clock (armed timers are the owner's to disarm)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._clock_watch is not None:
            self._clock_watch.close()
            self._clock_watch = None

    def arm(self, entry: JobEntry) -> None:
        """Set the entry's timer for ``entry.exec_ts`` (or report it due now)."""
        delay = entry.exec_ts - self.clock()
        if delay <= 0:
            entry.timer = None
            self._due(entry)
            return
        if delay > 2 * PREWAKE:
            # Stop PREWAKE short; _fire then finishes the wait with a short timer whose
            # overrun is a few microseconds.
            entry.timer = self.loop.call_at(
                self.loop.time() + delay - PREWAKE, self._fire_cb, entry, context=self._context
            )
            return
        landing = self._landings.get(entry.exec_ts)
        if landing is None:
            handle = self.loop.call_at(
                self.loop.time() + delay, self._land, entry.exec_ts, context=self._context
            )
            landing = self._landings[entry.exec_ts] = _Landing(handle)
        landing.entries[entry] = None
        entry.timer = landing.handle

    def disarm(self, entry: JobEntry) -> None:
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
        if self._clock_stepped():
            return  # every waiting entry was planned again, these included
        early = exec_ts - self.clock() > EARLY_TOLERANCE
        for entry in landing.entries:
            entry.timer = None
            if early:  # see _fire
                self.arm(entry)
            else:
                self._due(entry)

    def _fire(self, entry: JobEntry) -> None:
        entry.timer = None
        if self._clock_stepped():
            return  # every waiting entry was planned again, this one included
        if entry.exec_ts - self.clock() > EARLY_TOLERANCE:
            # The monotonic clock ran ahead of the wall clock (drift): never run early,
            # wait the rest by wall time.
            self.arm(entry)
            return
        self._due(entry)

    def check_clock(self) -> None:
        """Look for a wall-clock step now (watchdog tick, platform notification)."""
        self._clock_stepped()
        if self._watchdog is not None:
            # Called early (not by its own timer): keep a single watchdog, never two.
            self._watchdog.cancel()
            self._watchdog = self.loop.call_later(WATCHDOG_INTERVAL, self.check_clock)

    def _clock_stepped(self) -> bool:
        """Tell the owner if the wall clock stepped since the last look; True if it did."""
        offset = self.clock() - self.loop.time()
        jump = offset - self._offset
        if abs(jump) <= CLOCK_JUMP_THRESHOLD:
            return False
        self._offset = offset
        self.steps += 1
        self.last_jump = jump
        self._stepped(jump)
        return True
