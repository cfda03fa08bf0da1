"""The task registry: ``JobRouter`` and the routes (decorated tasks) it holds.

A route is what ``@app.task`` / ``@router.task`` returns: still callable as the plain function,
plus ``push``/``schedule`` and its full ``name``. Names: ``name`` alone at the top level,
``prefix:name`` in a router with a prefix, ``a.b:name`` for nested prefixes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from jobify.context import INJECT, Extractor, State, injections_for
from jobify.exceptions import ApplicationStateError, RouteAlreadyRegisteredError
from jobify.retry import SmartRetry, as_retry
from jobify.runners import RunMode, check_process_function
from jobify.triggers import Cron

if TYPE_CHECKING:
    from jobify.app import Jobify
    from jobify.jobs import Job
    from jobify.middleware import BaseMiddleware, BaseOuterMiddleware
    from jobify.schedule import ScheduleBuilder

__all__ = ["JobRouter", "NodeRoute", "RootRoute", "Route", "TaskOptions"]

P = ParamSpec("P")
T = TypeVar("T")
ExceptionHandler = Callable[[Any, Any], Any]
Bound = tuple[Any, ...] | dict[str, Any]
"""Bound arguments: the positional tuple itself when every parameter was given positionally
(no copy, the smallest form for 100k waiting jobs), else parameter name → value."""
ExceptionHandlers = Mapping[type[BaseException], ExceptionHandler]
RouterLifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """The validated options of one task (``@app.task(...)``)."""

    cron: Cron | None
    retry: SmartRetry | None
    timeout: float | None
    durable: bool
    run_mode: RunMode
    metadata: Mapping[str, Any]
    exception_handlers: ExceptionHandlers
    middleware: Sequence[BaseMiddleware]
    outer_middleware: Sequence[BaseOuterMiddleware]


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not timeout > 0 or timeout == float("inf"):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout}")
    return float(timeout)


def _check_handlers(handlers: ExceptionHandlers | None, where: str) -> ExceptionHandlers:
    if handlers is None:
        return MappingProxyType({})
    for exc_type, handler in handlers.items():
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise TypeError(
                f"{where}: exception_handlers keys must be exception types, got {exc_type!r}"
            )
        if not callable(handler):
            raise TypeError(f"{where}: the handler for {exc_type.__name__} is not callable")
    return MappingProxyType(dict(handlers))


class Route(Generic[P, T]):
    """A registered task: callable as the function, schedulable with ``push``/``schedule``."""

    def __init__(
        self, func: Callable[..., Any], *, name: str, options: TaskOptions, owner: JobRouter | None
    ) -> None:
        self.func = func
        self.__wrapped__ = func
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", name)
        self.__qualname__ = getattr(func, "__qualname__", name)
        self.__module__ = getattr(func, "__module__", __name__)
        self.local_name = name
        self.options = options
        self._owner = owner
        self._app: Jobify | None = None
        self.is_async = inspect.iscoroutinefunction(func)
        self.signature = inspect.signature(func)
        self.injections: Mapping[str, Extractor] = injections_for(func, name)
        if self.injections and options.run_mode is RunMode.PROCESS:
            raise TypeError(
                f"task {name!r} uses run_mode=PROCESS and asks for injected "
                f"{sorted(self.injections)}; live objects cannot be sent to another process"
            )
        params = list(self.signature.parameters.values())
        self.bind_signature = self.signature.replace(
            parameters=[p for p in params if p.default is not INJECT]
        )
        bindable = list(self.bind_signature.parameters.values())
        self._positional_names: tuple[str, ...] | None = (
            tuple(p.name for p in bindable)
            if all(p.kind is p.POSITIONAL_OR_KEYWORD for p in bindable)
            else None
        )
        self._required = sum(1 for p in bindable if p.default is p.empty)
        # Calling by keyword is fastest and always right unless the function has
        # positional-only or *args parameters; then BoundArguments rebuilds the call.
        self.call_by_keyword = not any(
            p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL) for p in params
        )
        self.route_options: Mapping[str, Any] = MappingProxyType(
            {
                "name": name,
                "cron": options.cron,
                "retry": options.retry,
                "timeout": options.timeout,
                "durable": options.durable,
                "run_mode": options.run_mode,
                "metadata": options.metadata,
            }
        )
        self._process_ref: tuple[str, str] | None = None
        # Composed at app startup (execution.build_pipeline); None before.
        self.pipeline: Any = None
        self.bare = False

    @property
    def name(self) -> str:
        """The full name: ``name``, ``prefix:name`` or ``a.b:name``."""
        prefix = self._owner.full_prefix if self._owner is not None else ""
        return f"{prefix}:{self.local_name}" if prefix else self.local_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Call the plain function directly (no scheduling)."""
        return self.func(*args, **kwargs)

    # -- scheduling ----------------------------------------------------------------------

    @property
    def app(self) -> Jobify:
        """The app this task is registered with; RuntimeError while its router is detached."""
        app = self._app
        if app is None:
            raise RuntimeError(
                f"task {self.name!r} belongs to a router that is not included in an app; "
                "call app.include_router(router) before scheduling its tasks"
            )
        return app

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Bound:
        """Bind call arguments to the signature (TypeError if wrong); see :data:`Bound`."""
        names = self._positional_names
        if not kwargs and names is not None and self._required <= len(args) <= len(names):
            if len(args) == len(names):
                return args
            # Plain positional call of a plain signature: what Signature.bind would return.
            return dict(zip(names, args, strict=False))
        try:
            return self.bind_signature.bind(*args, **kwargs).arguments
        except TypeError as exc:
            raise TypeError(f"wrong arguments for task {self.name!r}: {exc}") from None

    def as_dict(self, arguments: Bound) -> dict[str, Any]:
        """Bound arguments as parameter name → value."""
        if type(arguments) is tuple:
            assert self._positional_names is not None
            return dict(zip(self._positional_names, arguments, strict=True))
        return arguments  # type: ignore[return-value]

    def call_args(self, arguments: Bound) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The ``(args, kwargs)`` to call the function with, from bound arguments."""
        if type(arguments) is tuple:
            # Keyword form, as for a dict: middleware sees context.runnable.kwargs by name.
            return (), self.as_dict(arguments)
        assert isinstance(arguments, dict)
        if self.call_by_keyword:
            return (), dict(arguments)
        bound = inspect.BoundArguments(self.signature, arguments)  # type: ignore[arg-type,unused-ignore]
        return bound.args, bound.kwargs

    def process_ref(self) -> tuple[str, str]:
        """(module, qualname) to find the function in a worker process; TypeError if none."""
        ref = self._process_ref
        if ref is None:
            ref = self._process_ref = check_process_function(self.func, self.name)
        return ref

    async def push(self, *args: P.args, **kwargs: P.kwargs) -> Job[T]:
        """Run as soon as possible; returns once scheduled (and committed, if durable)."""
        app = self.app
        return await app._submitter.submit_now(self, self.bind(args, kwargs))

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> ScheduleBuilder[T]:
        """Bind arguments now; choose when with ``.at()``, ``.delay()`` or ``.cron()``."""
        from jobify.schedule import ScheduleBuilder

        self.app  # noqa: B018 - fail early on a detached router
        return ScheduleBuilder(self, self.bind(args, kwargs))


class RootRoute(Route[P, T]):
    """A task registered directly on the app."""


class NodeRoute(Route[P, T]):
    """A task registered on a router; it can be scheduled once the router is in an app."""


class _Registrar:
    """Shared ``task`` decorator of the app and routers."""

    _route_class: type[Route[Any, Any]]

    def _register(self, route: Route[Any, Any]) -> None:
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
        """Register a task: ``@app.task`` or ``@app.task(name=..., cron=..., retry=...)``."""

        def decorate(f: Callable[..., Any]) -> Route[Any, Any]:
            if isinstance(f, Route):
                raise TypeError(f"{f.name!r} is already a task; decorate the function once")
            if not callable(f):
                raise TypeError(f"@task decorates a function, got {type(f).__name__}")
            task_name = name if name is not None else getattr(f, "__name__", None)
            if not isinstance(task_name, str) or not task_name or ":" in task_name:
                raise ValueError(
                    f"task name must be a non-empty str without ':', got {task_name!r}"
                )
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
                exception_handlers=_check_handlers(exception_handlers, f"task {task_name!r}"),
                middleware=tuple(middleware or ()),
                outer_middleware=tuple(outer_middleware or ()),
            )
            cls = route_class or self._route_class
            route = cls(f, name=task_name, options=options, owner=self._owner())
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
    """A group of tasks with a shared prefix, state, lifespan, middleware and handlers."""

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
        if prefix is not None and (not isinstance(prefix, str) or not prefix or ":" in prefix):
            raise ValueError(f"router prefix must be a non-empty str without ':', got {prefix!r}")
        self.prefix = prefix
        self.state = State(state)
        self.lifespan = lifespan
        self.middleware: list[BaseMiddleware] = list(middleware or ())
        self.outer_middleware: list[BaseOuterMiddleware] = list(outer_middleware or ())
        self.exception_handlers = _check_handlers(exception_handlers, "router")
        self._route_class = route_class or NodeRoute
        self.routes: list[Route[Any, Any]] = []
        self.routers: list[JobRouter] = []
        self.parent: JobRouter | None = None
        self._app: Jobify | None = None

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

    def _register(self, route: Route[Any, Any]) -> None:
        app = self._app
        if app is not None:
            app._registry.add(route)  # raises on duplicates / after startup
        elif any(r.local_name == route.local_name for r in self.routes):
            raise RouteAlreadyRegisteredError(route.name)
        self.routes.append(route)

    def include_router(self, router: JobRouter) -> None:
        """Nest ``router`` under this one (its names gain this router's prefix)."""
        if not isinstance(router, JobRouter):
            raise TypeError(f"include_router takes a JobRouter, got {type(router).__name__}")
        if router.parent is not None or router._app is not None:
            raise ValueError(f"{router!r} is already included somewhere; include it once")
        node: JobRouter | None = self
        while node is not None:
            if node is router:
                raise ValueError("a router cannot include itself or one of its parents")
            node = node.parent
        router.parent = self
        if self._app is not None:
            try:
                self._app._registry.attach(router)
            except BaseException:
                router.parent = None
                raise
        self.routers.append(router)

    def include_routers(self, *routers: JobRouter) -> None:
        """Include several routers, in order."""
        for router in routers:
            self.include_router(router)

    def walk(self) -> list[JobRouter]:
        """This router and every router below it, in include order (depth first)."""
        out = [self]
        for sub in self.routers:
            out.extend(sub.walk())
        return out


class Registry:
    """The app's table of routes by full name; binds routes to the app."""

    def __init__(self, app: Jobify) -> None:
        self._app = app
        self.routes: dict[str, Route[Any, Any]] = {}
        self.routers: list[JobRouter] = []

    def add(self, route: Route[Any, Any]) -> None:
        if self._app._started:
            raise ApplicationStateError(
                f"cannot register task {route.name!r}: the app has already started; "
                "register tasks before startup"
            )
        name = route.name
        if name in self.routes:
            raise RouteAlreadyRegisteredError(name)
        self.routes[name] = route
        route._app = self._app

    def attach(self, router: JobRouter) -> None:
        if self._app._started:
            raise ApplicationStateError(
                "cannot include a router: the app has already started; include routers "
                "before startup"
            )
        tree = router.walk()
        new = [route for node in tree for route in node.routes]
        names = [route.name for route in new]
        seen: set[str] = set()
        for n in names:
            if n in self.routes or n in seen:
                raise RouteAlreadyRegisteredError(n)
            seen.add(n)
        for node in tree:
            node._app = self._app
            self.routers.append(node)
        for route in new:
            self.routes[route.name] = route
            route._app = self._app
