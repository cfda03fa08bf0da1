"""The execution pipeline: retry → exception handlers → timeout → middleware → runner.

Retry is outermost so that a handler that raises is retried like any failure, and a handler
that returns ends the job as SUCCESS with no retry. Timeout is inside the handlers so that a
handler registered for ``TimeoutError`` catches a job timeout. Middleware runs global → router
chain → task, then the runner for the run mode. Each route's pipeline is composed once, at
startup (``Executor.prepare``), never per job.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import multiprocessing as mp
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor as PoolExecutor
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from jobify.context import JobContext, Runnable, State
from jobify.exceptions import JobTimeoutError, NoResultError
from jobify.jobs import JobStatus
from jobify.middleware import compose
from jobify.retry import SmartRetry
from jobify.runners import RunMode, process_target, run_coroutine_in_thread

if TYPE_CHECKING:
    from jobify.config import JobifyConfiguration
    from jobify.router import ExceptionHandler, Route
    from jobify.scheduler import JobEntry

__all__ = ["Executor", "Outcome"]

log = logging.getLogger("jobify.execution")

Outcome = tuple[JobStatus, Any, BaseException | None]
Chain = Callable[[JobContext], Awaitable[Any]]


class Pools:
    """The thread and process pools, created on first use and shut down by us if ours."""

    def __init__(self, thread: PoolExecutor | None, process: PoolExecutor | None) -> None:
        self._thread = thread
        self._process = process
        self._own_thread = thread is None
        self._own_process = process is None

    def thread(self) -> PoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(thread_name_prefix="jobify")
        return self._thread

    def process(self) -> PoolExecutor:
        if self._process is None:
            # Not "fork": the app always has other threads (loop helpers, the thread pool), and
            # forking a threaded process can deadlock the child on a lock held by another
            # thread (Python 3.12+ warns about exactly this). The worker imports the task's
            # module by name (runners.process_target), so a fresh interpreter works.
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
            self._process = ProcessPoolExecutor(mp_context=mp.get_context(method))
        return self._process

    def shutdown(self) -> None:
        if self._own_thread and self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None
        if self._own_process and self._process is not None:
            self._process.shutdown(wait=True, cancel_futures=True)
            self._process = None


def _runner(route: Route[Any, Any], pools: Pools) -> Chain:
    """The innermost call: run ``context.runnable`` in the route's run mode."""
    mode = route.options.run_mode
    if mode is RunMode.MAIN:
        if route.is_async:

            async def run_main(ctx: JobContext) -> Any:
                r = ctx.runnable
                return await r.func(*r.args, **r.kwargs)

            return run_main

        async def run_inline(ctx: JobContext) -> Any:
            r = ctx.runnable
            return r.func(*r.args, **r.kwargs)

        return run_inline

    if mode is RunMode.THREAD:
        if route.is_async:

            async def run_thread_loop(ctx: JobContext) -> Any:
                r = ctx.runnable
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    pools.thread(), run_coroutine_in_thread, r.func, r.args, r.kwargs
                )

            return run_thread_loop

        async def run_thread(ctx: JobContext) -> Any:
            r = ctx.runnable
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(pools.thread(), partial(r.func, *r.args, **r.kwargs))

        return run_thread

    is_async = route.is_async

    async def run_process(ctx: JobContext) -> Any:
        r = ctx.runnable
        module, qualname = route.process_ref()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            pools.process(), process_target, module, qualname, is_async, r.args, r.kwargs
        )

    return run_process


def _find_handler(
    chain: Sequence[Mapping[type[BaseException], ExceptionHandler]], exc: BaseException
) -> ExceptionHandler | None:
    # Level by level (task, routers leaf → root, app); within a level by the exception's MRO.
    mro = type(exc).__mro__
    for handlers in chain:
        for cls in mro:
            handler = handlers.get(cls)
            if handler is not None:
                return handler
    return None


def build_pipeline(
    route: Route[Any, Any],
    middleware: Sequence[Any],
    handlers: Sequence[Mapping[type[BaseException], ExceptionHandler]],
    pools: Pools,
) -> Callable[[JobContext], Awaitable[Outcome]]:
    """Compose the full pipeline of one route."""
    chain: Chain = compose(middleware, _runner(route, pools))
    timeout = route.options.timeout
    retry: SmartRetry | None = route.options.retry
    handler_levels = [h for h in handlers if h]

    if timeout is not None:
        inner_chain = chain

        async def timed(ctx: JobContext) -> Any:
            try:
                async with asyncio.timeout(timeout) as cm:
                    return await inner_chain(ctx)
            except TimeoutError as exc:
                if cm.expired():
                    raise JobTimeoutError(ctx.job.id, timeout) from exc
                raise

        chain = timed

    if handler_levels:
        guarded_chain = chain

        async def handled(ctx: JobContext) -> Any:
            try:
                return await guarded_chain(ctx)
            except Exception as exc:
                handler = _find_handler(handler_levels, exc)
                if handler is None:
                    raise
                value = handler(exc, ctx)
                if inspect.isawaitable(value):
                    value = await value
                return value

        chain = handled

    final_chain = chain
    # The common case (an async def on the loop, nothing around it) calls the function
    # directly: one coroutine frame less per job.
    direct = (
        not middleware
        and not handler_levels
        and timeout is None
        and route.is_async
        and route.options.run_mode is RunMode.MAIN
    )

    async def execute(ctx: JobContext) -> Outcome:
        attempt = 0
        while True:
            try:
                if direct:
                    r = ctx.runnable
                    return JobStatus.SUCCESS, await r.func(*r.args, **r.kwargs), None
                return JobStatus.SUCCESS, await final_chain(ctx), None
            except NoResultError as exc:
                original = exc.__context__ if exc.__context__ is not None else exc
                return JobStatus.FAILED, None, original
            except Exception as exc:
                if retry is not None and attempt < retry.retries and retry.should_retry(exc):
                    attempt += 1
                    delay = retry.delay(attempt)
                    log.info(
                        "job %r attempt %d failed (%r); retrying in %.3fs",
                        ctx.job.id,
                        attempt,
                        exc,
                        delay,
                    )
                    if delay > 0:
                        await asyncio.sleep(delay)
                    continue
                status = JobStatus.TIMEOUT if isinstance(exc, JobTimeoutError) else JobStatus.FAILED
                if status is JobStatus.FAILED:
                    log.warning("job %r of task %r failed: %r", ctx.job.id, ctx.runnable.name, exc)
                return status, None, exc

    return execute


class Executor:
    """Runs one execution of an entry through its route's pipeline."""

    def __init__(self, config: JobifyConfiguration, state: State, pools: Pools) -> None:
        self.config = config
        self.state = state
        self.pools = pools

    def execute(self, entry: JobEntry) -> Awaitable[Outcome]:
        """One execution of ``entry`` through its route's pipeline."""
        route = entry.route
        if route.bare:
            return self._call_bare(entry)
        args, kwargs = route.call_args(entry.arguments)
        runnable: Runnable[Any] = Runnable(
            route.name, route.func, args, kwargs, route.options.run_mode
        )
        ctx = JobContext(
            entry.job, self.state, runnable, route.route_options, self.config, source=entry
        )
        if route.injections:
            injected = {name: extract(ctx) for name, extract in route.injections.items()}
            runnable.args, runnable.kwargs = route.call_args(
                {**route.as_dict(entry.arguments), **injected}
            )
        pipeline: Callable[[JobContext], Awaitable[Outcome]] = route.pipeline
        return pipeline(ctx)

    @staticmethod
    async def _call_bare(entry: JobEntry) -> Outcome:
        """A task with nothing around it (see ``is_bare``): no context, no pipeline frames."""
        route = entry.route
        arguments = entry.arguments
        try:
            if type(arguments) is tuple:  # every parameter given positionally: call so
                return JobStatus.SUCCESS, await route.func(*arguments), None
            args, kwargs = route.call_args(arguments)
            return JobStatus.SUCCESS, await route.func(*args, **kwargs), None
        except Exception as exc:
            log.warning("job %r of task %r failed: %r", entry.job.id, route.name, exc)
            return JobStatus.FAILED, None, exc


def is_bare(route: Route[Any, Any], middleware: Sequence[Any], handlers: Sequence[Any]) -> bool:
    """Whether a route's execution is just ``await func(...)``: an ``async def`` on the loop
    with no middleware, handlers, timeout, retry or injection. Those skip building a
    JobContext and the pipeline's frames (the hot path of many small jobs)."""
    options = route.options
    return (
        route.is_async
        and options.run_mode is RunMode.MAIN
        and not middleware
        and not any(handlers)
        and options.timeout is None
        and options.retry is None
        and not route.injections
    )
