"""Run modes: how one call of a task's function is executed.

``MAIN`` awaits the coroutine on the app's loop (a ``def`` runs inline, blocking the loop);
``THREAD`` uses a thread pool; ``PROCESS`` a process pool. An ``async def`` in ``THREAD`` or
``PROCESS`` runs on an event loop of its own in that thread or process (beyond the reference
system, which only warns and runs it on the main loop).
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import pickle
import threading
from collections.abc import Callable
from typing import Any

from jobify.exceptions import SerializationError

__all__ = ["RunMode", "check_process_args", "process_target", "run_coroutine_in_thread"]


class RunMode(enum.StrEnum):
    """Where a task's function runs."""

    MAIN = "main"
    THREAD = "thread"
    PROCESS = "process"


class _ThreadLoop:
    """A worker thread's own event loop, closed when the thread ends.

    Held in a thread-local: when the pool's thread exits, the thread-local drops this holder
    and the loop is closed here, instead of leaking its selector and self-pipe sockets.
    """

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


_thread_loops = threading.local()


def run_coroutine_in_thread(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
    """Run ``func(*args, **kwargs)`` (a coroutine function) on this worker thread's own loop.

    The loop is kept per thread so repeated jobs do not pay for a new loop each time.
    """
    holder: _ThreadLoop | None = getattr(_thread_loops, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _ThreadLoop()
        _thread_loops.holder = holder
    return holder.loop.run_until_complete(func(*args, **kwargs))


def _resolve_function(module: str, qualname: str) -> Callable[..., Any]:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    # The module attribute is the decorated task object; the plain function sits behind it.
    return getattr(obj, "__wrapped__", obj)  # type: ignore[no-any-return]


def process_target(
    module: str, qualname: str, is_async: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Entry point in a worker process: import the task's function by name and run it.

    Functions are sent by reference (module + qualname) because the module attribute is the
    decorated task object, not the function itself, so pickling the function directly fails.
    """
    func = _resolve_function(module, qualname)
    if is_async:
        return asyncio.run(func(*args, **kwargs))
    return func(*args, **kwargs)


def check_process_function(func: Callable[..., Any], task_name: str) -> tuple[str, str]:
    """The (module, qualname) reference of a PROCESS task's function, or a clear error."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", "")
    if module is None or "<lambda>" in qualname or "<locals>" in qualname:
        raise TypeError(
            f"task {task_name!r} uses run_mode=PROCESS, but its function {qualname!r} cannot be "
            "sent to another process: only functions defined at module level can be; move it "
            "to module level or use RunMode.THREAD"
        )
    return module, qualname


def check_process_args(task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Fail at scheduling time, not in the worker, when arguments cannot be pickled."""
    try:
        pickle.dumps((args, kwargs))
    except Exception as exc:
        culprit = _find_unpicklable(args, kwargs)
        raise SerializationError(
            f"task {task_name!r} uses run_mode=PROCESS, but {culprit} cannot be pickled to "
            f"send it to another process ({exc}); pass picklable values or use RunMode.THREAD"
        ) from exc


def _find_unpicklable(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    items = [(f"positional argument {i}", v) for i, v in enumerate(args)]
    items += [(f"argument {k!r}", v) for k, v in kwargs.items()]
    for label, value in items:
        try:
            pickle.dumps(value)
        except Exception:
            return f"{label} ({type(value).__name__})"
    return "an argument"
