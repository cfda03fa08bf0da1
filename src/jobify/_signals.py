"""Graceful SIGINT/SIGTERM inside ``async with app`` — only when nobody else handles them.

Signals belong to the host. Inside a web server (uvicorn, hypercorn, gunicorn workers…) the
server has installed its own handlers before it enters the application's lifespan, and its
graceful shutdown is what must run. So jobify installs handlers only for a signal whose
handler is still the default one when the app starts (a plain script: SIGTERM's ``SIG_DFL``,
SIGINT's ``default_int_handler`` or the one ``asyncio.run`` puts in its place), restores
exactly what was there when the app shuts down, and never installs any with
``Jobify(handle_signals=False)``.

While installed, SIGINT and SIGTERM cancel the task that entered ``async with app`` instead
of killing the process mid-write. After the app has shut down (timers stopped, running jobs
finished or cancelled, storage flushed and closed) the signal takes its usual effect:
``KeyboardInterrupt`` for SIGINT, termination by SIGTERM for SIGTERM.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["SignalGuard"]

log = logging.getLogger("jobify")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any] | int | None


def _is_default(sig: signal.Signals, handler: Handler) -> bool:
    if handler in (signal.SIG_DFL, None):
        return True
    if sig == signal.SIGINT:
        if handler is signal.default_int_handler:
            return True
        # asyncio.run() replaces the default SIGINT handler with its own (a partial of a
        # Runner method), which only interrupts the main task: a plain script, not a host.
        func = handler.func if isinstance(handler, functools.partial) else handler
        return isinstance(getattr(func, "__self__", None), asyncio.Runner)
    return False


class SignalGuard:
    """Turns SIGINT/SIGTERM into cancellation of one task, then gives them their effect."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Handler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def installed(self) -> tuple[signal.Signals, ...]:
        """The signals handled right now."""
        return tuple(self._previous)

    def install(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        """Handle the signals whose handler is still the default (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = loop
        for sig in _SIGNALS:
            try:
                current = signal.getsignal(sig)
            except (ValueError, OSError):
                continue
            if not _is_default(sig, current):
                log.debug(
                    "%s already has a handler (%r); leaving it to its owner", sig.name, current
                )
                continue

            def on_signal(signum: int, frame: FrameType | None, sig: signal.Signals = sig) -> None:
                # A Python-level handler runs between bytecodes of the main thread; hand the
                # work to the loop, which may be waiting in select().
                loop.call_soon_threadsafe(self._received, sig, task)

            try:
                signal.signal(sig, on_signal)
            except (ValueError, OSError):
                continue
            self._previous[sig] = current

    def _received(self, sig: signal.Signals, task: asyncio.Task[Any]) -> None:
        if self.received is not None:
            return  # a second signal while shutting down: shutdown is already under way
        self.received = sig
        log.warning("received %s: shutting down gracefully", sig.name)
        task.cancel()

    def uninstall(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            except (ValueError, OSError):  # pragma: no cover - not the main thread any more
                continue

    def reraise(self) -> None:
        """Give the received signal its usual effect (call after shutdown and uninstall)."""
        sig = self.received
        if sig is None:
            return
        self.received = None
        if sig == signal.SIGINT:
            raise KeyboardInterrupt
        handler = signal.getsignal(sig)
        if handler in (signal.SIG_DFL, None):
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        elif callable(handler):
            handler(sig, None)
