"""``Jobify``: wires the registry, scheduler, executor and storage, and runs their life cycle.

Deliberately thin: options are validated into a ``JobifyConfiguration``; scheduling lives in
``schedule.py``, timers in ``scheduler.py``, execution in ``execution.py``, persistence in
``persistence.py``. Resources are entered into one ``AsyncExitStack`` at startup so shutdown
releases them in reverse order by construction.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor as PoolExecutor
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import tzinfo
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from jobify.config import JobifyConfiguration
from jobify.context import State
from jobify.exceptions import ApplicationStateError
from jobify.execution import Executor, Pools, build_pipeline, is_bare
from jobify.jobs import Job
from jobify.queue import QueueMiddleware
from jobify.router import JobRouter, Registry, RootRoute, Route, _check_handlers, _Registrar
from jobify.schedule import Submitter
from jobify.scheduler import Scheduler
from jobify.signals import SignalGuard
from jobify.triggers import CronFactory, CronParser

if TYPE_CHECKING:
    from jobify.middleware import BaseMiddleware, BaseOuterMiddleware
    from jobify.persistence import Persistence
    from jobify.router import ExceptionHandlers
    from jobify.serializers import Serializer
    from jobify.storage import Storage
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


def _resolve_tz(tz: Any) -> ZoneInfo:
    if tz is None:
        return ZoneInfo("UTC")
    if isinstance(tz, ZoneInfo):
        return tz
    if isinstance(tz, str):
        return ZoneInfo(tz)
    if isinstance(tz, tzinfo) and tz.utcoffset(None) is not None and str(tz) == "UTC":
        return ZoneInfo("UTC")
    raise TypeError(f"tz must be a zoneinfo.ZoneInfo (e.g. ZoneInfo('Europe/Berlin')), got {tz!r}")


def _resolve_storage(storage: Any) -> Storage | None:
    from jobify.storage import Storage

    if storage is False:
        return None
    if storage is None:
        from jobify.storage import SQLiteStorage

        return SQLiteStorage("jobify.db")
    if isinstance(storage, Storage):
        return storage
    raise TypeError(
        "storage must be None (SQLite file jobify.db), False (nothing persisted) or a "
        f"Storage instance, got {storage!r}"
    )


class Jobify(_Registrar):
    """The application: register tasks, then ``async with app:`` to run them."""

    def __init__(
        self,
        *,
        tz: ZoneInfo | None = None,
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
    ) -> None:
        from jobify.crontab import create_crontab

        if serializer is None:
            from jobify.serializers import ExtendedJSONSerializer, JSONSerializer

            serializer = (
                JSONSerializer()
                if dumper is not None or loader is not None
                else ExtendedJSONSerializer()
            )
        self.configs = JobifyConfiguration(
            tz=_resolve_tz(tz),
            storage=_resolve_storage(storage),
            serializer=serializer,
            dumper=dumper,
            loader=loader,
            cron_factory=cron_factory or create_crontab,
            threadpool_executor=threadpool_executor,
            processpool_executor=processpool_executor,
        )
        self.state = State()
        self.lifespan = lifespan
        self.middleware: list[BaseMiddleware] = list(middleware or ())
        self.outer_middleware: list[BaseOuterMiddleware] = list(outer_middleware or ())
        self.exception_handlers = _check_handlers(exception_handlers, "app")
        self._loop_factory = loop_factory or asyncio.get_running_loop
        self._route_class = route_class or RootRoute
        self._started = False
        self._closed = False
        self.plugins: list[Plugin] = []
        for plugin in plugins or ():
            self.add_plugin(plugin)
        self._registry = Registry(self)
        self._routers: list[JobRouter] = []
        self._wall: Callable[[], float] = time.time
        self._submitter = Submitter(self)
        self._outer_chains: dict[str, Sequence[Any]] = {}
        self._parsers: dict[str, CronParser] = {}
        self._persistence: Persistence | None = None
        self._scheduler: Scheduler = None  # type: ignore[assignment]  # set at startup
        self._stack: AsyncExitStack | None = None
        self._signals = SignalGuard()

    # -- registration --------------------------------------------------------------------

    def _owner(self) -> JobRouter | None:
        return None

    def _register(self, route: Route[Any, Any]) -> None:
        if route.options.cron is not None:
            self._cron_parser(route.options.cron.expression)  # CronParseError at decoration
        self._registry.add(route)

    def include_router(self, router: JobRouter) -> None:
        """Add a router's tasks (and its sub-routers') under their prefixes."""
        if not isinstance(router, JobRouter):
            raise TypeError(f"include_router takes a JobRouter, got {type(router).__name__}")
        if router.parent is not None or router._app is not None:
            raise ValueError(f"{router!r} is already included somewhere; include it once")
        for node in router.walk():
            for route in node.routes:
                if route.options.cron is not None:
                    self._cron_parser(route.options.cron.expression)
        self._registry.attach(router)
        self._routers.append(router)

    def include_routers(self, *routers: JobRouter) -> None:
        """Include several routers, in order."""
        for router in routers:
            self.include_router(router)

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
    def tasks(self) -> Mapping[str, Route[Any, Any]]:
        """Every registered task by full name (app tasks and included routers' tasks)."""
        return MappingProxyType(self._registry.routes)

    def find_job(self, job_id: str) -> Job[Any] | None:
        """The live handle of a scheduled or running job, or None."""
        if self._scheduler is None:
            return None
        entry = self._scheduler.jobs.get(job_id)
        return entry.job if entry is not None else None

    def get_active_jobs(self) -> list[Job[Any]]:
        """Handles of every scheduled or running job."""
        if self._scheduler is None:
            return []
        return [entry.job for entry in self._scheduler.jobs.values()]

    async def wait_all(self, timeout: float | None = None) -> None:
        """Wait until no job is scheduled or running, or until ``timeout`` seconds pass."""
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise TypeError(f"timeout must be a number, got {type(timeout).__name__}")
            if not timeout >= 0:
                raise ValueError(f"timeout must be >= 0 seconds (or None), got {timeout}")
        if self._scheduler is None:
            return
        await self._scheduler.wait_idle(timeout)

    # -- life cycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Jobify:
        await self.startup()
        task = asyncio.current_task()
        if task is not None:
            self._signals.install(asyncio.get_running_loop(), task)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._signals.uninstall()
        await self.shutdown()
        self._signals.reraise()

    async def startup(self) -> None:
        """Enter lifespans and plugins, open storage, restore jobs, start timers."""
        if self._closed:
            raise ApplicationStateError("the app has shut down; create a new Jobify to restart")
        if self._started:
            raise ApplicationStateError("the app is already started")
        loop = self._loop_factory()
        self._started = True
        stack = AsyncExitStack()
        try:
            await self._enter_lifespans(stack)
            for plugin in self.plugins:
                await plugin.startup(self)
                stack.push_async_callback(plugin.shutdown)
            pools = Pools(self.configs.threadpool_executor, self.configs.processpool_executor)
            # Off the loop: waiting for a process pool's workers must not stall other tasks.
            stack.push_async_callback(asyncio.to_thread, pools.shutdown)
            self._compose(pools)
            for stop in self._middleware_shutdowns():
                # Pushed before the scheduler's stop: running jobs are cancelled first, then
                # middleware (e.g. QueueMiddleware's workers) is stopped.
                stack.push_async_callback(stop)
            self._persistence = self._make_persistence()
            self._scheduler = Scheduler(
                loop,
                Executor(self.configs, self.state, pools),
                self._persistence,
                self._wall,
                self.configs.tz,
            )
            storage = self.configs.storage
            if storage is not None:
                await storage.startup()
                stack.push_async_callback(storage.shutdown)
            stack.push_async_callback(self._scheduler.stop)
            self._scheduler.start()
            await self._restore()
        except BaseException:
            self._closed = True
            await stack.aclose()
            raise
        self._stack = stack

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop timers and running jobs, close executors and storage, exit lifespans.

        ``grace``: seconds to let running jobs finish before they are cancelled (None, the
        default: cancel them at once). No new run starts once shutdown has begun.
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

    def _make_persistence(self) -> Persistence | None:
        storage = self.configs.storage
        if storage is None:
            return None
        from jobify.arguments import ArgumentCodec
        from jobify.persistence import Persistence

        codec = ArgumentCodec(self.configs.serializer, self.configs.dumper, self.configs.loader)
        return Persistence(storage, codec)

    def _compose(self, pools: Pools) -> None:
        """Build every route's execution pipeline and scheduling chain, once."""
        for route in self._registry.routes.values():
            routers = route._owner.chain() if route._owner is not None else []
            middleware = [*self.middleware]
            outer = [*self.outer_middleware]
            for router in routers:
                middleware.extend(router.middleware)
                outer.extend(router.outer_middleware)
            middleware.extend(route.options.middleware)
            outer.extend(route.options.outer_middleware)
            queues = [m for m in middleware if isinstance(m, QueueMiddleware)]
            if len(queues) != len({id(q) for q in queues}):
                raise ValueError(
                    f"task {route.name!r}: the same QueueMiddleware instance is in its chain "
                    "twice (e.g. at app and router level); an execution would wait for a "
                    "second slot while holding the first. Add it at one level only."
                )
            handlers = [
                route.options.exception_handlers,
                *(r.exception_handlers for r in reversed(routers)),
                self.exception_handlers,
            ]
            route.pipeline = build_pipeline(route, middleware, handlers, pools)
            route.bare = is_bare(route, middleware, handlers)
            if outer:
                self._outer_chains[route.name] = outer

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

    async def _restore(self) -> None:
        scheduler = self._scheduler
        routes = self._registry.routes
        if self._persistence is not None:
            entries = await self._persistence.restore(
                scheduler, routes, self._cron_parser, self.configs.tz
            )
            for entry in entries:
                scheduler.add(entry)
            for entry in entries:
                scheduler.arm(entry)
            if entries:
                log.info("restored %d job(s) from storage", len(entries))
        for route in routes.values():
            cron = route.options.cron
            if cron is None:
                continue
            existing = scheduler.jobs.get(route.name)
            arguments = route.bind(tuple(cron.args), dict(cron.kwargs))
            if existing is not None and existing.route is route and existing.cron == cron:
                continue  # unchanged definition: keep its counters and next fire
            await self._submitter._finish_submit(
                route,
                arguments,
                None,
                cron,
                self._cron_parser(cron.expression),
                cron.tz or self.configs.tz,
                route.name,
                replace=existing is not None,
            )
