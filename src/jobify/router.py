"""The task registry: ``JobRouter`` and the routes (decorated tasks) it holds.

A route is what ``@app.task`` / ``@router.task`` returns: still callable as the plain function,
plus ``push``/``schedule`` and its full ``name``. The default name is the function's
``module:qualname`` (the same wherever it is registered, so same-named functions of two modules
never collide). An explicit ``name`` is used alone at the top level, as ``prefix:name`` in a
router with a prefix and as ``a.b:name`` under nested prefixes.

This module knows nothing of the app: a route schedules through the :class:`SubmitPort` its
app connects it to, and a router registers into the app's :class:`Registry`.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from jobify._builder import ScheduleBuilder, SubmitPort
from jobify._context import State
from jobify._retry import SmartRetry, as_retry
from jobify._runmodes import RunMode
from jobify._task import ExceptionHandlers, TaskOptions, TaskSpec, check_text
from jobify._triggers import Cron
from jobify.exceptions import ApplicationStateError, RouteAlreadyRegisteredError

if TYPE_CHECKING:
    from jobify._jobs import Job
    from jobify.middleware import BaseMiddleware, BaseOuterMiddleware

__all__ = ["JobRouter", "NodeRoute", "RootRoute", "Route", "TaskOptions"]

P = ParamSpec("P")
T = TypeVar("T")
RouterLifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not timeout > 0 or timeout == float("inf"):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout}")
    return float(timeout)


def default_name(func: Callable[..., Any]) -> str | None:
    """``module:qualname`` of ``func``, the default task name (None if it has neither).

    A function of a script run as ``__main__`` is named after the script's file, so that its
    tasks keep their names when the same file is imported (e.g. by ``jobify worker``).
    """
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not isinstance(qualname, str):
        return None
    module = getattr(func, "__module__", None)
    if module == "__main__":
        path = getattr(sys.modules.get("__main__"), "__file__", None)
        if isinstance(path, str):
            module = Path(path).stem
    return f"{module}:{qualname}" if isinstance(module, str) and module else qualname


def check_handlers(handlers: ExceptionHandlers | None, where: str) -> ExceptionHandlers:
    """Validate an ``exception_handlers`` mapping (exception type → callable)."""
    if handlers is None:
        return MappingProxyType({})
    for exc_type, handler in handlers.items():
        check_handler(exc_type, handler, where)
    return MappingProxyType(dict(handlers))


def check_handler(exc_type: object, handler: object, where: str) -> None:
    """Validate one exception handler registration."""
    if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
        raise TypeError(
            f"{where}: exception handler keys must be exception types, got {exc_type!r}"
        )
    if not callable(handler):
        raise TypeError(f"{where}: the handler for {exc_type.__name__} is not callable")


class _Detached:
    """The port of a route whose router is not included in an app."""

    def __init__(self, route: Route[Any, Any]) -> None:
        self._route = route

    def _fail(self) -> RuntimeError:
        return RuntimeError(
            f"task {self._route.name!r} belongs to a router that is not included in an app; "
            "call app.include_router(router) before scheduling its tasks"
        )

    @property
    def tz(self) -> Any:
        raise self._fail()

    def now(self) -> float:
        raise self._fail()

    async def submit(self, *args: Any) -> Job[Any]:
        raise self._fail()

    async def submit_many(self, items: Any) -> list[Job[Any]]:
        raise self._fail()

    async def submit_on(self, *args: Any) -> Job[Any]:
        raise self._fail()


class Route(TaskSpec, Generic[P, T]):
    """A registered task: callable as the function, schedulable with ``push``/``schedule``.

    ``P`` is the function's parameters and ``T`` its result (for an ``async def``, what the
    coroutine returns): ``push`` and ``schedule`` take ``P`` and give a ``Job[T]``.
    ``options`` holds the task's validated :class:`TaskOptions`.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str,
        options: TaskOptions,
        owner: JobRouter | None,
        explicit: bool = True,
    ) -> None:
        super().__init__(func, name=name, options=options)
        self.explicit_name = explicit
        """Whether ``name`` was given (a router's prefix applies to given names only)."""
        self.__wrapped__ = func
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", name)
        self.__qualname__ = getattr(func, "__qualname__", name)
        self.__module__ = getattr(func, "__module__", __name__)
        self._owner = owner
        self._port: SubmitPort[T] = _Detached(self)

    @property
    def name(self) -> str:
        """The full name: ``module:qualname`` by default; a given name as ``name``,
        ``prefix:name`` or ``a.b:name``."""
        if not self.explicit_name:
            return self.local_name
        prefix = self._owner.full_prefix if self._owner is not None else ""
        return f"{prefix}:{self.local_name}" if prefix else self.local_name

    @property
    def former_names(self) -> tuple[str, ...]:
        """The default names this task had before default names became ``module:qualname``:
        the function's bare name, and in a router with a prefix ``prefix:name``."""
        if self.explicit_name:
            return ()
        bare = getattr(self.func, "__name__", None)
        if not isinstance(bare, str) or not bare:
            return ()
        prefix = self._owner.full_prefix if self._owner is not None else ""
        return (f"{prefix}:{bare}", bare) if prefix else (bare,)

    @property
    def router(self) -> JobRouter | None:
        """The router this task was registered on (None for an app's own task)."""
        return self._owner

    def connect(self, port: SubmitPort[T]) -> None:
        """Route this task's scheduling calls to ``port`` (called by the app it joins)."""
        self._port = port

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Call the plain function directly (no scheduling)."""
        return self.func(*args, **kwargs)

    async def push(self, *args: P.args, **kwargs: P.kwargs) -> Job[T]:
        """Run as soon as possible; returns once scheduled (and committed, if durable)."""
        port = self._port
        return await port.submit(self.bind(args, kwargs), port.now(), None, None, False, False)

    async def push_many(self, items: Iterable[tuple[Any, ...] | Mapping[str, Any]]) -> list[Job[T]]:
        """Push one job per item: a tuple of positional arguments or a mapping of keyword
        arguments. Every item is bound and encoded before anything is written (a bad one is
        a ``TypeError`` or ``SerializationError`` naming its index, and nothing is stored);
        the jobs are written in one commit. Returns the handles in the order of the items."""
        return await self._port.submit_many(items)

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> ScheduleBuilder[T]:
        """Bind arguments now; choose when with ``.at()``, ``.delay()`` or ``.cron()``."""
        port = self._port
        if isinstance(port, _Detached):
            raise port._fail()
        return ScheduleBuilder(port, self.bind(args, kwargs))


class RootRoute(Route[P, T]):
    """A task registered directly on the app."""


class NodeRoute(Route[P, T]):
    """A task registered on a router; it can be scheduled once the router is in an app."""


class _Registrar:
    """Shared ``task`` decorator of the app and routers."""

    _route_class: type[Route[Any, Any]]

    def _register(self, route: Route[Any, Any]) -> None:
        raise NotImplementedError

    def _check_registering(self) -> None:
        """Raise ``ApplicationStateError`` when the app this registers into has started."""
        raise NotImplementedError

    def _owner(self) -> JobRouter | None:
        raise NotImplementedError

    @overload
    def task(self, func: Callable[P, Coroutine[Any, Any, T]], /) -> Route[P, T]: ...
    @overload
    def task(self, func: Callable[P, T], /) -> Route[P, T]: ...
    @overload
    def task(
        self,
        func: Route[P, T],
        /,
        *,
        name: str | None = None,
        cron: str | Cron | None = None,
        retry: int | SmartRetry | None = None,
        timeout: float | None = None,
        durable: bool = True,
        run_mode: RunMode | None = None,
        metadata: Mapping[str, Any] | None = None,
        exception_handlers: ExceptionHandlers | None = None,
        middleware: Sequence[BaseMiddleware] | None = None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None = None,
        route_class: type[Route[Any, Any]] | None = None,
    ) -> Route[P, T]: ...
    @overload
    def task(
        self,
        *,
        name: str | None = None,
        cron: str | Cron | None = None,
        retry: int | SmartRetry | None = None,
        timeout: float | None = None,
        durable: bool = True,
        run_mode: RunMode | None = None,
        metadata: Mapping[str, Any] | None = None,
        exception_handlers: ExceptionHandlers | None = None,
        middleware: Sequence[BaseMiddleware] | None = None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None = None,
        route_class: type[Route[Any, Any]] | None = None,
    ) -> _TaskFactory: ...

    def task(  # type: ignore[misc]
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        cron: str | Cron | None = None,
        retry: int | SmartRetry | None = None,
        timeout: float | None = None,
        durable: bool = True,
        run_mode: RunMode | None = None,
        metadata: Mapping[str, Any] | None = None,
        exception_handlers: ExceptionHandlers | None = None,
        middleware: Sequence[BaseMiddleware] | None = None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None = None,
        route_class: type[Route[Any, Any]] | None = None,
    ) -> Any:
        """Register a task: ``@app.task`` or ``@app.task(name=..., cron=..., retry=...)``.

        ``name`` (default: the function's ``module:qualname``) may contain ``:`` and ``.``;
        only an empty or non-``str`` name is refused; a router's prefix goes before a given
        name, not before the default. A task object instead of a function registers its
        function again (under another ``name``). ``cron`` (a ``str`` or ``Cron``) also runs the task
        on that schedule from startup on, as the job whose id is the task's full name.
        ``retry``: an int N (N more attempts, backing off like ``SmartRetry(retries=N)``) or
        a ``SmartRetry``. ``timeout``: seconds per attempt. ``durable`` (default True): its
        jobs are stored and survive restarts when the app has storage. ``run_mode``: default
        ``RunMode.MAIN`` for ``async def``, ``RunMode.THREAD`` for ``def``. ``metadata``:
        seen by middleware as ``context.route_options["metadata"]``. ``exception_handlers``,
        ``middleware`` and ``outer_middleware``: this task's own, after the app's and its
        routers'. Returns the task object: callable as the plain function, with ``.name``,
        ``push(...)`` and ``schedule(...)``.
        """

        def decorate(f: Callable[..., Any]) -> Route[Any, Any]:
            self._check_registering()
            if isinstance(f, Route):
                f = f.func  # the same function again, as a route of its own
            if not callable(f):
                raise TypeError(f"@task decorates a function, got {type(f).__name__}")
            task_name = check_text(name if name is not None else default_name(f), "task name")
            is_async = inspect.iscoroutinefunction(f)
            mode = (
                run_mode if run_mode is not None else (RunMode.MAIN if is_async else RunMode.THREAD)
            )
            if not isinstance(mode, RunMode):
                raise TypeError(f"run_mode must be a RunMode, got {mode!r}")
            cron_obj = Cron(cron) if isinstance(cron, str) else cron
            if cron_obj is not None and not isinstance(cron_obj, Cron):
                raise TypeError(f"cron must be a str or a Cron, got {type(cron).__name__}")
            if metadata is not None and not isinstance(metadata, Mapping):
                raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
            options = TaskOptions(
                cron=cron_obj,
                retry=as_retry(retry),
                timeout=_check_timeout(timeout),
                durable=bool(durable),
                run_mode=mode,
                metadata=MappingProxyType(dict(metadata or {})),
                exception_handlers=check_handlers(exception_handlers, f"task {task_name!r}"),
                middleware=tuple(middleware or ()),
                outer_middleware=tuple(outer_middleware or ()),
            )
            cls = route_class or self._route_class
            route = cls(
                f, name=task_name, options=options, owner=self._owner(), explicit=name is not None
            )
            self._register(route)
            return route

        if func is not None:
            return decorate(func)
        return decorate


class _TaskFactory:
    """Typing helper: the decorator returned by ``@app.task(...)``."""

    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, T]], /) -> Route[P, T]: ...
    @overload
    def __call__(self, func: Callable[P, T], /) -> Route[P, T]: ...
    def __call__(self, func: Callable[..., Any], /) -> Any: ...


class JobRouter(_Registrar):
    """A group of tasks with a shared prefix, state, lifespan, middleware and handlers.

    Every argument is optional. ``prefix`` is put before its tasks' names (``prefix:name``;
    nested routers join prefixes with ``.``: ``outer.inner:name``); it must not contain
    ``:``. ``state`` is the initial ``router.state``: the router's tasks see it first, then
    their parent routers' states, then ``app.state``. ``lifespan(router)`` returns an async
    context manager entered at app startup (after the app's own lifespan, in include order)
    and exited at shutdown; a mapping it yields is merged into ``router.state``.
    ``middleware`` and ``outer_middleware`` apply to its tasks and its sub-routers' tasks,
    after the app's and the parent routers'; ``exception_handlers`` (exception type →
    handler) are looked up after a task's own and before the parents' and the app's.
    ``route_class`` is the class of the task objects ``router.task`` creates.

    Include it with ``app.include_router(router)`` (or in another router) before the app
    starts; its tasks can be scheduled once the app they belong to has started.
    """

    def __init__(
        self,
        prefix: str | None = None,
        state: Mapping[str, Any] | None = None,
        lifespan: RouterLifespan | None = None,
        middleware: Sequence[BaseMiddleware] | None = None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None = None,
        exception_handlers: ExceptionHandlers | None = None,
        route_class: type[Route[Any, Any]] | None = None,
    ) -> None:
        if prefix is not None:
            prefix = check_text(prefix, "router prefix")
            if ":" in prefix:
                raise ValueError(
                    f"router prefix must not contain ':' (it separates prefix and task name), "
                    f"got {prefix!r}"
                )
        self.prefix = prefix
        self.state = State(state)
        """This router's state: its tasks see it first, then the parents', then the app's."""
        self.lifespan = lifespan
        self.middleware: list[BaseMiddleware] = list(middleware or ())
        self.outer_middleware: list[BaseOuterMiddleware] = list(outer_middleware or ())
        self.exception_handlers = check_handlers(exception_handlers, "router")
        self._route_class = route_class or NodeRoute
        self.routes: list[Route[Any, Any]] = []
        self.routers: list[JobRouter] = []
        self.parent: JobRouter | None = None
        self._registry: Registry | None = None

    def __repr__(self) -> str:
        return f"<JobRouter prefix={self.prefix!r}>"

    @property
    def full_prefix(self) -> str:
        """Prefixes from the outermost router down to this one, joined with '.'."""
        parts: list[str] = []
        node: JobRouter | None = self
        while node is not None:
            if node.prefix:
                parts.append(node.prefix)
            node = node.parent
        return ".".join(reversed(parts))

    def chain(self) -> list[JobRouter]:
        """This router and its parents, outermost first."""
        chain: list[JobRouter] = []
        node: JobRouter | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()
        return chain

    def _owner(self) -> JobRouter | None:
        return self

    def _check_open(self, what: str) -> None:
        if self._registry is not None and self._registry.frozen:
            raise ApplicationStateError(
                f"cannot {what}: the app has already started; do it before startup"
            )

    def add_middleware(self, middleware: BaseMiddleware) -> None:
        """Add execution middleware for this router's tasks (after those given so far)."""
        self._check_open("add middleware")
        if not callable(middleware):
            raise TypeError(f"middleware must be a BaseMiddleware, got {middleware!r}")
        self.middleware.append(middleware)

    def add_outer_middleware(self, middleware: BaseOuterMiddleware) -> None:
        """Add scheduling middleware for this router's tasks (after those given so far)."""
        self._check_open("add outer middleware")
        if not callable(middleware):
            raise TypeError(f"outer middleware must be a BaseOuterMiddleware, got {middleware!r}")
        self.outer_middleware.append(middleware)

    def _check_registering(self) -> None:
        self._check_open("register a task")

    def _register(self, route: Route[Any, Any]) -> None:
        registry = self._registry
        if registry is not None:
            registry.add(route)  # raises on duplicates / after startup
        elif any(r.name == route.name for r in self.routes):
            raise RouteAlreadyRegisteredError(route.name)
        self.routes.append(route)

    def include_router(self, router: JobRouter) -> None:
        """Nest ``router`` under this one (its explicitly named tasks gain this router's
        prefix). ``RuntimeError`` for a router already included, for this router itself or
        one of its parents, and for an app."""
        check_includable(router)
        self._check_open("include a router")
        node: JobRouter | None = self
        while node is not None:
            if node is router:
                raise RuntimeError("a router cannot include itself or one of its parents")
            node = node.parent
        router.parent = self
        if self._registry is not None:
            try:
                self._registry.attach(router)
            except BaseException:
                router.parent = None
                raise
        self.routers.append(router)

    def include_routers(self, *routers: JobRouter) -> None:
        """Include several routers, in order (at least one)."""
        check_some(routers)
        for router in routers:
            self.include_router(router)

    def walk(self) -> list[JobRouter]:
        """This router and every router below it, in include order (depth first)."""
        out = [self]
        for sub in self.routers:
            out.extend(sub.walk())
        return out


def check_includable(router: object) -> None:
    """The checks every ``include_router`` makes first (the app's and a router's)."""
    if isinstance(router, _Registrar) and not isinstance(router, JobRouter):
        raise RuntimeError(
            "include_router takes a JobRouter; an app cannot be included (in itself, in "
            "another app or in a router)"
        )
    if not isinstance(router, JobRouter):
        raise TypeError(f"include_router takes a JobRouter, got {type(router).__name__}")
    if router.parent is not None or router._registry is not None:
        raise RuntimeError(f"{router!r} is already included somewhere; include it once")


def check_some(routers: Sequence[object]) -> None:
    """``include_routers()`` needs at least one router."""
    if not routers:
        raise ValueError("include_routers() needs at least one router")


class Registry:
    """One app's table of routes by full name, and the routers included in it.

    ``connect`` is called with every route that joins (the app gives it its port).
    ``freeze()`` (at app startup) makes every later registration an error.
    """

    def __init__(self, connect: Callable[[Route[Any, Any]], None]) -> None:
        self._connect = connect
        self.routes: dict[str, Route[Any, Any]] = {}
        self.routers: list[JobRouter] = []
        self.frozen = False

    def freeze(self) -> None:
        """No more tasks or routers: the app has started."""
        self.frozen = True

    def add(self, route: Route[Any, Any]) -> None:
        """Register one route under its full name."""
        if self.frozen:
            raise ApplicationStateError(
                f"cannot register task {route.name!r}: the app has already started; "
                "register tasks before startup"
            )
        name = route.name
        if name in self.routes:
            raise RouteAlreadyRegisteredError(name)
        self.routes[name] = route
        self._connect(route)

    def attach(self, router: JobRouter) -> None:
        """Register a router tree (every route of it, under its full name)."""
        if self.frozen:
            raise ApplicationStateError(
                "cannot include a router: the app has already started; include routers "
                "before startup"
            )
        tree = router.walk()
        new = [route for node in tree for route in node.routes]
        seen: set[str] = set()
        for route in new:
            name = route.name
            if name in self.routes or name in seen:
                raise RouteAlreadyRegisteredError(name)
            seen.add(name)
        for node in tree:
            node._registry = self
            self.routers.append(node)
        for route in new:
            self.routes[route.name] = route
            self._connect(route)
