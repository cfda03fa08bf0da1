"""The built-in pool for ``PROCESS`` jobs: one child process per running job, stoppable.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one task: its workers are shared and
terminating one breaks the whole pool (every other job in it fails). This pool keeps one child
per job that is running, so a job past its timeout, or cancelled while running, has *its*
child terminated (``SIGTERM``, then ``SIGKILL`` after :data:`KILL_GRACE` seconds) and nothing
else is touched: the next job starts a fresh child. A child never runs two jobs at once, so
killing it never loses another job. Idle children are kept for the next job (an interpreter
start costs tens of milliseconds), up to ``max_workers``.

Each child talks to the app over a pipe: one request ``(module, qualname, is_async, args,
kwargs)``, one answer ``(ok, value_or_exception)``. The blocking pipe reads happen on a thread
of the pool's own, so the event loop never waits on a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from jobify._runmodes import process_target

__all__ = ["KILL_GRACE", "ProcessPool"]

log = logging.getLogger("jobify.execution")

KILL_GRACE = 2.0
"""Seconds a terminated child gets to exit on ``SIGTERM`` before it is killed."""

Request = tuple[str, str, bool, tuple[Any, ...], dict[str, Any]]


def _child_main(conn: Connection) -> None:
    """A child's life: run one request at a time until told to stop (``None``) or killed."""
    # Ctrl+C reaches the whole process group; the app decides how its jobs end (a graceful
    # shutdown cancels them and terminates the children), so a child ignores it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the app is gone
            return
        if request is None:
            return
        module, qualname, is_async, args, kwargs = request
        try:
            answer: tuple[bool, Any] = (
                True,
                process_target(module, qualname, is_async, args, kwargs),
            )
        except BaseException as exc:  # the task's own failure goes back to the app
            answer = (False, _portable(exc))
        try:
            conn.send(answer)
        except Exception as exc:  # the value (or the exception) does not pickle
            conn.send(
                (False, _portable(exc, note=f"the job's {_what(answer)} cannot be sent back"))
            )


def _what(answer: tuple[bool, Any]) -> str:
    return "return value" if answer[0] else "exception"


def _portable(exc: BaseException, note: str | None = None) -> BaseException:
    """The exception to send back, with its traceback text (tracebacks do not pickle)."""
    text = "".join(traceback.format_exception(exc))
    try:
        exc.add_note(f"in the worker process {os.getpid()}:\n{text}")
        if note is None:
            pickle.dumps(exc)
            return exc
    except Exception:
        pass
    return RuntimeError(f"{note or 'the job failed'}: {type(exc).__name__}: {exc}\n{text}")


class _Child:
    """One child process and the app's end of its pipe."""

    __slots__ = ("conn", "process")

    def __init__(self, context: BaseContext) -> None:
        parent, child = mp.Pipe()
        self.process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_child_main, args=(child,), daemon=True, name="jobify-process"
        )
        self.process.start()
        # The app must not keep the child's end open, or a dead child's pipe never reports EOF.
        child.close()
        self.conn = parent

    def exchange(self, request: Request) -> tuple[bool, Any]:
        """Send one request and wait for its answer (on a pool thread)."""
        self.conn.send(request)
        try:
            answer: tuple[bool, Any] = self.conn.recv()
        except EOFError:
            self.process.join(KILL_GRACE)  # the child is ending: learn its exit code
            raise
        return answer

    def stop_when_idle(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(KILL_GRACE)
        self.terminate(0.0)

    def terminate(self, grace: float, exchange: Future[Any] | None = None) -> None:
        """Stop the child now: ``SIGTERM``, then ``SIGKILL`` if it is still there after
        ``grace`` seconds (blocks up to that long: call it on a thread). The pipe is closed
        only once the ``exchange`` blocked on it has seen the child's end."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(grace)
            if self.process.is_alive():
                self.process.kill()
        self.process.join()
        if exchange is not None:
            exchange.exception()  # returns once the blocked read has seen EOF
        self.conn.close()


class ProcessPool:
    """Runs ``PROCESS`` jobs, each in a child of its own that can be stopped alone."""

    def __init__(self, context: BaseContext, max_workers: int | None = None) -> None:
        self._context = context
        self._max = max_workers or os.cpu_count() or 1
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Child] = []
        # Threads that block on children's pipes (and start children). A cancelled job's
        # thread stays blocked until its child is gone while its slot is already free, so
        # there is room for twice the slots.
        self._threads = ThreadPoolExecutor(2 * self._max, thread_name_prefix="jobify-process")
        self._reaping: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, request: Request) -> Any:
        """Run one job in a child; a cancel (timeout, or the job cancelled) stops the child."""
        if self._closed:
            raise RuntimeError("the process pool is shut down")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        loop = asyncio.get_running_loop()
        async with self._slots:
            child = self._idle.pop() if self._idle else None
            if child is None or not child.process.is_alive():
                child = await loop.run_in_executor(self._threads, _Child, self._context)
            exchange = self._threads.submit(child.exchange, request)
            try:
                ok, value = await asyncio.wrap_future(exchange)
            except asyncio.CancelledError:
                self._stop(child, exchange)
                raise
            except (EOFError, OSError) as exc:
                code = child.process.exitcode
                self._stop(child, exchange)
                raise BrokenProcessPool(
                    f"the process running the job exited unexpectedly (exit code {code})"
                ) from exc
            if self._closed:
                self._stop(child, exchange)
            else:
                self._idle.append(child)
        if ok:
            return value
        raise value

    def _stop(self, child: _Child, exchange: Future[Any]) -> None:
        """Terminate a child on a thread of its own (never queued behind blocked reads)."""
        log.debug("stopping worker process %s: its job was cut short", child.process.pid)

        def reap() -> None:
            try:
                child.terminate(KILL_GRACE, exchange)
            finally:
                with self._lock:
                    self._reaping.discard(thread)

        thread = threading.Thread(target=reap, name="jobify-process-reaper", daemon=True)
        with self._lock:
            self._reaping.add(thread)
        thread.start()

    def shutdown(self) -> None:
        """Stop the idle children and wait for the terminated ones (blocking: a thread)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for child in idle:
            child.stop_when_idle()
        with self._lock:
            reaping = list(self._reaping)
        for thread in reaping:
            thread.join()
        self._threads.shutdown(wait=False, cancel_futures=True)
