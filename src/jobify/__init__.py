"""jobify: an asyncio job scheduler.

Define a task with ``@app.task``, then run it now (``push``), later (``schedule().delay()``),
at a time (``schedule().at()``) or on cron (``schedule().cron()`` or ``@app.task(cron=...)``).
"""

from jobify._app import Jobify, Plugin
from jobify._builder import ScheduleBuilder
from jobify._config import JobifyConfiguration
from jobify._context import (
    INJECT,
    CronContext,
    JobContext,
    OuterContext,
    RequestState,
    Runnable,
    State,
)
from jobify._history import RunHistory
from jobify._jobs import Job, JobStatus
from jobify._retry import SmartRetry
from jobify._runmodes import RunMode
from jobify._triggers import Cron, GracePolicy, MisfirePolicy
from jobify._version import __version__
from jobify.router import JobRouter

__all__ = [
    "INJECT",
    "Cron",
    "CronContext",
    "GracePolicy",
    "Job",
    "JobContext",
    "JobRouter",
    "JobStatus",
    "Jobify",
    "JobifyConfiguration",
    "MisfirePolicy",
    "OuterContext",
    "Plugin",
    "RequestState",
    "RunHistory",
    "RunMode",
    "Runnable",
    "ScheduleBuilder",
    "SmartRetry",
    "State",
    "__version__",
]
