"""The reads of :class:`~jobify.storage.PostgresStorage` (allowed to workers and inspectors).

A mixin: it needs only :meth:`_check`, :meth:`_run` and the clock of the storage, which it
declares.
Inspection queries are assembled from named filters (one statement text per combination of
filters present), so each combination gets a plan that uses its index instead of one
generic plan full of ``$n IS NULL OR ...`` tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobify.storage.base import (
    HistoryQuery,
    JobQuery,
    JobRecord,
    ResultRecord,
    RunRecord,
    TaskRecord,
)
from jobify.storage.checks import check_history_query, check_job_id, check_job_query
from jobify.storage.postgres_results import ResultReads
from jobify.storage.sql import postgres as sql

__all__ = ["PostgresReads"]


class PostgresReads:
    """Reads of jobs, counts, run history, tasks and results."""

    results_ttl: float
    _result_reads: ResultReads
    _clock: Callable[[], float]

    def _check(self, *, owner: bool = False) -> None:
        raise NotImplementedError

    async def _run(
        self,
        method: str,
        template: str,
        values: dict[str, Any],
        doing: str,
        *,
        idempotent: bool,
        patience: float | None = None,
    ) -> Any:
        raise NotImplementedError

    async def load(self) -> list[JobRecord]:
        """Every record (workers do not restore from it: they claim)."""
        self._check()
        rows = await self._run("fetch", sql.LOAD, {}, "loading jobs", idempotent=True)
        return [JobRecord(*row) for row in rows]

    async def get(self, job_id: str) -> JobRecord | None:
        """The committed record with this id, or None."""
        check_job_id(job_id)
        self._check()
        if "\x00" in job_id:  # PostgreSQL text cannot hold it, so no stored id does
            return None
        row = await self._run(
            "fetchrow", sql.GET, {"job_id": job_id}, "reading a job", idempotent=True
        )
        return None if row is None else JobRecord(*row)

    async def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        """Records matching ``query``, ordered by ``(exec_at, job_id)``, one page."""
        check_job_query(query)
        self._check()
        values: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
        present = []
        for name in sql.JOB_FILTERS:
            value = getattr(query, name)
            if value is not None:
                present.append(name)
                values[name] = value
        template = sql.filtered(sql.LOAD, sql.JOB_FILTERS, present, sql.JOB_PAGE)
        rows = await self._run("fetch", template, values, "querying jobs", idempotent=True)
        return [JobRecord(*row) for row in rows]

    async def job_counts(self) -> dict[tuple[str, str], int]:
        """How many records there are per ``(task_name, status)``."""
        self._check()
        rows = await self._run("fetch", sql.JOB_COUNTS, {}, "counting jobs", idempotent=True)
        return {(task, status): count for task, status, count in rows}

    async def query_history(self, query: HistoryQuery) -> list[RunRecord]:
        """Run records matching ``query``, newest first, one page."""
        check_history_query(query)
        self._check()
        values: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
        present = []
        for name in sql.HISTORY_FILTERS:
            value = getattr(query, name)
            if value is not None and value is not False:
                present.append(name)
                if name != "failed_only":
                    values[name] = value
        template = sql.filtered(sql.HISTORY, sql.HISTORY_FILTERS, present, sql.HISTORY_PAGE)
        rows = await self._run("fetch", template, values, "querying history", idempotent=True)
        return [RunRecord(*row) for row in rows]

    async def load_tasks(self) -> list[TaskRecord]:
        """The registered tasks saved by the last ``save_tasks``, by name."""
        self._check()
        rows = await self._run("fetch", sql.LOAD_TASKS, {}, "loading tasks", idempotent=True)
        return [TaskRecord(*row) for row in rows]

    async def get_result(self, job_id: str) -> ResultRecord | None:
        """The result of a job run by any worker within ``results_ttl``, or None."""
        check_job_id(job_id)
        self._check()
        if "\x00" in job_id:
            return None
        return await self._result_reads.get(job_id)

    async def _get_results(self, job_ids: list[str]) -> list[ResultRecord]:
        rows = await self._run(
            "fetch",
            sql.GET_RESULTS,
            {"ids": job_ids, "oldest": self._clock() - self.results_ttl},
            "reading a result",
            idempotent=True,
        )
        return [ResultRecord(*row) for row in rows]
