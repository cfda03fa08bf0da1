"""The execution pipeline of a task: retry → exception handlers → timeout → middleware → runner.

Retry is outermost so that a handler that raises is retried like any failure, and a handler
that returns ends the job as SUCCESS with no retry. Timeout is inside the handlers so that a
handler registered for ``TimeoutError`` catches a job timeout. Middleware runs global → router
chain → task, then the runner for the run mode.

One path for every task, composed once at startup (:func:`build_execute`), never per job:
the configured layers wrap the runner, and a single ``execute`` loop does the retrying, the
outcome classification and the failure logging. The one fast path is decided from the same
layer list: when no layer was configured and the task needs nothing from a ``JobContext``
(an ``async def`` on the loop without injected parameters), the function is called without
building a context. A feature added as a layer is therefore never skipped by it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import multiprocessing as mp
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor as PoolExecutor
from functools import partial
from typing import Any

from jobify._config import JobifyConfiguration
from jobify._context import JobContext, Runnable
from jobify._entry import JobEntry, Outcome
from jobify._jobs import JobStatus
from jobify._procpool import ProcessPool, Request
from jobify._retry import SmartRetry
from jobify._runmodes import RunMode, process_target, run_coroutine_in_thread
from jobify._task import ExceptionHandler, TaskSpec
from jobify._threadpool import ThreadCalls, Workers
from jobify.exceptions import JobTimeoutError, NoResultError
from jobify.middleware._base import compose

__all__ = ["Pools", "build_execute"]

log = logging.getLogger("jobify.execution")

Chain = Callable[[JobContext], Awaitable[Any]]
Layer = Callable[[Chain], Chain]
HandlerLevels = Sequence[Mapping[type[BaseException], ExceptionHandler]]


class Pools:
    """The thread and process pools, created on first use and shut down by us if ours."""

    def __init__(self, thread: PoolExecutor | None, process: PoolExecutor | None) -> None:
        self._thread = thread
        self._process = process
        self._own_pool: ProcessPool | None = None
        self._workers: Workers | None = None
        self._thread_calls: ThreadCalls | None = None

    def thread_calls(self) -> ThreadCalls:
        """Calls on the thread pool (the user's, or our own workers), bound to the running
        loop (the app's)."""
        calls = self._thread_calls
        if calls is None:
            if self._thread is not None:
                submit: Callable[[Callable[[], None]], Any] = self._thread.submit
            else:
                self._workers = Workers()
                submit = self._workers.submit
            calls = self._thread_calls = ThreadCalls(asyncio.get_running_loop(), submit)
        return calls

    async def run_in_process(self, request: Request) -> Any:
        """Run a PROCESS job: in our own pool, whose children can be stopped one by one (a
        timeout or a cancel terminates the job's child), or in the executor the app was
        given (whose workers cannot be stopped: a late result is discarded)."""
        if self._process is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._process, process_target, *request)
        if self._own_pool is None:
            # Not "fork": the app always has other threads (loop helpers, the thread pool), and
            # forking a threaded process can deadlock the child on a lock held by another
            # thread (Python 3.12+ warns about exactly this). The worker imports the task's
            # module by name (process_target), so a fresh interpreter works.
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
            self._own_pool = ProcessPool(mp.get_context(method))
        return await self._own_pool.run(request)

    def cancel_thread_calls(self) -> None:
        """On the loop, before :meth:`shutdown`: no caller waits for a call the pool drops."""
        if self._thread_calls is not None:
            self._thread_calls.cancel_all()
            self._thread_calls = None

    def shutdown(self) -> None:
        if self._workers is not None:
            self._workers.shutdown()
            self._workers = None
        if self._own_pool is not None:
            self._own_pool.shutdown()
            self._own_pool = None


def _runner(spec: TaskSpec, pools: Pools) -> Chain:
    """The innermost call: run ``context.runnable`` in the task's run mode."""
    mode = spec.options.run_mode
    if mode is RunMode.MAIN:
        if spec.is_async:

            async def run_main(ctx: JobContext) -> Any:
                r = ctx.runnable
                return await r.func(*r.args, **r.kwargs)

            return run_main

        async def run_inline(ctx: JobContext) -> Any:
            r = ctx.runnable
            return r.func(*r.args, **r.kwargs)

        return run_inline

    if mode is RunMode.THREAD:
        if spec.is_async:

            async def run_thread_loop(ctx: JobContext) -> Any:
                r = ctx.runnable
                # The job's context variables (e.g. its trace span) go with it to the thread.
                call = partial(
                    contextvars.copy_context().run,
                    run_coroutine_in_thread,
                    r.func,
                    r.args,
                    r.kwargs,
                )
                return await pools.thread_calls().call(call)

            return run_thread_loop

        async def run_thread(ctx: JobContext) -> Any:
            r = ctx.runnable
            call = partial(contextvars.copy_context().run, r.func, *r.args, **r.kwargs)
            return await pools.thread_calls().call(call)

        return run_thread

    is_async = spec.is_async

    async def run_process(ctx: JobContext) -> Any:
        r = ctx.runnable
        module, qualname = spec.process_ref()
        return await pools.run_in_process((module, qualname, is_async, r.args, r.kwargs))

    return run_process


def _find_handler(levels: HandlerLevels, exc: BaseException) -> ExceptionHandler | None:
    # Level by level (task, routers leaf → root, app); within a level by the exception's MRO.
    mro = type(exc).__mro__
    for handlers in levels:
        for cls in mro:
            handler = handlers.get(cls)
            if handler is not None:
                return handler
    return None


def _timeout_layer(timeout: float) -> Layer:
    def wrap(inner: Chain) -> Chain:
        async def timed(ctx: JobContext) -> Any:
            try:
                async with asyncio.timeout(timeout) as cm:
                    return await inner(ctx)
            except TimeoutError:
                if cm.expired():
                    # An expected outcome, not a bug: no chain of jobify's own frames.
                    raise JobTimeoutError(ctx.job.id, timeout) from None
                raise

        return timed

    return wrap


def _handlers_layer(levels: HandlerLevels) -> Layer:
    def wrap(inner: Chain) -> Chain:
        async def handled(ctx: JobContext) -> Any:
            try:
                return await inner(ctx)
            except Exception as exc:
                handler = _find_handler(levels, exc)
                if handler is None:
                    raise
                try:
                    value = handler(exc, ctx)
                    if inspect.isawaitable(value):
                        value = await value
                except NoResultError as failure:
                    # "Fail now, no retry": chained to the error it was raised for.
                    if failure.__cause__ is None:
                        failure.__cause__ = exc
                    raise
                return value

        return handled

    return wrap


def _middleware_layer(middleware: Sequence[Any]) -> Layer:
    def wrap(inner: Chain) -> Chain:
        chain: Chain = compose(middleware, inner)
        return chain

    return wrap


def _layers(spec: TaskSpec, middleware: Sequence[Any], handlers: HandlerLevels) -> list[Layer]:
    """Every layer this task's executions go through, innermost first."""
    layers: list[Layer] = []
    if middleware:
        layers.append(_middleware_layer(middleware))
    if spec.options.timeout is not None:
        layers.append(_timeout_layer(spec.options.timeout))
    levels = [h for h in handlers if h]
    if levels:
        layers.append(_handlers_layer(levels))
    return layers


def build_execute(
    spec: TaskSpec,
    name: str,
    *,
    middleware: Sequence[Any],
    handlers: HandlerLevels,
    pools: Pools,
    config: JobifyConfiguration,
    state: Any,
) -> Callable[[JobEntry], Awaitable[Outcome]]:
    """Compose the pipeline of one task into ``execute(entry) -> Outcome``."""
    chain = _runner(spec, pools)
    layers = _layers(spec, middleware, handlers)
    for layer in layers:
        chain = layer(chain)
    retry: SmartRetry | None = spec.options.retry
    route_options = spec.route_options
    run_mode = spec.options.run_mode
    func = spec.func
    injections = spec.injections
    call_args = spec.call_args

    def context_for(entry: JobEntry) -> JobContext:
        args, kwargs = call_args(entry.arguments)
        runnable: Runnable[Any] = Runnable(name, func, args, kwargs, run_mode)
        ctx = JobContext(entry.job, state, runnable, route_options, config, source=entry)
        if injections:
            injected = {param: extract(ctx) for param, extract in injections.items()}
            arguments = {**spec.as_dict(entry.arguments), **injected}
            runnable.args, runnable.kwargs = call_args(arguments)
        return ctx

    def direct(entry: JobEntry) -> Awaitable[Any]:
        arguments = entry.arguments
        if type(arguments) is tuple:  # every parameter given positionally: call so
            return func(*arguments)  # type: ignore[no-any-return]
        args, kwargs = call_args(arguments)
        return func(*args, **kwargs)  # type: ignore[no-any-return]

    def direct_thread(entry: JobEntry) -> Awaitable[Any]:
        # What run_thread does, minus the context it would only read the call from.
        args, kwargs = call_args(entry.arguments)
        call = partial(contextvars.copy_context().run, func, *args, **kwargs)
        return pools.thread_calls().call(call)

    # The fast paths, decided by the same layer list: nothing configured around the runner,
    # nothing injected, and the runner is a plain await of the coroutine or a plain call on
    # the thread pool. Skipping the JobContext and its Runnable saves ~4k instructions a run.
    plain = not layers and not injections
    fast_call = direct if spec.is_async else direct_thread
    fast = plain and run_mode is (RunMode.MAIN if spec.is_async else RunMode.THREAD)

    async def execute(entry: JobEntry) -> Outcome:
        # One context per execution: its attempts (retries) share it, request_state included.
        ctx = None if fast else context_for(entry)
        attempt = 1
        while True:
            try:
                value = await (fast_call(entry) if ctx is None else chain(ctx))
                return JobStatus.SUCCESS, value, None, attempt
            except NoResultError as exc:
                _log_failure(entry, name, exc, attempt)
                return JobStatus.FAILED, None, exc, attempt
            except Exception as exc:
                if retry is not None and attempt <= retry.retries and retry.should_retry(exc):
                    delay = retry.delay(attempt)
                    log.warning(
                        "job %r of task %r: attempt %d failed (%r); retrying in %.3fs",
                        entry.job.id,
                        name,
                        attempt,
                        exc,
                        delay,
                        extra={
                            "job_id": entry.job.id,
                            "task_name": name,
                            "attempt": attempt,
                            "retry_delay": delay,
                        },
                    )
                    attempt += 1
                    if delay > 0:
                        await asyncio.sleep(delay)
                    recorder = entry.recorder
                    if not recorder.holds(entry) and not await recorder.confirm(entry):
                        # A shared store's claim ended while the attempt waited: another
                        # worker runs the job now; this outcome is dropped with the claim.
                        log.warning(
                            "job %r of task %r: the claim ended before attempt %d; not "
                            "retried here",
                            entry.job.id,
                            name,
                            attempt,
                            extra={"job_id": entry.job.id, "task_name": name},
                        )
                        return JobStatus.FAILED, None, exc, attempt - 1
                    continue
                _log_failure(entry, name, exc, attempt)
                status = JobStatus.TIMEOUT if isinstance(exc, JobTimeoutError) else JobStatus.FAILED
                return status, None, exc, attempt

    return execute


def _log_failure(entry: JobEntry, name: str, exc: BaseException, attempts: int) -> None:
    if isinstance(exc, JobTimeoutError):
        # An expected outcome: one line, no traceback (that is for the task's own errors).
        log.error(
            "job %r of task %r timed out after %gs (attempt %d)",
            entry.job.id,
            name,
            exc.timeout,
            attempts,
            extra={"job_id": entry.job.id, "task_name": name, "attempt": attempts},
        )
        return
    log.error(
        "job %r of task %r failed after %d attempt(s): %s: %s",
        entry.job.id,
        name,
        attempts,
        type(exc).__name__,
        exc,
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"job_id": entry.job.id, "task_name": name, "attempt": attempts},
    )
