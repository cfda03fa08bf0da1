"""The JSON shapes of the ``/api/`` routes (plain data; times as ISO 8601 strings)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any

from jobify.inspection import ActionResult, JobInfo, RunInfo

__all__ = ["action_json", "job_json", "jsonable", "run_json"]


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as objects, times as ISO 8601, bytes as text
    when UTF-8 (else hex), non-finite floats as strings, anything unknown as its repr."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return repr(value)


def job_json(job: JobInfo) -> dict[str, Any]:
    """One job as listed (the same fields as ``jobify jobs list --json``)."""
    return {
        "job_id": job.job_id,
        "task": job.task_name,
        "status": job.status,
        "next_run": job.next_run.isoformat(),
        "kind": job.kind,
        "cron": jsonable(job.cron),
        "arguments": {
            "decoded": job.arguments.values is not None,
            "values": jsonable(job.arguments.values),
            "summary": job.arguments.summary,
            "error": job.arguments.error,
        },
        "orphaned": job.orphaned,
        "trigger_error": job.trigger_error,
    }


def run_json(run: RunInfo) -> dict[str, Any]:
    """One finished run."""
    data: dict[str, Any] = jsonable(run)
    data["failed"] = run.failed
    return data


def action_json(result: ActionResult) -> dict[str, Any]:
    """What an action did."""
    return {
        "job_id": result.job_id,
        "action": result.action,
        "via": result.via,
        "message": result.message,
        "new_job_id": result.new_job_id,
    }
