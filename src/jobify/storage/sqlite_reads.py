"""Reads of a jobify SQLite store: jobs, pages, counts, run history, tasks, commands.

Runs in the storage's worker thread only (the owner's connection, or an inspector's
read-only one). The tables are not STRICT, so a row edited by hand can hold anything: every
row is type-checked after the fetch, and one that does not decode is skipped with a warning
naming it, and left in place.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
from itertools import starmap
from operator import itemgetter
from typing import Any

from jobify.exceptions import StorageError
from jobify.storage.base import (
    Command,
    HistoryQuery,
    JobQuery,
    JobRecord,
    RunRecord,
    TaskRecord,
)
from jobify.storage.sql import sqlite as sql

__all__ = ["Reader"]

logger = logging.getLogger("jobify.storage")

_ROW_TYPES = (str, str, float, bytes, bytes, str)
_OPTIONAL_TEXT = (str, type(None))


class Reader:
    """The reads of one store over one connection (used from the worker thread only).

    ``version`` is the store's schema version: an older store than this code's lacks the
    history, task and command tables, which then read as empty (an inspector never
    migrates).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        queries: sql.SQLiteQueries,
        database: str,
        version: int,
    ) -> None:
        self.conn = conn
        self.queries = queries
        self.database = database
        self.version = version

    @property
    def has_history(self) -> bool:
        """Whether the store has the run history, task list and commands tables."""
        return self.version >= sql.HISTORY_VERSION

    # -- jobs -------------------------------------------------------------------------------

    def load(self) -> list[JobRecord]:
        """Every decodable record."""
        # Every object built here is kept, so garbage collections triggered by the 600,000+
        # allocations of a large load would scan a growing heap for nothing.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._records(self.conn.execute(self.queries.load).fetchall())
        finally:
            if gc_was_enabled:
                gc.enable()

    def get(self, job_id: str) -> JobRecord | None:
        """The record with this id, or None (also, with a warning, when it is undecodable)."""
        row = self.conn.execute(self.queries.get, (job_id,)).fetchone()
        return None if row is None else self._decode(row)

    def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        """One page of records, ordered by ``(exec_at, job_id)``."""
        where, bind_status = sql.jobs_where(
            query.task_name is not None,
            query.status,
            query.due_before is not None,
            query.due_after is not None,
        )
        params: list[Any] = []
        if query.task_name is not None:
            params.append(query.task_name)
        if bind_status:
            params.append(query.status)
        if query.due_before is not None:
            params.append(query.due_before)
        if query.due_after is not None:
            params.append(query.due_after)
        params += (query.limit, query.offset)
        rows = self.conn.execute(self.queries.page_jobs(where), params).fetchall()
        return self._records(rows)

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Records per ``(task_name, status)`` (rows whose task or status is not text are
        left out)."""
        return {
            (task, status): count
            for task, status, count in self.conn.execute(self.queries.count_jobs)
            if type(task) is str and type(status) is str
        }

    def _records(self, rows: list[Any]) -> list[JobRecord]:
        # Fast path: check each column's types over all rows in C loops, then build every
        # record; only when some row is off, decode row by row to find and skip it.
        if all(
            set(map(type, map(itemgetter(i), rows))) <= {kind} for i, kind in enumerate(_ROW_TYPES)
        ):
            return list(starmap(JobRecord, rows))
        decoded = (self._decode(row) for row in rows)
        return [record for record in decoded if record is not None]

    def _decode(self, row: tuple[Any, ...]) -> JobRecord | None:
        job_id, task_name, exec_at, arguments, trigger, status = row
        if type(exec_at) is int:  # REAL affinity keeps an integer too large for a double
            exec_at = float(exec_at)
        if tuple(map(type, (job_id, task_name, exec_at, arguments, trigger, status))) != (
            _ROW_TYPES
        ):
            logger.warning(
                "skipping job %r in table %s of %s: a column has an unexpected type or is "
                "NULL (%s); the row is left in place",
                job_id,
                self.queries.table,
                self.database,
                ", ".join(type(value).__name__ for value in row),
            )
            return None
        return JobRecord(job_id, task_name, exec_at, arguments, trigger, status)

    # -- run history and tasks ------------------------------------------------------------

    def query_history(self, query: HistoryQuery) -> list[RunRecord]:
        """One page of runs, newest first."""
        if not self.has_history:
            return []
        where = sql.runs_where(
            query.job_id is not None,
            query.task_name is not None,
            query.failed_only,
            query.since is not None,
        )
        params: list[Any] = [
            value for value in (query.job_id, query.task_name, query.since) if value is not None
        ]
        params += (query.limit, query.offset)
        runs = []
        for row in self.conn.execute(self.queries.page_runs(where), params):
            run = self._decode_run(row)
            if run is not None:
                runs.append(run)
        return runs

    def _decode_run(self, row: tuple[Any, ...]) -> RunRecord | None:
        job_id, task_name, scheduled, started, finished, outcome, attempts = row[:7]
        error_type, error_message, traceback, worker = row[7:]
        # REAL affinity keeps an integer too large for a double as an integer.
        scheduled, started, finished = (
            float(t) if type(t) is int else t for t in (scheduled, started, finished)
        )
        if (
            type(job_id) is str
            and type(task_name) is str
            and type(scheduled) is float
            and type(started) is float
            and type(finished) is float
            and type(outcome) is str
            and type(attempts) is int
            and all(isinstance(text, _OPTIONAL_TEXT) for text in row[7:])
        ):
            return RunRecord(
                job_id,
                task_name,
                scheduled,
                started,
                finished,
                outcome,
                attempts,
                error_type,
                error_message,
                traceback,
                worker,
            )
        logger.warning(
            "skipping a run of job %r in table %s_runs of %s: a column has an unexpected type",
            job_id,
            self.queries.table,
            self.database,
        )
        return None

    def load_tasks(self) -> list[TaskRecord]:
        """The registered tasks, by name."""
        if not self.has_history:
            return []
        tasks = []
        for name, options, updated_at in self.conn.execute(self.queries.load_tasks):
            if type(updated_at) is int:
                updated_at = float(updated_at)
            if type(name) is str and type(options) is str and type(updated_at) is float:
                tasks.append(TaskRecord(name, options, updated_at))
            else:
                logger.warning(
                    "skipping task %r in table %s_tasks of %s: a column has an unexpected type",
                    name,
                    self.queries.table,
                    self.database,
                )
        return tasks

    # -- commands ---------------------------------------------------------------------------

    def pending_commands(self) -> list[Command]:
        """The commands not yet answered, oldest first."""
        if not self.has_history:
            return []
        commands = []
        for command_id, job_id, action, created_at in self.conn.execute(
            self.queries.pending_commands
        ):
            if type(created_at) is int:
                created_at = float(created_at)
            if (
                type(command_id) is int
                and type(job_id) is str
                and type(action) is str
                and type(created_at) is float
            ):
                commands.append(Command(command_id, job_id, action, created_at))
            else:
                logger.warning(
                    "skipping command %r in table %s_commands of %s: a column has an "
                    "unexpected type",
                    command_id,
                    self.queries.table,
                    self.database,
                )
        return commands

    def any_pending_command(self) -> bool:
        """Whether some command waits for an answer."""
        if not self.has_history:
            return False
        return self.conn.execute(self.queries.any_pending_command).fetchone() is not None

    def command_result(self, command_id: int) -> str | None:
        """The answer to a command, None while pending; ValueError for an unknown id."""
        self.require_commands()
        row = self.conn.execute(self.queries.command_result, (command_id,)).fetchone()
        if row is None:
            raise ValueError(
                f"no command has id {command_id} in {self.database!r} (answers are kept for 7 days)"
            )
        result = row[0]
        return result if result is None or type(result) is str else str(result)

    def require_commands(self) -> None:
        """Raise :class:`StorageError` when the store predates commands."""
        if not self.has_history:
            raise StorageError(
                f"the SQLite database {self.database!r} has jobify schema version "
                f"{self.version}, which has no commands: start the app on it once with this "
                f"jobify (it upgrades the file to version {sql.SCHEMA_VERSION})"
            )
