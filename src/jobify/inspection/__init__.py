"""Inspection: see and steer a job store without writing code or running its app.

The one source of data and actions for the ``jobify`` command and dashboards. It opens a store
by URL without taking its ownership (a running app keeps its store), returns plain frozen
dataclasses, never prints and never configures logging.

Reads: :meth:`Inspector.list_jobs`, :meth:`Inspector.get_job`, :meth:`Inspector.count_jobs`,
:meth:`Inspector.list_runs` (run history), :meth:`Inspector.run_activity` (runs and
failures per minute), :meth:`Inspector.list_crons`, :meth:`Inspector.list_tasks`. Actions:
:meth:`Inspector.cancel`, :meth:`Inspector.pause`, :meth:`Inspector.resume`,
:meth:`Inspector.run_now`; when the app that owns an embedded store is running, it is asked to
apply them (and its answer awaited); otherwise the store is edited directly.
"""

from jobify.inspection._activity import MAX_BUCKETS, ActivityBucket, RunActivity
from jobify.inspection._decode import safe_text
from jobify.inspection._format import human_duration, human_time, zone_name
from jobify.inspection._inspector import DEFAULT_SERIALIZER, MAX_PAGE, Inspector
from jobify.inspection._json import jsonable
from jobify.inspection._model import (
    ActionRefusedError,
    ActionResult,
    ArgumentsInfo,
    CronInfo,
    InspectionError,
    JobCounts,
    JobDetail,
    JobInfo,
    JobNotFoundError,
    OwnerNotAnsweringError,
    RunInfo,
    TaskInfo,
)
from jobify.inspection._url import StoreLocation, parse_storage_url

__all__ = [
    "DEFAULT_SERIALIZER",
    "MAX_BUCKETS",
    "MAX_PAGE",
    "ActionRefusedError",
    "ActionResult",
    "ActivityBucket",
    "ArgumentsInfo",
    "CronInfo",
    "InspectionError",
    "Inspector",
    "JobCounts",
    "JobDetail",
    "JobInfo",
    "JobNotFoundError",
    "OwnerNotAnsweringError",
    "RunActivity",
    "RunInfo",
    "StoreLocation",
    "TaskInfo",
    "human_duration",
    "human_time",
    "jsonable",
    "parse_storage_url",
    "safe_text",
    "zone_name",
]
