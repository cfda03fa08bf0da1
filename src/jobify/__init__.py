"""jobify: an asyncio job scheduler.

Define a task with ``@app.task``, then run it now (``push``), later (``schedule().delay()``),
at a time (``schedule().at()``) or on cron (``schedule().cron()`` or ``@app.task(cron=...)``).
"""

from jobify._version import __version__
from jobify.app import Jobify, Plugin
from jobify.config import JobifyConfiguration
from jobify.context import (
    INJECT,
    CronContext,
    JobContext,
    OuterContext,
    RequestState,
    Runnable,
    State,
)
from jobify.jobs import Job, JobStatus
from jobify.retry import SmartRetry
from jobify.router import JobRouter
from jobify.runners import RunMode
from jobify.schedule import ScheduleBuilder
from jobify.triggers import Cron, GracePolicy, MisfirePolicy

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
    "RunMode",
    "Runnable",
    "ScheduleBuilder",
    "SmartRetry",
    "State",
    "__version__",
]
