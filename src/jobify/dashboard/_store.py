"""The dashboard's one inspector: opened on first use, closed by the app's lifespan.

Opening lazily is what makes a mounted dashboard work: Starlette does not run the lifespan of
an app mounted inside another, so nothing else would open it. An inspector belongs to the
event loop it was opened on (its storage answers on that loop); if requests arrive on another
loop (a test client used without ``with``), a new inspector is opened there and the old one
is closed when its loop can still run it, or left to its daemon thread when that loop is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobify.inspection import Inspector

__all__ = ["InspectorHolder"]

log = logging.getLogger("jobify.dashboard")


class InspectorHolder:
    """Holds the inspector made by ``factory`` (a new, unopened :class:`Inspector` per call)."""

    def __init__(self, factory: Callable[[], Inspector]) -> None:
        self._factory = factory
        self._inspector: Inspector | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None

    @property
    def is_open(self) -> bool:
        """Whether an inspector is open (on some loop)."""
        return self._inspector is not None

    async def get(self) -> Inspector:
        """The open inspector for the running loop (opened now if needed).

        Raises what :meth:`Inspector.open` raises (a missing or unreadable store); the next
        call tries again.
        """
        loop = asyncio.get_running_loop()
        inspector = self._inspector
        if inspector is not None and self._loop is loop:
            return inspector
        if self._opening is None or self._loop is not loop:
            # A lock of this loop (a lock made on a loop that is gone would not work here).
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._inspector is not None and self._loop is loop:
                return self._inspector
            await self._forget_other_loop()
            fresh = self._factory()
            if not isinstance(fresh, Inspector):
                raise TypeError(
                    "the dashboard's inspector factory must return a new jobify.inspection"
                    f".Inspector, got {type(fresh).__name__}"
                )
            await fresh.open()
            self._inspector, self._loop = fresh, loop
            return fresh

    async def _forget_other_loop(self) -> None:
        old, old_loop = self._inspector, self._loop
        self._inspector = self._loop = None
        if old is None or old_loop is None:
            return
        log.debug("dashboard: requests moved to another event loop; opening the store again")
        if old_loop.is_running() and not old_loop.is_closed():
            asyncio.run_coroutine_threadsafe(old.close(), old_loop)

    async def close(self) -> None:
        """Close the inspector if it is open on this loop (idempotent)."""
        inspector, loop = self._inspector, self._loop
        self._inspector = self._loop = None
        if inspector is None:
            return
        if loop is asyncio.get_running_loop():
            await inspector.close()
        elif loop is not None and loop.is_running() and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(inspector.close(), loop)
