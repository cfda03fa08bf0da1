"""``Jobify``: the application. It registers tasks, then wires the parts and runs their lives.

Deliberately thin: options are validated into a ``JobifyConfiguration``; at startup every
registered task is compiled once into a :class:`~jobify._entry.Task` (pipeline, outer
middleware, state), and each part is handed its collaborators explicitly: the scheduler its
clock and run log, the submitter the scheduler and the recorder, each route its port.
Resources are entered into one ``AsyncExitStack`` so shutdown releases them in reverse order
by construction.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor as PoolExecutor
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from functools import partial
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from jobify._arguments import ArgumentCodec, register_task_types
from jobify._commands import CommandApplier
from jobify._config import JobifyConfiguration
from jobify._context import ScopedState, State
from jobify._entry import JobEntry, Task
from jobify._execution import Pools, build_execute
from jobify._history import NULL_RUN_LOG, HistoryLog, RunHistory
from jobify._jobs import Job
from jobify._records import OrphanSource, StoreRecorder, former_names
from jobify._restore import Restorer
from jobify._scheduler import Scheduler
from jobify._shared import DEFAULT_CAPACITY, ResultCodec, SharedRecorder, SharedWorker
from jobify._signals import SignalGuard
from jobify._submit import NotStarted, Request, Submitter, TaskPort, id_factory
from jobify._task import ExceptionHandler, ExceptionHandlers
from jobify._triggers import CronFactory, CronParser, resolve_zone
from jobify.crontab import create_crontab
from jobify.exceptions import ApplicationStateError
from jobify.middleware import BaseMiddleware, BaseOuterMiddleware, QueueMiddleware
from jobify.router import (
    JobRouter,
    Registry,
    RootRoute,
    Route,
    _Registrar,
    check_handler,
    check_handlers,
    check_includable,
    check_some,
)
from jobify.serializers import ExtendedJSONSerializer, JSONSerializer, Serializer
from jobify.storage import SQLiteStorage, Storage
from jobify.storage.base import CommandChannel, SharedStorage, TaskRecord
from jobify.typeadapter import Dumper, Loader

__all__ = ["Jobify", "Plugin"]

log = logging.getLogger("jobify")

AppLifespan = Callable[["Jobify"], AbstractAsyncContextManager[Any]]


@runtime_checkable
class Plugin(Protocol):
    """An extension started after the app's lifespans and stopped before them."""

    async def startup(self, app: Jobify) -> None:
        """Called once at app startup."""

    async def shutdown(self) -> None:
        """Called once at app shutdown."""


def _resolve_storage(storage: Any) -> Storage | None:
    if storage is False:
        return None
    if storage is None:
        return SQLiteStorage("jobify.db")
    if isinstance(storage, Storage):
        return storage
    raise TypeError(
        "storage must be None (SQLite file jobify.db), False (nothing persisted) or a "
        f"Storage instance, got {storage!r}"
    )


def _resolve_history(history: Any, storage: Storage | None) -> RunHistory | None:
    if history is None:
        history = storage is not None
    if history is False:
        return None
    if history is True:
        return RunHistory()
    if isinstance(history, RunHistory):
        return history
    raise TypeError(
        f"history must be True, False or a RunHistory(max_age=..., max_rows=...), got {history!r}"
    )


def _check_concurrency(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"concurrency must be None (unlimited) or an int >= 1, got {value!r}")
    return value


class Jobify(_Registrar):
    """The application: register tasks, then ``async with app:`` to run them.

    Every option is keyword-only and optional: ``tz`` (a ``ZoneInfo`` or zone name; default
    UTC), ``storage`` (None: the SQLite file ``jobify.db``; False: nothing persisted; or a
    ``Storage``), ``serializer``, ``dumper``/``loader``, ``lifespan``, ``middleware``,
    ``outer_middleware``, ``exception_handlers``, ``cron_factory``, ``loop_factory``,
    ``threadpool_executor``/``processpool_executor``, ``route_class``, ``plugins``,
    ``state`` (initial ``app.state``), ``uuid_generator`` (generated job ids are its
    ``.hex``; default ``uuid.uuid4``), ``handle_signals`` (graceful SIGINT/SIGTERM in a plain
    script; never overrides a host's handlers), ``history`` (run history retention: True,
    False or a ``RunHistory``; default on with storage), ``concurrency`` (most jobs running at
    once; None: no limit) and ``clock`` (epoch seconds source; a seam for tests).
    """

    def __init__(
        self,
        *,
        tz: ZoneInfo | str | None = None,
        storage: Storage | bool | None = None,
        serializer: Serializer | None = None,
        dumper: Dumper | None = None,
        loader: Loader | None = None,
        lifespan: AppLifespan | None = None,
        middleware: Sequence[BaseMiddleware] | None = None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None = None,
        exception_handlers: ExceptionHandlers | None = None,
        cron_factory: CronFactory | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
        threadpool_executor: PoolExecutor | None = None,
        processpool_executor: PoolExecutor | None = None,
        route_class: type[Route[Any, Any]] | None = None,
        plugins: Sequence[Plugin] | None = None,
        state: Mapping[str, Any] | None = None,
        uuid_generator: Callable[[], uuid.UUID] = uuid.uuid4,
        handle_signals: bool = True,
        history: bool | RunHistory | None = None,
        concurrency: int | None = None,
        worker: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if serializer is None:
            serializer = (
                JSONSerializer()
                if dumper is not None or loader is not None
                else ExtendedJSONSerializer()
            )
        if not callable(uuid_generator):
            raise TypeError(f"uuid_generator must be callable, got {uuid_generator!r}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning epoch seconds, got {clock!r}")
        resolved_storage = _resolve_storage(storage)
        self.configs = JobifyConfiguration(
            tz=resolve_zone(tz if tz is not None else "UTC", "Jobify tz"),
            storage=resolved_storage,
            serializer=serializer,
            dumper=dumper,
            loader=loader,
            cron_factory=cron_factory or create_crontab,
            threadpool_executor=threadpool_executor,
            processpool_executor=processpool_executor,
        )
        self.state = State(state)
        self.lifespan = lifespan
        self.middleware: list[BaseMiddleware] = list(middleware or ())
        self.outer_middleware: list[BaseOuterMiddleware] = list(outer_middleware or ())
        self.exception_handlers: dict[type[BaseException], ExceptionHandler] = dict(
            check_handlers(exception_handlers, "app")
        )
        self.history = _resolve_history(history, resolved_storage)
        self.concurrency = _check_concurrency(concurrency)
        """The most jobs running at once in this app (None: no limit); settable before
        startup (``jobify worker --concurrency``)."""
        self.handle_signals = bool(handle_signals)
        if not worker and not isinstance(resolved_storage, SharedStorage):
            raise ValueError(
                "worker=False (schedule only, never run) needs a shared storage such as "
                "PostgresStorage: with an embedded store this app is the only one that runs "
                "its jobs"
            )
        self.worker = bool(worker)
        """False: a producer-only app (e.g. a web process) that schedules jobs into a shared
        store for worker processes to run, and claims none itself."""
        self._clock: Callable[[], float] = clock or time.time
        self._new_id = id_factory(uuid_generator)
        self._loop_factory = loop_factory or asyncio.get_running_loop
        self._route_class = route_class or RootRoute
        self._started = False
        self._closed = False
        self.plugins: list[Plugin] = []
        for plugin in plugins or ():
            self.add_plugin(plugin)
        self._registry = Registry(self._connect_route)
        self._parsers: dict[str, CronParser] = {}
        self._scheduler: Scheduler | None = None
        self._submitter: Submitter | None = None
        self._orphans: dict[str, OrphanSource] = {}
        self._worker: SharedWorker | None = None
        self._stack: AsyncExitStack | None = None
        self._signals = SignalGuard()

    # -- registration --------------------------------------------------------------------

    def _owner(self) -> JobRouter | None:
        return None

    def _connect_route(self, route: Route[Any, Any]) -> None:
        route.connect(NotStarted(self.configs.tz, self._clock))
        # The classes a task's annotations name are the ones its stored jobs may rebuild;
        # walked again at startup for annotations that could not be resolved yet.
        register_task_types(self.configs.serializer, route.func)

    def _check_registering(self) -> None:
        self._check_not_started("register a task")

    def _register(self, route: Route[Any, Any]) -> None:
        if route.options.cron is not None:
            self._cron_parser(route.options.cron.expression)  # CronParseError at decoration
        self._registry.add(route)

    def include_router(self, router: JobRouter) -> None:
        """Add a router's tasks (and its sub-routers') under their prefixes.

        ``RuntimeError`` for a router included before (here or elsewhere) and for an app;
        ``ApplicationStateError`` once the app has started."""
        check_includable(router)
        self._check_not_started("include a router")
        for node in router.walk():
            for route in node.routes:
                if route.options.cron is not None:
                    self._cron_parser(route.options.cron.expression)
        self._registry.attach(router)

    def include_routers(self, *routers: JobRouter) -> None:
        """Include several routers, in order (at least one: ``ValueError`` otherwise)."""
        check_some(routers)
        for router in routers:
            self.include_router(router)

    def _check_not_started(self, what: str) -> None:
        if self._started:
            raise ApplicationStateError(
                f"cannot {what}: the app has already started; do it before startup"
            )

    def add_middleware(self, middleware: BaseMiddleware) -> None:
        """Add execution middleware for every task (after those given so far)."""
        self._check_not_started("add middleware")
        if not callable(middleware):
            raise TypeError(f"middleware must be a BaseMiddleware, got {middleware!r}")
        self.middleware.append(middleware)

    def add_outer_middleware(self, middleware: BaseOuterMiddleware) -> None:
        """Add scheduling middleware for every task (after those given so far)."""
        self._check_not_started("add outer middleware")
        if not callable(middleware):
            raise TypeError(f"outer middleware must be a BaseOuterMiddleware, got {middleware!r}")
        self.outer_middleware.append(middleware)

    def add_exception_handler(
        self, exc_type: type[BaseException], handler: ExceptionHandler
    ) -> None:
        """Handle ``exc_type`` (and subclasses) raised by any task, as if given in
        ``exception_handlers``."""
        self._check_not_started("add an exception handler")
        check_handler(exc_type, handler, "app")
        self.exception_handlers[exc_type] = handler

    def add_plugin(self, plugin: Plugin) -> None:
        """Add a plugin (``async startup(app)`` / ``async shutdown()``) before startup."""
        if self._started:
            raise ApplicationStateError("plugins must be added before the app starts")
        # The runtime Protocol check only sees that the attributes exist; a sync startup or
        # a plugin class instead of an instance would fail later, far from the mistake.
        if (
            isinstance(plugin, type)
            or not isinstance(plugin, Plugin)
            or not all(
                inspect.iscoroutinefunction(getattr(plugin, name))
                for name in ("startup", "shutdown")
            )
        ):
            raise TypeError(
                f"a plugin needs async startup(app) and async shutdown() methods, got {plugin!r}"
            )
        self.plugins.append(plugin)

    def _cron_parser(self, expression: str) -> CronParser:
        parser = self._parsers.get(expression)
        if parser is None:
            parser = self._parsers[expression] = self.configs.cron_factory(expression)
        return parser

    # -- queries -------------------------------------------------------------------------

    @property
    def concurrency_in_force(self) -> tuple[int | None, str]:
        """The most jobs this app runs at once and why: ``(concurrency, "set")`` when given,
        ``(100, "shared-store default")`` on a shared store without it (a worker claims at
        most that many), ``(None, "no limit")`` otherwise."""
        if self.concurrency is not None:
            return self.concurrency, "set"
        if isinstance(self.configs.storage, SharedStorage):
            return DEFAULT_CAPACITY, "shared-store default"
        return None, "no limit"

    @property
    def tasks(self) -> Mapping[str, Route[Any, Any]]:
        """Every registered task by full name (app tasks and included routers' tasks)."""
        return MappingProxyType(self._registry.routes)

    def find_job(self, job_id: str) -> Job[Any] | None:
        """The live handle of a scheduled, running or paused job, or of an orphaned stored
        job (status ORPHANED: its ``cancel()`` removes the record); None if unknown."""
        if type(job_id) is not str and isinstance(job_id, str):
            job_id = str.__str__(job_id)  # an enum member with a str value: the value
        if self._scheduler is not None:
            entry = self._scheduler.jobs.get(job_id)
            if entry is not None:
                return entry.job
        if self._worker is not None:
            remote = self._worker.remote.get(job_id)
            if remote is not None:
                return remote.job
        orphan = self._orphans.get(job_id)
        return orphan.job if orphan is not None else None

    def get_active_jobs(self) -> list[Job[Any]]:
        """Handles of every scheduled, running or paused job (with a shared store: the jobs
        this process runs right now and those it scheduled that have not ended)."""
        if self._scheduler is None:
            return []
        jobs = [entry.job for entry in self._scheduler.jobs.values()]
        if self._worker is not None:
            jobs += [handle.job for handle in self._worker.remote.values()]
        return jobs

    async def wait_all(self, timeout: float | None = None) -> None:
        """Wait until no job is scheduled or running.

        Raises ``TimeoutError`` when jobs are still pending after ``timeout`` seconds.
        """
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise TypeError(f"timeout must be a number, got {type(timeout).__name__}")
            if not timeout >= 0:
                raise ValueError(f"timeout must be >= 0 seconds (or None), got {timeout}")
        if self._scheduler is None:
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        idle = await self._scheduler.wait_idle(timeout)
        worker = self._worker
        if idle and worker is not None:
            # With a shared store, also the one-shot jobs scheduled here that run elsewhere.
            left = None if deadline is None else max(0.0, deadline - loop.time())
            idle = await worker.wait_remote(left)
        if not idle:
            pending = len(self._scheduler.jobs)
            if worker is not None:
                pending += len(worker.pending())
            raise TimeoutError(f"{pending} job(s) still scheduled or running after {timeout}s")

    # -- life cycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Jobify:
        await self.startup()
        task = asyncio.current_task()
        if task is not None and self.handle_signals:
            self._signals.install(asyncio.get_running_loop(), task)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.shutdown()
        finally:
            self._signals.uninstall()
        self._signals.reraise()

    async def startup(self) -> None:
        """Enter lifespans and plugins, open storage, restore jobs, start timers."""
        if self._closed:
            raise ApplicationStateError("the app has shut down; create a new Jobify to restart")
        if self._started:
            raise ApplicationStateError("the app is already started")
        loop = self._loop_factory()
        self._started = True
        self._registry.freeze()
        stack = AsyncExitStack()
        try:
            await self._enter_lifespans(stack)
            for plugin in self.plugins:
                await plugin.startup(self)
                stack.push_async_callback(plugin.shutdown)
            pools = Pools(self.configs.threadpool_executor, self.configs.processpool_executor)
            # Off the loop: waiting for a process pool's workers must not stall other tasks.
            stack.push_async_callback(asyncio.to_thread, pools.shutdown)
            stack.callback(pools.cancel_thread_calls)  # unwinds first, on the loop
            tasks = self._compile(pools)
            for stop in self._middleware_shutdowns():
                # Pushed before the scheduler's stop: running jobs are cancelled first, then
                # middleware (e.g. QueueMiddleware's workers) is stopped.
                stack.push_async_callback(stop)
            storage = self.configs.storage
            scheduler = Scheduler(loop, self._clock, NULL_RUN_LOG, self.concurrency)
            self._scheduler = scheduler
            recorder: StoreRecorder | None = None
            worker: SharedWorker | None = None
            if storage is not None:
                codec = ArgumentCodec(
                    self.configs.serializer, self.configs.dumper, self.configs.loader
                )
                for task in tasks.values():
                    register_task_types(self.configs.serializer, task.spec.func)
                recorder = StoreRecorder(storage, codec)
                recorder.former = former_names(tasks)
                if isinstance(storage, SharedStorage):
                    worker = self._shared_worker(storage, scheduler, recorder, codec, tasks)
                    storage.set_listener(worker)  # before startup: it starts listening
                    storage.use_clock(self._clock)  # claims and leases on the app's time
                await storage.startup()
                stack.push_async_callback(storage.shutdown)
                if worker is not None:
                    # Completions issued by runs that ended must land before the store closes.
                    stack.push_async_callback(worker.recorder.flush)
                if self.history is not None:
                    history = HistoryLog(storage, self.history, self._clock)
                    scheduler.run_log = history
                    history.start(loop)
                    stack.push_async_callback(history.stop)
            submitter = Submitter(
                scheduler=scheduler,
                clock=self._clock,
                tz=self.configs.tz,
                parser_for=self._cron_parser,
                new_id=self._new_id,
                config=self.configs,
                recorder=recorder,
                shared=worker,
            )
            self._submitter = submitter
            stack.push_async_callback(scheduler.stop)
            if worker is not None:
                self._worker = worker
                stack.push_async_callback(worker.stop)  # stops claiming first
            for task in tasks.values():
                port: TaskPort[Any] = TaskPort(submitter, task)
                task.port = port
                task.control = scheduler
                self._registry.routes[task.name].connect(port)
            restorer = Restorer(
                scheduler, submitter, self._cron_parser, self.configs.tz, self._orphans
            )
            if worker is not None:
                await restorer.declare_shared(worker, tasks)
            elif storage is not None and recorder is not None:
                await restorer.restore(storage, recorder, tasks)
                if isinstance(storage, CommandChannel):
                    retry = partial(restorer.retry, storage, recorder, tasks, self._clock)
                    applier = CommandApplier(
                        storage, scheduler, self._orphans, self._run_extra, retry
                    )
                    applier.start()
                    stack.push_async_callback(applier.stop)
            else:
                await restorer.declare(tasks, {}, {}, None)
            if storage is not None:
                await storage.save_tasks(_task_records(tasks, self._clock(), self.configs.tz))
            # Timers start last: a restored job that is overdue runs once startup is done,
            # never while it is still being set up.
            scheduler.start()
            if worker is not None:
                worker.start(loop)
        except BaseException:
            self._closed = True
            if self._submitter is not None:
                self._submitter.open = False
            await stack.aclose()
            raise
        self._stack = stack

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop timers and running jobs, close executors and storage, exit lifespans.

        ``grace``: seconds to let running jobs finish before they are cancelled (None, the
        default: cancel them at once). No new job is accepted and no new run starts once
        shutdown has begun. Durable jobs stay stored and run after the next start.
        """
        if grace is not None:
            if isinstance(grace, bool) or not isinstance(grace, int | float):
                raise TypeError(f"grace must be a number of seconds, got {type(grace).__name__}")
            if not grace >= 0 or grace == float("inf"):
                raise ValueError(f"grace must be a finite number of seconds >= 0, got {grace}")
        if not self._started or self._closed:
            self._closed = True
            return
        self._closed = True
        if self._submitter is not None:
            self._submitter.open = False
            await self._submitter.drain()
        if self._worker is not None:
            self._worker.stop_claiming()
        if grace and self._scheduler is not None:
            await self._scheduler.drain(grace)
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _enter_lifespans(self, stack: AsyncExitStack) -> None:
        if self.lifespan is not None:
            value = await stack.enter_async_context(self.lifespan(self))
            if isinstance(value, Mapping):
                self.state.update(value)
        for router in self._registry.routers:
            if router.lifespan is not None:
                value = await stack.enter_async_context(router.lifespan(router))
                if isinstance(value, Mapping):
                    router.state.update(value)

    def _compile(self, pools: Pools) -> dict[str, Task]:
        """Build every task's execution pipeline, scheduling chain and state, once."""
        durable_storage = self.configs.storage is not None
        tasks: dict[str, Task] = {}
        for name, route in self._registry.routes.items():
            router = route.router
            routers = router.chain() if router is not None else []
            middleware: list[Any] = [*self.middleware]
            outer: list[Any] = [*self.outer_middleware]
            for node in routers:
                middleware.extend(node.middleware)
                outer.extend(node.outer_middleware)
            middleware.extend(route.options.middleware)
            outer.extend(route.options.outer_middleware)
            queues = [m for m in middleware if isinstance(m, QueueMiddleware)]
            if len(queues) != len({id(q) for q in queues}):
                raise ValueError(
                    f"task {name!r}: the same QueueMiddleware instance is in its chain "
                    "twice (e.g. at app and router level); an execution would wait for a "
                    "second slot while holding the first. Add it at one level only."
                )
            handlers = [
                route.options.exception_handlers,
                *(r.exception_handlers for r in reversed(routers)),
                self.exception_handlers,
            ]
            state = (
                ScopedState([*(r.state for r in reversed(routers)), self.state])
                if routers
                else self.state
            )
            task = Task(route, name, route.options.durable and durable_storage, state)
            task.execute = build_execute(
                route,
                name,
                middleware=middleware,
                handlers=handlers,
                pools=pools,
                config=self.configs,
                state=state,
            )
            task.outer = outer or None
            tasks[name] = task
        return tasks

    def _middleware_shutdowns(self) -> list[Callable[[], Awaitable[Any]]]:
        """The async ``shutdown`` of every middleware instance in use, each instance once."""
        chains: list[Sequence[Any]] = [self.middleware, self.outer_middleware]
        for router in self._registry.routers:
            chains += [router.middleware, router.outer_middleware]
        for route in self._registry.routes.values():
            chains += [route.options.middleware, route.options.outer_middleware]
        seen: set[int] = set()
        stops: list[Callable[[], Awaitable[Any]]] = []
        for chain in chains:
            for m in chain:
                stop = getattr(m, "shutdown", None)
                if id(m) in seen or not inspect.iscoroutinefunction(stop):
                    continue
                seen.add(id(m))
                stops.append(stop)
        return stops

    def _shared_worker(
        self,
        storage: SharedStorage,
        scheduler: Scheduler,
        records: StoreRecorder,
        codec: ArgumentCodec,
        tasks: Mapping[str, Task],
    ) -> SharedWorker:
        recorder = SharedRecorder(storage, records, ResultCodec(codec), self._clock)
        return SharedWorker(
            storage,
            scheduler,
            records,
            recorder,
            {name: task for name, task in tasks.items() if task.durable},
            self._cron_parser,
            self.configs.tz,
            self.concurrency or DEFAULT_CAPACITY,
            claims=self.worker,
        )

    async def _run_extra(self, entry: JobEntry) -> Job[Any]:
        """One extra run now of a cron job's task and arguments (not counted against its
        ``max_runs``): a one-shot job of its own."""
        submitter = self._submitter
        assert submitter is not None
        request = Request(
            entry.task,
            entry.arguments,
            self._clock(),
            None,
            None,
            self.configs.tz,
            f"{entry.job.id}.run-{self._new_id()[:12]}",
            replace=False,
            force=False,
        )
        return await submitter.commit(request)


def _task_records(tasks: Mapping[str, Task], now: float, tz: ZoneInfo) -> list[TaskRecord]:
    """The registered tasks, for inspection tools (which read them from the store); each
    names the app's zone, in which the command and the dashboard show times."""
    records = []
    for name, task in tasks.items():
        options = task.spec.options
        cron = options.cron
        doc = {
            "run_mode": options.run_mode.value,
            "durable": options.durable,
            "timeout": options.timeout,
            "retries": options.retry.retries if options.retry is not None else 0,
            "cron": cron.expression if cron is not None else None,
            "cron_tz": str(cron.zone) if cron is not None and cron.zone is not None else None,
            "max_runs": cron.max_runs if cron is not None else None,
            "app_tz": tz.key,
        }
        records.append(TaskRecord(name, json.dumps(doc, separators=(",", ":")), now))
    return records
