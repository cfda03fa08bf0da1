"""Middleware: hooks around a job's execution and around scheduling calls.

``BaseMiddleware`` wraps execution: ``await call_next(context)`` runs the rest of the chain and
the task; not calling it skips the job, and the middleware's return value is the result.
``BaseOuterMiddleware`` wraps ``push/at/delay/cron``: it may change ``context.arguments`` or
refuse (raise, or return without calling ``call_next``), in which case nothing is stored.
``QueueMiddleware`` bounds how many executions run at once.
"""

from jobify.middleware._base import BaseMiddleware, BaseOuterMiddleware, CallNext, CallNextOuter
from jobify.middleware._queue import Item, JobifyQueue, QueueMiddleware

__all__ = [
    "BaseMiddleware",
    "BaseOuterMiddleware",
    "CallNext",
    "CallNextOuter",
    "Item",
    "JobifyQueue",
    "QueueMiddleware",
]
