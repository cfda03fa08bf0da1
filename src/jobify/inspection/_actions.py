"""Changing one job from outside its app: cancel, pause, resume, run now.

The rule (see :class:`~jobify.storage.base.CommandChannel`): an embedded store is never edited
under its running owner; the owner is asked through the command channel and its answer is
awaited for a bounded time. With no owner running, the store is opened as its owner and edited
directly. A shared store is always edited directly (its workers are notified by the store).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

from jobify._triggerdoc import AT_TRIGGER, decode_trigger
from jobify.inspection._decode import safe_text
from jobify.inspection._model import (
    ActionRefusedError,
    ActionResult,
    JobNotFoundError,
    OwnerNotAnsweringError,
)
from jobify.storage.base import CommandAction, CommandChannel, JobRecord, RecordStatus, Storage

__all__ = ["apply_direct", "ask_owner", "precheck"]

_VERBS = {
    CommandAction.CANCEL: "cancel",
    CommandAction.PAUSE: "pause",
    CommandAction.RESUME: "resume",
    CommandAction.RUN: "run now",
}
_FIRST_POLL = 0.005
_MAX_POLL = 0.05


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
        except (ValueError, KeyError, TypeError) as exc:
            raise ActionRefusedError(
                f"{job} cannot run: its trigger cannot be read ({safe_text(str(exc))})"
            ) from None
        return None
    raise ValueError(f"unknown action {action!r}; expected one of {CommandAction.ALL}")


async def ask_owner(
    channel: CommandChannel, job_id: str, action: str, timeout: float, store: str
) -> ActionResult:
    """Send ``action`` to the running owner and wait up to ``timeout`` seconds for its answer.

    The owner answers within a second when it is healthy; there is no notification back to
    the inspector, so the answer is polled (a cheap read), quickly at first.
    """
    command_id = await channel.send_command(job_id, action)
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL
    while True:
        answer = await channel.command_result(command_id)
        if answer is not None:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise OwnerNotAnsweringError(
                f"the running app that owns {store} did not answer within {timeout:g}s "
                f"(command {command_id}: {_VERBS[action]} job {job_id!r}); it may be busy, "
                "stuck, or a jobify version that does not take commands. The command stays "
                "queued and is applied if the app picks it up later."
            )
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _MAX_POLL)
    if answer == "ok":
        return ActionResult(job_id, action, "owner", f"{_VERBS[action]}: done by the running app")
    raise ActionRefusedError(
        f"the running app refused to {_VERBS[action]} job {job_id!r}: {safe_text(answer)}"
    )


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
