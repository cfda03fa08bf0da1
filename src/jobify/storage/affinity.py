"""Keep the storage thread on the event loop's CPU for small, latency-bound hand-offs (Linux).

Why: a durable write crosses threads twice (loop → writer thread → loop). Waking a thread
that sleeps on another CPU costs an inter-processor interrupt, and on a virtual machine whose
other vCPU is idle (halted) that is tens of microseconds each way: measured on our 2-vCPU CI
machine, a loop → thread → loop round trip takes 61-70 µs across CPUs and 17-28 µs on one.
The loop is about to sleep waiting for a small commit anyway, so running the writer on the
loop's CPU costs no parallelism there, and it takes a sequential durable push from ~230 µs to
~165 µs. Large batches are left free to run on any CPU, in parallel with the loop.

Only our own thread's affinity is ever changed. Where the platform lacks
``sched_getcpu``/``sched_setaffinity`` (macOS, Windows) this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

__all__ = ["CpuFollower"]


def _load_getcpu() -> Callable[[], int] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        getcpu = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    getcpu.restype = ctypes.c_int
    getcpu.argtypes = []
    return getcpu


_getcpu = _load_getcpu()


class CpuFollower:
    """Pins one thread to the caller's current CPU, or frees it again."""

    def __init__(self, thread: threading.Thread) -> None:
        self._thread = thread
        self._pinned = -1  # the CPU the thread is pinned to, or -1 when free
        self._allowed: set[int] | None = None
        self._enabled = _getcpu is not None

    def follow(self) -> None:
        """Pin the thread to the CPU the calling thread runs on now."""
        if not self._enabled:
            return
        assert _getcpu is not None
        cpu = _getcpu()
        if cpu < 0 or cpu == self._pinned:
            return
        self._set({cpu})
        self._pinned = cpu

    def release(self) -> None:
        """Let the thread run on any CPU it was allowed to run on."""
        if self._pinned < 0:
            return
        if self._allowed is not None:
            self._set(self._allowed)
        self._pinned = -1

    def _set(self, cpus: set[int]) -> None:
        tid = self._thread.native_id
        if tid is None:
            return
        try:
            if self._allowed is None:
                self._allowed = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except OSError:
            # E.g. the CPU is not in the process's allowed set (a container's cpuset): stop
            # trying rather than pay a failing system call on every write.
            self._enabled = False
