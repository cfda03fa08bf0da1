"""The JSON shapes of the ``/api/`` routes (plain data; times as ISO 8601 strings)."""

from __future__ import annotations

from typing import Any

from jobify.inspection import ActionResult, JobInfo, RunInfo, jsonable

__all__ = ["action_json", "job_json", "jsonable", "run_json"]


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
