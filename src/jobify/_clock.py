"""Being told when the wall clock is stepped, at no idle cost, where the platform can.

On Linux a ``timerfd`` on ``CLOCK_REALTIME`` armed with ``TFD_TIMER_CANCEL_ON_SET`` becomes
readable (its read fails with ``ECANCELED``) whenever the clock is set discontinuously: a
manual change, an NTP step, the adjustment after a suspend. :class:`ClockWatch` registers that
descriptor with the event loop, so a step is noticed at once without any periodic wake-up.
Elsewhere it does nothing and the scheduler's other guards (a check at every timer fire, a
watchdog once a minute) notice steps instead. Gradual NTP slewing is not a step and is not
reported (timers absorb it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import sys
from collections.abc import Callable

__all__ = ["ClockWatch"]

log = logging.getLogger("jobify.scheduler")

_CLOCK_REALTIME = 0
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_TFD_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2
_FAR_FUTURE = 2**40  # seconds since the epoch: never reached, so the timer never expires


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class ClockWatch:
    """Calls ``callback`` on the loop when the wall clock is stepped (Linux only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._fd = -1
        self._libc: ctypes.CDLL | None = None

    @classmethod
    def start(
        cls, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
    ) -> ClockWatch | None:
        """A running watch, or None where the platform cannot report clock steps."""
        if not sys.platform.startswith("linux"):
            return None
        watch = cls(loop, callback)
        try:
            watch._open()
        except (OSError, AttributeError, NotImplementedError, RuntimeError) as exc:
            log.debug("wall-clock step notification unavailable (%s); using the watchdog", exc)
            watch.close()
            return None
        return watch

    def _open(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.timerfd_create(_CLOCK_REALTIME, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._libc = libc
        self._fd = fd
        self._arm()
        self._loop.add_reader(fd, self._ready)

    def _arm(self) -> None:
        assert self._libc is not None
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(_FAR_FUTURE, 0))
        flags = _TFD_TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET
        if self._libc.timerfd_settime(self._fd, flags, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def _ready(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.ECANCELED:
                raise
            # The clock was set: the timer is cancelled until armed again.
            try:
                self._arm()
            except OSError as error:
                log.warning("wall-clock step notification stopped: %s", error)
                self.close()
            self._callback()

    def close(self) -> None:
        """Stop watching and release the descriptor. Idempotent."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        with contextlib.suppress(RuntimeError, ValueError):  # the loop is already closed
            self._loop.remove_reader(fd)
        os.close(fd)
