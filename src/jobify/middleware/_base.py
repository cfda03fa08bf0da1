"""The middleware base classes and how chains are composed.

``BaseMiddleware`` wraps execution: ``await call_next(context)`` runs the rest of the chain and
the task; not calling it skips the job, and the middleware's return value is the result.
``BaseOuterMiddleware`` wraps ``push/at/delay/cron``: it may change ``context.arguments`` or
refuse (by raising, or by returning without calling ``call_next``), in which case nothing is
scheduled or stored (a refusal by return still gives the caller a CANCELLED handle).

Chains are composed once per route at startup (``compose``), never per job.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from jobify._context import JobContext, OuterContext

if TYPE_CHECKING:
    from jobify._jobs import Job

__all__ = ["BaseMiddleware", "BaseOuterMiddleware", "CallNext", "CallNextOuter", "compose"]

CallNext = Callable[[JobContext], Awaitable[Any]]
CallNextOuter = Callable[[OuterContext], Awaitable["Job[Any]"]]


class BaseMiddleware(abc.ABC):
    """Execution middleware: ``async def __call__(self, call_next, context) -> Any``.

    Runs around every execution of the tasks it is given to (app, router or task level; the
    app's first, then the routers' from the outermost, then the task's). ``await
    call_next(context)`` runs the rest of the chain and the task; what ``__call__`` returns
    is the job's result, so not calling ``call_next`` skips the task (the job still ends
    SUCCESS, with that value). An exception fails the run like one from the task: retries and
    exception handlers wrap the middleware. An ``async def shutdown(self)`` method, if
    defined, is called once when the app shuts down.
    """

    @abc.abstractmethod
    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        """Run around one execution; ``return await call_next(context)`` to proceed."""


class BaseOuterMiddleware(abc.ABC):
    """Scheduling middleware: runs at push/at/delay/cron time, not when restoring.

    ``context.arguments`` (parameter name → value) may be changed before ``call_next``: the
    arguments present when the innermost ``call_next`` runs are the ones stored and run.
    Returning without calling ``call_next`` refuses the job: nothing is stored or run, and
    the caller still gets the handle (``context.job``) with status CANCELLED. Raising
    refuses too, and the exception reaches the caller. An identical re-schedule (same id,
    trigger and arguments) returns the existing job before outer middleware runs, unless
    ``force=True``.
    """

    @abc.abstractmethod
    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Job[Any]:
        """Run around one scheduling call; ``return await call_next(context)`` to proceed."""


def compose(middleware: Sequence[Any], inner: Callable[[Any], Awaitable[Any]]) -> Any:
    """Build ``m1(m2(...mn(inner)))`` once: the first middleware is the outermost."""
    handler = inner
    for m in reversed(middleware):
        handler = partial(m, handler)
    return handler
