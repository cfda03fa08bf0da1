"""Graceful SIGINT/SIGTERM inside ``async with app``.

While the block runs, SIGINT and SIGTERM cancel the task that entered it instead of killing
the process mid-write. After the app has shut down (timers stopped, running jobs finished or
cancelled, storage flushed and closed) the signal's usual effect is restored and re-raised:
``KeyboardInterrupt`` for SIGINT, termination by SIGTERM for SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

__all__ = ["SignalGuard"]

log = logging.getLogger("jobify")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalGuard:
    """Turns SIGINT/SIGTERM into cancellation of one task, then re-raises them."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._installed: list[signal.Signals] = []

    def install(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object]) -> None:
        """Install handlers (only possible in the main thread, on a Unix loop)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in _SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig, task)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(sig)
        self._loop = loop

    def _on_signal(self, sig: signal.Signals, task: asyncio.Task[object]) -> None:
        if self.received is not None:
            return  # a second signal while shutting down: shutdown is already under way
        self.received = sig
        log.warning("received %s: shutting down gracefully", sig.name)
        task.cancel()

    def uninstall(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def reraise(self) -> None:
        """Give the received signal its usual effect (call after shutdown)."""
        sig = self.received
        if sig is None:
            return
        if sig == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
