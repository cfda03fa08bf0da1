"""What the core knows of one task: its function, validated options and call signature.

:class:`TaskSpec` is fixed at decoration time. It binds a call's arguments against the
function's signature (a wrong argument is a ``TypeError`` when scheduling, not a failure when
the job runs) and turns bound arguments back into a call. The public ``Route``
(:mod:`jobify.router`) is a ``TaskSpec`` with names, routers and scheduling methods on top.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from jobify._builder import Bound
from jobify._context import INJECT, Extractor, injections_for
from jobify._runmodes import RunMode, check_process_function

if TYPE_CHECKING:
    from jobify._retry import SmartRetry
    from jobify._triggers import Cron

__all__ = ["ExceptionHandler", "ExceptionHandlers", "TaskOptions", "TaskSpec", "check_text"]

ExceptionHandler = Callable[[Any, Any], Any]
ExceptionHandlers = Mapping[type[BaseException], ExceptionHandler]


def check_text(value: object, what: str) -> str:
    """A non-empty ``str`` that can be stored (no lone surrogates); a clear error otherwise.

    A lone surrogate (e.g. from a mis-decoded file name) cannot be encoded to UTF-8: caught
    here, it fails only the caller, never a group commit shared with other jobs.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} {value!r} contains a character that cannot be stored (a lone surrogate "
            f"at position {exc.start}); use valid Unicode text"
        ) from None
    # A str subclass becomes its plain value: str.__str__, not str(), since a
    # ``class Ids(str, Enum)`` member's str() is "Ids.NIGHTLY", not its value.
    return str.__str__(value)


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
    middleware: Sequence[Any]
    """``BaseMiddleware`` instances of this task."""
    outer_middleware: Sequence[Any]
    """``BaseOuterMiddleware`` instances of this task."""


class TaskSpec:
    """A task's function and how to call it with bound arguments."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str,
        options: TaskOptions,
    ) -> None:
        self.func = func
        self.local_name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(func)
        self.signature = inspect.signature(func)
        self.injections: Mapping[str, Extractor] = injections_for(func, name)
        """Parameter name → how its value is taken from a JobContext (``INJECT`` params)."""
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
        self._name_set = frozenset(self._positional_names or ())
        self._required_names = frozenset(
            p.name for p in bindable if p.default is p.empty and self._positional_names
        )
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

    @property
    def name(self) -> str:
        """The task's full name (here: its own name; routes add their routers' prefixes)."""
        return self.local_name

    @property
    def former_names(self) -> tuple[str, ...]:
        """Names this task had by default before names became ``module:qualname`` (records
        stored under one of them are still this task's); none for a given name."""
        return ()

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Bound:
        """Bind call arguments to the signature (TypeError if wrong); see :data:`Bound`."""
        names = self._positional_names
        if names is not None:
            if not kwargs and self._required <= len(args) <= len(names):
                if len(args) == len(names):
                    return args
                # Plain positional call of a plain signature: what Signature.bind would return.
                return dict(zip(names, args, strict=False))
            if not args and self._required_names <= kwargs.keys() <= self._name_set:
                # Every argument by name (e.g. restored from storage): no Signature.bind.
                if len(kwargs) == len(names):
                    return tuple(kwargs[name] for name in names)
                return {name: kwargs[name] for name in names if name in kwargs}
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
