"""What an action (cancel, pause, resume, run now) does to one stored job.

:func:`precheck` decides whether it applies; :func:`apply_direct` edits the record in a store
opened with ``startup()``. Who may edit when is decided in :mod:`._steering`.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from jobify._triggerdoc import AT_TRIGGER, decode_trigger
from jobify.inspection._decode import safe_text
from jobify.inspection._model import ActionRefusedError, ActionResult, JobNotFoundError
from jobify.storage.base import CommandAction, JobRecord, RecordStatus, Storage

__all__ = ["VERBS", "apply_direct", "precheck"]

VERBS = {
    CommandAction.CANCEL: "cancel",
    CommandAction.PAUSE: "pause",
    CommandAction.RESUME: "resume",
    CommandAction.RUN: "run now",
}
"""How each action reads in messages."""


def precheck(record: JobRecord, action: str, orphaned: bool | None) -> str | None:
    """Whether ``action`` applies to ``record``: None if it does, a message if there is
    nothing to do (already paused, not paused). Raises :class:`ActionRefusedError` if it
    cannot apply."""
    status = record.status
    job = f"job {record.job_id!r}"
    if action == CommandAction.CANCEL:
        return None
    if status not in RecordStatus.ALL:
        raise ActionRefusedError(
            f"{job} has status {safe_text(status)!r}, unknown to this jobify; upgrade jobify"
        )
    ended = status in (RecordStatus.PERMANENTLY_FAILED, RecordStatus.FINISHED)
    if action == CommandAction.PAUSE:
        if status == RecordStatus.PAUSED:
            return f"{job} is already paused"
        if ended:
            raise ActionRefusedError(
                f"{job} is {status}: it never fires again, so there is nothing to pause "
                "(cancel removes it)"
            )
        return None
    if action == CommandAction.RESUME:
        if status == RecordStatus.SCHEDULED:
            return f"{job} is not paused (it is scheduled)"
        if ended:
            raise ActionRefusedError(
                f"{job} is {status} and cannot be resumed: schedule it again from the app "
                "(cancel removes the old record)"
            )
        return None
    if action == CommandAction.RUN:
        if orphaned:
            raise ActionRefusedError(
                f"{job} cannot run: its task {safe_text(record.task_name)!r} is not "
                "registered in the app that owns the store (cancel removes the record)"
            )
        try:
            decode_trigger(record.trigger)
        except Exception as exc:  # stored data: any failure is a refusal, never a crash
            raise ActionRefusedError(
                f"{job} cannot run: its trigger cannot be read ({safe_text(str(exc))})"
            ) from None
        return None
    raise ValueError(f"unknown action {action!r}; expected one of {CommandAction.ALL}")


async def apply_direct(
    storage: Storage, job_id: str, action: str, now: float, store: str, orphaned: bool | None
) -> ActionResult:
    """Edit the record in ``storage`` (opened with ``startup()``) and commit.

    The record is read again here: it may have changed since the caller looked at it.
    """
    record = await storage.get(job_id)
    if record is None:
        raise JobNotFoundError(job_id, store)
    skip = precheck(record, action, orphaned)
    if skip is not None:
        return ActionResult(job_id, action, "none", skip)
    new_job_id: str | None = None
    later = "a worker runs it" if storage.shared else "it runs when its app next starts"
    if action == CommandAction.CANCEL:
        await storage.delete(job_id)
        message = f"job {job_id!r} cancelled (removed from {store})"
    elif action == CommandAction.PAUSE:
        await storage.save(replace(record, status=RecordStatus.PAUSED))
        message = f"job {job_id!r} paused"
    elif action == CommandAction.RESUME:
        await storage.save(replace(record, status=RecordStatus.SCHEDULED))
        message = f"job {job_id!r} resumed"
    elif record.trigger == AT_TRIGGER:
        await storage.save(replace(record, exec_at=now, status=RecordStatus.SCHEDULED))
        message = f"job {job_id!r} moved to now: {later}"
    else:
        # A cron job keeps its own schedule and counters; the extra run is a one-shot job
        # of the same task and arguments.
        new_job_id = uuid.uuid4().hex
        await storage.save(
            JobRecord(new_job_id, record.task_name, now, record.arguments, AT_TRIGGER)
        )
        message = (
            f"one-shot job {new_job_id!r} created to run task "
            f"{safe_text(record.task_name)!r} now: {later}"
        )
    return ActionResult(job_id, action, "direct", message, new_job_id)
