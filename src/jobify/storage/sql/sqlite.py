"""Every SQL statement :class:`~jobify.storage.SQLiteStorage` runs, as named constants.

Statements about a store's tables are templates with a ``{table}`` placeholder (the jobs
table; the run history, task list and commands tables are named after it); they are formatted
once per storage by :meth:`SQLiteQueries.for_table` with a name that has already been
validated as a plain identifier (so formatting cannot inject SQL).

The schema is versioned per jobs table in ``jobify_meta``. :data:`MIGRATIONS` is an ordered list:
step ``i`` takes a table from version ``i`` to ``i + 1``, so adding a version means appending
one step. A step, once released, never changes: files in the field were built by it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteQueries"]

META_TABLE = "jobify_meta"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v0 -> v1: the jobs table and the index the scheduler's "what is due next" needs.
    (
        """
        CREATE TABLE {table} (
            job_id    TEXT PRIMARY KEY,
            task_name TEXT NOT NULL,
            exec_at   REAL NOT NULL,
            arguments BLOB NOT NULL,
            trigger   BLOB NOT NULL,
            status    TEXT NOT NULL
        )
        """,
        "CREATE INDEX {table}_exec_at ON {table} (exec_at)",
    ),
    # v1 -> v2: inspection (paged job lists, counts), run history, task list, commands.
    (
        # Job lists are ordered by (exec_at, job_id) and filtered by task or status. One
        # index in that order holds every column a page's filter needs, so that a page, even
        # a deep one, walks the index alone (see PAGE_JOBS), never the rows. A second full
        # index (task_name, exec_at) would make a rare task's page instant instead of one
        # index scan (~7 ms at 100,000 records), but every write would pay for it: one more
        # B-tree page per commit, measured ~8% of a sequential durable write.
        "DROP INDEX IF EXISTS {table}_exec_at",
        "CREATE INDEX {table}_exec_at ON {table} (exec_at, job_id, status, task_name)",
        # Nearly every record is 'scheduled': a partial index of the others costs the hot
        # path (saving scheduled jobs) nothing and finds paused or failed ones at once.
        "CREATE INDEX {table}_status ON {table} (status, task_name, exec_at, job_id)"
        " WHERE status <> 'scheduled'",
        """
        CREATE TABLE {table}_runs (
            run_id        INTEGER PRIMARY KEY,
            job_id        TEXT NOT NULL,
            task_name     TEXT NOT NULL,
            scheduled_at  REAL NOT NULL,
            started_at    REAL NOT NULL,
            finished_at   REAL NOT NULL,
            outcome       TEXT NOT NULL,
            attempts      INTEGER NOT NULL,
            error_type    TEXT,
            error_message TEXT,
            traceback     TEXT,
            worker        TEXT
        )
        """,
        # Newest first is (finished_at DESC, run_id DESC): every index carries run_id (the
        # rowid) after its columns. A run costs about what a job write costs, so it gets few
        # indexes: by time (with the task, so a task's runs are found walking this index
        # alone), by job, and the failures (rare, so nearly free).
        "CREATE INDEX {table}_runs_finished ON {table}_runs (finished_at, task_name)",
        "CREATE INDEX {table}_runs_job ON {table}_runs (job_id, finished_at)",
        "CREATE INDEX {table}_runs_failed ON {table}_runs (finished_at)"
        " WHERE outcome NOT IN ('success', 'cancelled')",
        """
        CREATE TABLE {table}_tasks (
            name       TEXT PRIMARY KEY,
            options    TEXT NOT NULL,
            updated_at REAL NOT NULL
        )
        """,
        # AUTOINCREMENT: an inspector polls an answer by id, so an id is never reused.
        """
        CREATE TABLE {table}_commands (
            command_id  INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id      TEXT NOT NULL,
            action      TEXT NOT NULL,
            created_at  REAL NOT NULL,
            result      TEXT,
            finished_at REAL
        )
        """,
        "CREATE INDEX {table}_commands_pending ON {table}_commands (command_id)"
        " WHERE result IS NULL",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and understands."""

HISTORY_VERSION = 2
"""The first version with run history, task list and commands (older ones read as empty)."""

BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
JOURNAL_WAL = "PRAGMA journal_mode = WAL"
SYNCHRONOUS = {"normal": "PRAGMA synchronous = NORMAL", "full": "PRAGMA synchronous = FULL"}
SAVEPOINT = "SAVEPOINT jobify_write"
RELEASE = "RELEASE jobify_write"
ROLLBACK_TO = "ROLLBACK TO jobify_write"

META_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobify_meta'"
CREATE_META = (
    "CREATE TABLE IF NOT EXISTS jobify_meta ("
    " table_name TEXT PRIMARY KEY, schema_version INTEGER NOT NULL)"
)
GET_VERSION = "SELECT schema_version FROM jobify_meta WHERE table_name = ?"
LIST_STORES = "SELECT table_name FROM jobify_meta ORDER BY table_name"
SET_VERSION = (
    "INSERT INTO jobify_meta (table_name, schema_version) VALUES (?, ?)"
    " ON CONFLICT (table_name) DO UPDATE SET schema_version = excluded.schema_version"
)

# -- jobs -------------------------------------------------------------------------------------

UPSERT = (
    "INSERT OR REPLACE INTO {table} (job_id, task_name, exec_at, arguments, trigger, status)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
DELETE = "DELETE FROM {table} WHERE job_id = ?"
# Column types are checked in Python after the fetch (the table is not STRICT, so a row edited
# by hand can hold anything): on 100,000 rows that is several times cheaper than typeof() tests.
LOAD = "SELECT job_id, task_name, exec_at, arguments, trigger, status FROM {table}"
GET = LOAD + " WHERE job_id = ?"
# One page of a job list. The inner query picks the page's rowids walking a covering index
# only; the outer one reads just those rows. {where} is built by jobs_where() from fixed
# fragments (never from input); values are bound.
PAGE_JOBS = (
    LOAD + " WHERE rowid IN (SELECT rowid FROM {table}{where}"
    " ORDER BY exec_at, job_id LIMIT ? OFFSET ?) ORDER BY exec_at, job_id"
)
# One walk of the covering exec_at index (no row is read).
COUNT_JOBS = "SELECT task_name, status, count(*) FROM {table} GROUP BY task_name, status"

# -- run history ------------------------------------------------------------------------------

INSERT_RUN = (
    "INSERT INTO {table}_runs (job_id, task_name, scheduled_at, started_at, finished_at,"
    " outcome, attempts, error_type, error_message, traceback, worker)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
RUN_COLUMNS = (
    "job_id, task_name, scheduled_at, started_at, finished_at, outcome, attempts,"
    " error_type, error_message, traceback, worker"
)
PAGE_RUNS = (
    "SELECT " + RUN_COLUMNS + " FROM {table}_runs WHERE run_id IN (SELECT run_id FROM"
    " {table}_runs{where} ORDER BY finished_at DESC, run_id DESC LIMIT ? OFFSET ?)"
    " ORDER BY finished_at DESC, run_id DESC"
)
# Pruning by count finds the newest run it must delete (OFFSET keep), then deletes from there
# down in index order: a range delete, however many runs are kept.
NTH_NEWEST_RUN = (
    "SELECT finished_at, run_id FROM {table}_runs"
    " ORDER BY finished_at DESC, run_id DESC LIMIT 1 OFFSET ?"
)
PRUNE_RUNS_THROUGH = "DELETE FROM {table}_runs WHERE (finished_at, run_id) <= (?, ?)"
PRUNE_RUNS_BEFORE = "DELETE FROM {table}_runs WHERE finished_at < ?"
CLEAR_RUNS = "DELETE FROM {table}_runs"

# -- task list --------------------------------------------------------------------------------

CLEAR_TASKS = "DELETE FROM {table}_tasks"
INSERT_TASK = "INSERT INTO {table}_tasks (name, options, updated_at) VALUES (?, ?, ?)"
LOAD_TASKS = "SELECT name, options, updated_at FROM {table}_tasks ORDER BY name"

# -- commands ---------------------------------------------------------------------------------

INSERT_COMMAND = "INSERT INTO {table}_commands (job_id, action, created_at) VALUES (?, ?, ?)"
PENDING_COMMANDS = (
    "SELECT command_id, job_id, action, created_at FROM {table}_commands"
    " WHERE result IS NULL ORDER BY command_id"
)
ANY_PENDING_COMMAND = "SELECT 1 FROM {table}_commands WHERE result IS NULL LIMIT 1"
COMMAND_RESULT = "SELECT result FROM {table}_commands WHERE command_id = ?"
FINISH_COMMAND = (
    "UPDATE {table}_commands SET result = ?, finished_at = ?"
    " WHERE command_id = ? AND result IS NULL"
)
# Answers are read by the inspector that asked, within seconds; old ones are dropped.
FORGET_COMMANDS = "DELETE FROM {table}_commands WHERE result IS NOT NULL AND finished_at < ?"


def jobs_where(
    task: bool, status: str | None, due_before: bool, due_after: bool
) -> tuple[str, bool]:
    """The WHERE clause of a job page for the filters present, and whether the status value
    is bound (a status other than 'scheduled' is matched with the partial index's own
    condition spelled out, which is how SQLite knows it may use that index)."""
    terms = []
    bind_status = False
    if task:
        terms.append("task_name = ?")
    if status is not None:
        terms.append("status = ?")
        bind_status = True
        if status != "scheduled":
            terms.append("status <> 'scheduled'")
    if due_before:
        terms.append("exec_at <= ?")
    if due_after:
        terms.append("exec_at >= ?")
    return (" WHERE " + " AND ".join(terms) if terms else ""), bind_status


def runs_where(job: bool, task: bool, failed_only: bool, since: bool) -> str:
    """The WHERE clause of a history page for the filters present."""
    terms = []
    if job:
        terms.append("job_id = ?")
    if task:
        # With a job id, "+" keeps SQLite from walking a task's runs to find one job's: the
        # job index is the selective one (it has no statistics to tell).
        terms.append("+task_name = ?" if job else "task_name = ?")
    if failed_only:  # spelled as the partial index's condition, so that it can be used
        terms.append("outcome NOT IN ('success', 'cancelled')")
    if since:
        terms.append("finished_at >= ?")
    return " WHERE " + " AND ".join(terms) if terms else ""


@dataclass(frozen=True, slots=True)
class SQLiteQueries:
    """The statements for one store (a jobs table and its companions), formatted once."""

    table: str
    migrations: tuple[tuple[str, ...], ...]
    upsert: str
    delete: str
    load: str
    get: str
    count_jobs: str
    insert_run: str
    nth_newest_run: str
    prune_runs_through: str
    prune_runs_before: str
    clear_runs: str
    clear_tasks: str
    insert_task: str
    load_tasks: str
    insert_command: str
    pending_commands: str
    any_pending_command: str
    command_result: str
    finish_command: str
    forget_commands: str

    @classmethod
    def for_table(cls, table: str) -> SQLiteQueries:
        """Format every template for ``table`` (an already validated identifier)."""
        templates = {
            "upsert": UPSERT,
            "delete": DELETE,
            "load": LOAD,
            "get": GET,
            "count_jobs": COUNT_JOBS,
            "insert_run": INSERT_RUN,
            "nth_newest_run": NTH_NEWEST_RUN,
            "prune_runs_through": PRUNE_RUNS_THROUGH,
            "prune_runs_before": PRUNE_RUNS_BEFORE,
            "clear_runs": CLEAR_RUNS,
            "clear_tasks": CLEAR_TASKS,
            "insert_task": INSERT_TASK,
            "load_tasks": LOAD_TASKS,
            "insert_command": INSERT_COMMAND,
            "pending_commands": PENDING_COMMANDS,
            "any_pending_command": ANY_PENDING_COMMAND,
            "command_result": COMMAND_RESULT,
            "finish_command": FINISH_COMMAND,
            "forget_commands": FORGET_COMMANDS,
        }
        assert set(templates) == {f.name for f in fields(cls)} - {"table", "migrations"}
        return cls(
            table=table,
            migrations=tuple(tuple(s.format(table=table) for s in step) for step in MIGRATIONS),
            **{name: template.format(table=table) for name, template in templates.items()},
        )

    def page_jobs(self, where: str) -> str:
        """The job page statement for a WHERE clause made by :func:`jobs_where`."""
        return _format(PAGE_JOBS, self.table, where)

    def page_runs(self, where: str) -> str:
        """The history page statement for a WHERE clause made by :func:`runs_where`."""
        return _format(PAGE_RUNS, self.table, where)


@lru_cache(maxsize=256)
def _format(template: str, table: str, where: str) -> str:
    # A handful of filter combinations exist per store: format each once.
    return template.format(table=table, where=where)
