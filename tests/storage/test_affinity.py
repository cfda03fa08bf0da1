"""CpuFollower: pins our storage thread to the loop's CPU for small batches, frees it after."""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import pytest

from jobify.storage.affinity import CpuFollower


def can_follow() -> bool:
    """The calls CpuFollower needs: sched_getcpu (libc) and sched_setaffinity."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        ctypes.CDLL(None).sched_getcpu  # noqa: B018 - looking the symbol up is the probe
    except (OSError, AttributeError):
        return False
    return True


pytestmark = pytest.mark.skipif(
    not can_follow(), reason="needs sched_getcpu/sched_setaffinity (Linux)"
)


def test_follow_pins_to_the_callers_cpu_and_release_restores() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert thread.native_id is not None
        allowed = os.sched_getaffinity(thread.native_id)
        follower = CpuFollower(thread)
        os.sched_setaffinity(0, {min(allowed)})  # hold this thread still while we look
        try:
            follower.follow()
            assert os.sched_getaffinity(thread.native_id) == {min(allowed)}
            follower.release()
            assert os.sched_getaffinity(thread.native_id) == allowed
        finally:
            os.sched_setaffinity(0, allowed)
    finally:
        stop.set()
        thread.join()


class Unknown(threading.Thread):
    """A thread that gives an id no thread can have until ``known`` is set: the kernel refuses
    to read or change the affinity of that id."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(target=stop.wait)
        self.known = False

    @property
    def native_id(self) -> int | None:
        if not self.known:
            return int(Path("/proc/sys/kernel/pid_max").read_text())  # ids are below it
        return super().native_id


def test_a_refused_pin_disables_following() -> None:
    stop = threading.Event()
    thread = Unknown(stop)
    thread.start()
    try:
        thread.known = True
        tid = thread.native_id
        assert tid is not None
        allowed = os.sched_getaffinity(tid)
        if len(allowed) < 2:
            pytest.skip("needs two CPUs to tell a pinned thread from a free one")
        first, second = sorted(allowed)[:2]
        follower = CpuFollower(thread)
        try:
            thread.known = False
            os.sched_setaffinity(0, {first})
            follower.follow()  # refused by the kernel: swallowed, and following stops
            thread.known = True
            os.sched_setaffinity(0, {second})
            follower.follow()  # from another CPU: would pin, but is a no-op from now on
            assert os.sched_getaffinity(tid) == allowed
            CpuFollower(thread).follow()  # a follower never refused pins it from here
            assert os.sched_getaffinity(tid) == {second}
        finally:
            os.sched_setaffinity(0, allowed)
    finally:
        stop.set()
        thread.join()
