"""CpuFollower: pins our storage thread to the loop's CPU for small batches, frees it after."""

from __future__ import annotations

import os
import threading

import pytest

from jobify.storage import affinity
from jobify.storage.affinity import CpuFollower

pytestmark = pytest.mark.skipif(
    affinity._getcpu is None, reason="needs sched_getcpu/sched_setaffinity (Linux)"
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


def test_a_cpu_outside_the_allowed_set_disables_following() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        follower = CpuFollower(thread)
        follower._set({10_000})  # no such CPU: the kernel refuses
        assert follower._enabled is False
        follower.follow()  # a no-op from now on, never an error
    finally:
        stop.set()
        thread.join()
