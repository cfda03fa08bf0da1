"""What a job and a scheduling call can see: contexts, state objects and ``INJECT``.

A task parameter whose default is ``INJECT`` receives, by its type hint, the ``JobContext`` or
one of its parts. Which parameters are injected is decided once, at decoration time; an
unknown injectable type is an error there, not when the job runs.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from jobify._builder import ScheduleBuilder
from jobify._config import JobifyConfiguration
from jobify._jobs import Job

if TYPE_CHECKING:
    from jobify._runmodes import RunMode
    from jobify._triggers import Cron

__all__ = [
    "INJECT",
    "ContextSource",
    "CronContext",
    "JobContext",
    "OuterContext",
    "RequestState",
    "Runnable",
    "ScopedState",
    "State",
    "injections_for",
]

T = TypeVar("T")


class _Inject:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INJECT"


INJECT: Any = _Inject()
"""Default value marking a task parameter to be injected by its type hint."""


class State(MutableMapping[str, Any]):
    """A namespace with attribute and item access (``state.db`` is ``state["db"]``).

    ``State({"db": db})`` or ``State(state={"db": db})``: the initial contents (copied).
    """

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(state or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._data[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    _data: dict[str, Any]


class ScopedState(State):
    """The state a router's task sees: its router's own state first, then the parents'
    states, then the app's. Reads fall through the scopes in that order; writes go to the
    innermost one (the task's own router)."""

    def __init__(self, scopes: list[State]) -> None:
        super().__init__()
        object.__setattr__(self, "_data", scopes[0]._data)
        object.__setattr__(self, "_outer", scopes[1:])

    _outer: list[State]

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            for scope in self._outer:
                if key in scope:
                    return scope[key]
            raise

    def __iter__(self) -> Iterator[str]:
        seen = dict.fromkeys(self._data)
        for scope in self._outer:
            seen.update(dict.fromkeys(scope))
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return key in self._data or any(key in scope for scope in self._outer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class RequestState(State):
    """Scratch space for one execution: fresh for every run, shared by its middleware."""


@dataclass(slots=True)
class Runnable(Generic[T]):
    """One call of a task's function with its bound arguments, as the runner will make it."""

    name: str
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    run_mode: RunMode


@dataclass(slots=True)
class CronContext:
    """The cron side of a cron job's execution: its trigger and counters (beyond)."""

    cron: Cron
    runs: int
    failures: int


class ContextSource(Protocol):
    """What a :class:`JobContext` builds its lazy parts from (the job being run)."""

    def schedule_builder(self) -> ScheduleBuilder[Any]: ...
    def cron_context(self) -> CronContext | None: ...


class JobContext:
    """What middleware, exception handlers and injected parameters see of one execution.

    ``request_state``, ``schedule_builder`` and ``cron_context`` are built on first access
    from the job being run: most executions never look at them, and every object not built
    is time saved on the hot path.
    """

    __slots__ = (
        "_cron_context",
        "_request_state",
        "_schedule_builder",
        "_source",
        "job",
        "jobify_config",
        "route_options",
        "runnable",
        "state",
    )

    def __init__(
        self,
        job: Job[Any],
        state: State,
        runnable: Runnable[Any],
        route_options: Mapping[str, Any],
        jobify_config: JobifyConfiguration,
        request_state: RequestState | None = None,
        schedule_builder: ScheduleBuilder[Any] | None = None,
        cron_context: CronContext | None = None,
        source: ContextSource | None = None,
    ) -> None:
        self.job = job
        self.state = state
        self.runnable = runnable
        self.route_options = route_options
        self.jobify_config = jobify_config
        self._request_state = request_state
        self._schedule_builder = schedule_builder
        self._cron_context = cron_context
        self._source = source

    @property
    def request_state(self) -> RequestState:
        """Scratch space of this execution (fresh per execution, shared by its middleware)."""
        state = self._request_state
        if state is None:
            state = self._request_state = RequestState()
        return state

    @request_state.setter
    def request_state(self, value: RequestState) -> None:
        self._request_state = value

    @property
    def schedule_builder(self) -> ScheduleBuilder[Any]:
        """A builder for the same task and arguments (e.g. to schedule a follow-up)."""
        builder = self._schedule_builder
        if builder is None:
            source = self._source
            if source is None:
                raise AttributeError("this context was made without a schedule_builder")
            builder = self._schedule_builder = source.schedule_builder()
        return builder

    @schedule_builder.setter
    def schedule_builder(self, value: ScheduleBuilder[Any]) -> None:
        self._schedule_builder = value

    @property
    def cron_context(self) -> CronContext | None:
        """The cron trigger and counters of a cron job's execution; None for other jobs."""
        if self._cron_context is None:
            source = self._source
            if source is not None:
                self._cron_context = source.cron_context()
        return self._cron_context

    def __repr__(self) -> str:
        return f"JobContext(job={self.job!r}, runnable={self.runnable.name!r})"


@dataclass(slots=True)
class OuterContext:
    """What outer middleware sees of one scheduling call (push/at/delay/cron).

    ``arguments`` (parameter name → value) may be changed by middleware: the arguments present
    when the innermost ``call_next`` runs are the ones stored and run.
    """

    job: Job[Any] | None
    trigger: Any
    runnable: Runnable[Any]
    arguments: dict[str, Any]
    func_spec: inspect.Signature
    is_force: bool
    is_persist: bool
    is_replace: bool
    state: State
    route_options: Mapping[str, Any]
    jobify_config: JobifyConfiguration
    schedule_builder: ScheduleBuilder[Any]
    request_state: RequestState = field(default_factory=RequestState)


Extractor = Callable[[JobContext], Any]


def _injectables() -> dict[Any, Extractor]:
    return {
        JobContext: lambda c: c,
        Job: lambda c: c.job,
        State: lambda c: c.state,
        RequestState: lambda c: c.request_state,
        JobifyConfiguration: lambda c: c.jobify_config,
        ScheduleBuilder: lambda c: c.schedule_builder,
        Runnable: lambda c: c.runnable,
        CronContext: lambda c: c.cron_context,
    }


def _injectable_origin(hint: Any) -> Any:
    """The class a hint asks for: ``Job[int]`` → ``Job``; ``X | None`` → ``X`` (for
    ``CronContext | None``, which is None outside cron jobs)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) != 1:
            return None
        hint = members[0]
        origin = typing.get_origin(hint)
    return origin or hint


def injections_for(func: Callable[..., Any], task_name: str) -> dict[str, Extractor]:
    """Map each ``INJECT`` parameter of ``func`` to how its value is taken from a JobContext.

    Raises ``ValueError`` naming the parameter when it has no annotation (there is nothing
    to inject by), ``TypeError`` when its hint is not injectable.
    """
    sig = inspect.signature(func)
    wanted = [p for p in sig.parameters.values() if p.default is INJECT]
    if not wanted:
        return {}
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:
        raise TypeError(
            f"task {task_name!r}: cannot resolve the type hints of its injected parameters "
            f"({exc}); injection needs importable annotations"
        ) from exc
    table = _injectables()
    result: dict[str, Extractor] = {}
    for param in wanted:
        hint = hints.get(param.name, inspect.Parameter.empty)
        if hint is inspect.Parameter.empty:
            raise ValueError(
                f"task {task_name!r}: parameter {param.name!r} = INJECT has no type "
                "annotation; annotate it with what to inject, e.g. "
                f"'{param.name}: JobContext = INJECT'"
            )
        extractor = table.get(_injectable_origin(hint))
        if extractor is None:
            names = ", ".join(sorted(t.__name__ for t in table))
            raise TypeError(
                f"task {task_name!r}: parameter {param.name!r} = INJECT has type hint "
                f"{hint!r}, which cannot be injected; injectable types are: {names}"
            )
        result[param.name] = extractor
    return result
