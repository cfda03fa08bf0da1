"""Commands from inspectors (the ``jobify`` command, the dashboard) applied by the running app.

An embedded store must not be edited behind its running owner's back, so an inspector sends a
command through the store's :class:`~jobify.storage.base.CommandChannel`; the storage wakes
this applier (event-driven where the platform allows), which applies each command through the
same calls a program would make (``cancel``, ``pause``, ``resume``, run now) and answers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from jobify._entry import JobEntry
from jobify._jobs import Job, JobStatus, is_final
from jobify._records import OrphanSource
from jobify._scheduler import Scheduler
from jobify.storage.base import Command, CommandAction, CommandChannel

__all__ = ["CommandApplier"]

log = logging.getLogger("jobify.commands")

OK = "ok"


class CommandApplier:
    """Takes pending commands from a store's channel and applies them to owned jobs."""

    def __init__(
        self,
        channel: CommandChannel,
        scheduler: Scheduler,
        orphans: Mapping[str, OrphanSource],
        run_extra: Callable[[JobEntry], Awaitable[Job[Any]]],
        retry: Callable[[str], Awaitable[str | None]],
    ) -> None:
        self._channel = channel
        self._scheduler = scheduler
        self._orphans = orphans
        self._run_extra = run_extra
        self._retry = retry
        """Retries a failed (ended, not owned) job by id: None when done, else why not."""
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def start(self) -> None:
        self._channel.watch_commands(self.wake)

    async def stop(self) -> None:
        self._channel.watch_commands(None)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def wake(self) -> None:
        """Commands may be pending: take them (once more if already taking)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            self._again = False
            try:
                commands = await self._channel.take_commands()
                for command in commands:
                    result = await self._apply(command)
                    await self._channel.finish_command(command.command_id, result)
            except Exception:
                log.exception("applying commands from the store failed; they stay pending")
                return
            if not self._again:
                return

    async def _apply(self, command: Command) -> str:
        job_id, action = command.job_id, command.action
        entry = self._scheduler.jobs.get(job_id)
        try:
            if action == CommandAction.RETRY:
                if entry is not None:
                    return f"job {job_id!r} has not failed (status {entry.job.status.value})"
                refused = await self._retry(job_id)
                return self._done(command) if refused is None else refused
            if entry is None:
                orphan = self._orphans.get(job_id)
                if orphan is not None and action == CommandAction.CANCEL:
                    await orphan.cancel()
                    return self._done(command)
                if orphan is not None:
                    return f"job {job_id!r} is orphaned ({orphan.reason}); it can only be cancelled"
                return f"no job with id {job_id!r} is scheduled in the running app"
            if action == CommandAction.CANCEL:
                await entry.cancel()  # a run under way is stopped
                if entry.job.status is not JobStatus.CANCELLED:
                    return f"job {job_id!r} was not cancelled (status {entry.job.status.value})"
            elif action == CommandAction.PAUSE:
                await entry.pause()
            elif action == CommandAction.RESUME:
                if not entry.paused:
                    return f"job {job_id!r} is not paused"
                await entry.resume()
            elif action == CommandAction.RUN:
                if entry.cron is not None:
                    extra = await self._run_extra(entry)
                    log.info("job %r: an extra run now as job %r", job_id, extra.id)
                elif is_final(entry.job) or not self._scheduler.run_now(entry):
                    return f"job {job_id!r} is running or paused; it cannot be run now"
            else:
                return f"unknown action {action!r}"
        except Exception as exc:
            log.warning("command %s on job %r failed: %s", action, job_id, exc)
            return f"{type(exc).__name__}: {exc}"
        return self._done(command)

    @staticmethod
    def _done(command: Command) -> str:
        log.info(
            "applied command %s to job %r",
            command.action,
            command.job_id,
            extra={"job_id": command.job_id, "command": command.action},
        )
        return OK
