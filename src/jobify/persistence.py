"""Between the scheduler and a ``Storage``: jobs ⇄ records, and restore at startup.

The scheduler hands over ``JobEntry`` objects; this module encodes them into ``JobRecord``
values (arguments with the app's serializer through ``ArgumentCodec``, the trigger and its
counters as our own small JSON document) and decodes them back when restoring. A record that
cannot be restored (unknown task, undecodable arguments or trigger) is logged with its id and
left untouched in storage.
"""

from __future__ import annotations

import logging
import typing
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from jobify._triggerdoc import decode_trigger, encode_trigger
from jobify.arguments import ArgumentCodec, argument_hints
from jobify.exceptions import BaseJobifyError
from jobify.jobs import Job
from jobify.storage.base import JobRecord, RecordStatus, Storage
from jobify.triggers import Cron

if TYPE_CHECKING:
    from jobify.router import Route
    from jobify.scheduler import JobEntry, Scheduler
    from jobify.triggers import CronParser

__all__ = ["Persistence", "RestoredJob"]

log = logging.getLogger("jobify.persistence")


class RestoredJob(typing.NamedTuple):
    """A decoded record, ready to become a ``JobEntry``."""

    record: JobRecord
    route: Route[Any, Any]
    arguments: dict[str, Any]
    cron: Cron | None
    tz: tzinfo | None
    runs: int
    failures: int


class Persistence:
    """Write-through of owned jobs to a ``Storage``; restore at startup."""

    def __init__(self, storage: Storage, codec: ArgumentCodec) -> None:
        self.storage = storage
        self.codec = codec
        self._hints: dict[str, dict[str, Any]] = {}

    def _hints_for(self, route: Route[Any, Any]) -> dict[str, Any]:
        hints = self._hints.get(route.name)
        if hints is None:
            hints = self._hints[route.name] = argument_hints(route.func)
        return hints

    def record(self, entry: JobEntry, status: str = RecordStatus.SCHEDULED) -> JobRecord:
        route = entry.route
        data = self.codec.encode(route.name, route.as_dict(entry.arguments), self._hints_for(route))
        return JobRecord(
            job_id=entry.job.id,
            task_name=route.name,
            exec_at=entry.exec_ts,
            arguments=data,
            trigger=encode_trigger(entry.cron, entry.tz, entry.runs, entry.failures),
            status=status,
        )

    async def save(self, entry: JobEntry) -> None:
        await self.storage.save(self.record(entry))

    async def mark_failed(self, entry: JobEntry) -> None:
        await self.storage.save(self.record(entry, RecordStatus.PERMANENTLY_FAILED))

    async def delete(self, job_id: str) -> None:
        await self.storage.delete(job_id)

    def delete_soon(self, job_id: str) -> None:
        self.storage.delete_soon(job_id)

    # -- restore -------------------------------------------------------------------------

    def decode(
        self, record: JobRecord, routes: typing.Mapping[str, Route[Any, Any]]
    ) -> RestoredJob | None:
        """Decode one record, or log why it cannot be restored and return None."""
        route = routes.get(record.task_name)
        if route is None:
            log.error(
                "job %r: task %r is not registered in this app; the record is left in storage "
                "(register the task, or cancel the job)",
                record.job_id,
                record.task_name,
            )
            return None
        try:
            arguments = self.codec.decode(route.name, record.arguments, self._hints_for(route))
            doc = decode_trigger(record.trigger)
            return RestoredJob(record, route, arguments, doc.cron, doc.tz, doc.runs, doc.failures)
        except (BaseJobifyError, ValueError, KeyError, TypeError) as exc:
            log.error(
                "job %r of task %r cannot be restored (%s); the record is left in storage",
                record.job_id,
                record.task_name,
                exc,
            )
            return None

    async def restore(
        self,
        scheduler: Scheduler,
        routes: typing.Mapping[str, Route[Any, Any]],
        cron_parser: typing.Callable[[str], CronParser],
        app_tz: tzinfo,
    ) -> list[JobEntry]:
        """Load every record this app owns and turn the restorable ones into entries."""
        from jobify.scheduler import JobEntry

        entries: list[JobEntry] = []
        for record in await self.storage.load():
            if record.status != RecordStatus.SCHEDULED:
                continue
            restored = self.decode(record, routes)
            if restored is None:
                continue
            parser = None
            tz = restored.tz
            if restored.cron is not None:
                try:
                    parser = cron_parser(restored.cron.expression)
                except BaseJobifyError as exc:
                    log.error("job %r cannot be restored (%s); left in storage", record.job_id, exc)
                    continue
                tz = tz or app_tz
            job: Job[Any] = Job(record.job_id)
            entry = JobEntry(
                scheduler,
                restored.route,
                job,
                restored.arguments,
                record.exec_at,
                restored.route.options.durable,
                restored.cron,
                parser,
                tz,
                restored.runs,
                restored.failures,
            )
            entry.missed_while_down = True
            entries.append(entry)
        return entries
