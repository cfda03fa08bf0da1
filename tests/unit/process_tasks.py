"""Plain module-level functions for PROCESS run-mode tests.

A worker process finds a task's function by module and qualified name, so these live at
module level. Each test registers them on its own fresh app (``app.task(...)(func)``).
"""

from __future__ import annotations

import asyncio
import os
import time


def worker_pid(offset: int = 0) -> int:
    """The worker's pid plus ``offset`` (proves the arguments arrive)."""
    return os.getpid() + offset


async def async_worker_pid() -> tuple[int, bool]:
    """Runs on an event loop of its own in the worker: (pid, a loop is running)."""
    await asyncio.sleep(0)
    return os.getpid(), asyncio.get_running_loop().is_running()


def sleep_then_return(seconds: float) -> str:
    """Sleeps (past a timeout, in the timeout test), then returns."""
    time.sleep(seconds)
    return "late"


def fail_until_third(path: str) -> str:
    """Fails until the third attempt, counting attempts in a file shared across processes."""
    with open(path, "a") as f:
        f.write("x")
    with open(path) as f:
        attempts = len(f.read())
    if attempts < 3:
        raise ValueError(f"attempt {attempts}")
    return f"ok after {attempts}"


def echo(value: object) -> str:
    """Returns the repr of its argument."""
    return repr(value)


def sleep_reporting_pid(path: str, seconds: float) -> str:
    """Writes its pid to ``path``, then sleeps (a job to be cut short)."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(seconds)
    return "slept"


def exit_now() -> None:
    """The process ends without answering (a crash, as far as the app can tell)."""
    os._exit(3)
