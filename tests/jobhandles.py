"""Reading job handles in tests, typed for what a test checks.

``status(job)``: a handle's status changes while the test awaits, but mypy keeps the narrowing
of ``assert job.status is JobStatus.SCHEDULED`` across awaits and would call a later
``assert job.status is JobStatus.RUNNING`` impossible. A call reads the status afresh.

``outcome(job)`` and ``result_of(job)``: ``await job`` and ``job.result()`` as plain objects.
An exception handler (or a middleware that answers without calling the task) supplies the
job's value, whatever type the task declares, so a ``Job[None]`` may well end with a ``str``.
"""

from __future__ import annotations

from typing import Any

from jobify import Job, JobStatus


def status(job: Job[Any]) -> JobStatus:
    """The handle's status now."""
    return job.status


async def outcome(job: Job[Any]) -> object:
    """Wait for ``job`` and return its value (or raise its error), as ``await job`` does."""
    return await job


def result_of(job: Job[Any]) -> object:
    """``job.result()``, the value of its latest completed run, as a plain object."""
    return job.result()
