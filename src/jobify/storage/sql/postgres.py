"""Every SQL statement :class:`~jobify.storage.PostgresStorage` runs, as named constants.

Statements are templates: ``{s}`` stands for the quoted schema name (validated as a plain
identifier before it is formatted in, so formatting cannot inject SQL) and ``:name`` for a
parameter. :func:`bind` turns the named parameters into PostgreSQL's positional ``$n`` and
returns their order, so statements can be assembled from fragments (the group commit, the
filters of the inspection queries) without hand-numbering.

Layout of a schema (everything lives inside it; nothing is created elsewhere):

- ``meta``: ``schema_version``.
- ``jobs``: one row per durable job; ``locked_by``/``locked_until`` hold a worker's claim. No
  index covers the lease columns, so a claim or a heartbeat is a HOT update (no index
  writes; the table keeps free room on each page for it, ``fillfactor``).
- ``results``: the outcome of finished runs, for remote waiters, pruned after a retention.
- ``runs``: the run history. ``tasks``: the registered tasks of the last started worker.

The group commit sends ONE statement per batch: data-modifying CTEs for each kind of write
present (upserts, deletes, guarded completions, results, run records) plus the
``pg_notify`` calls that announce them, which PostgreSQL delivers only at COMMIT, so a
listener never hears of a row it cannot read yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "bind"]

_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


def bind(template: str, schema: str) -> tuple[str, tuple[str, ...]]:
    """Format ``template`` for ``schema`` (already quoted) and number its ``:name``
    parameters in order of first appearance; return the SQL and the names in ``$n`` order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, template.replace("{s}", schema)), tuple(names)


# -- schema ---------------------------------------------------------------------------------

ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"
"""Serialises concurrent startups on one schema (held until the migration commits)."""
CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {s}"
META_EXISTS = "SELECT to_regclass(:meta) IS NOT NULL"
GET_VERSION = "SELECT value FROM {s}.meta WHERE key = 'schema_version'"
SET_VERSION = (
    "INSERT INTO {s}.meta (key, value) VALUES ('schema_version', :version)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v0 -> v1
    (
        "CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
        """
        CREATE TABLE {s}.jobs (
            job_id       text PRIMARY KEY,
            task_name    text NOT NULL,
            exec_at      double precision NOT NULL,
            arguments    bytea NOT NULL,
            trigger      bytea NOT NULL,
            status       text NOT NULL,
            locked_by    text,
            locked_until double precision
        ) WITH (fillfactor = 80)
        """,
        # Claims walk this in exec_at order; it holds only armed rows.
        "CREATE INDEX jobs_due ON {s}.jobs (exec_at) WHERE status = 'scheduled'",
        # The inspection queries: ordered pages, by task, by status.
        "CREATE INDEX jobs_order ON {s}.jobs (exec_at, job_id)",
        "CREATE INDEX jobs_task ON {s}.jobs (task_name, exec_at, job_id)",
        "CREATE INDEX jobs_status ON {s}.jobs (status, exec_at, job_id)",
        """
        CREATE TABLE {s}.results (
            job_id      text PRIMARY KEY,
            status      text NOT NULL,
            value       bytea,
            error       text,
            finished_at double precision NOT NULL
        )
        """,
        "CREATE INDEX results_finished ON {s}.results (finished_at)",
        """
        CREATE TABLE {s}.runs (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            job_id        text NOT NULL,
            task_name     text NOT NULL,
            scheduled_at  double precision NOT NULL,
            started_at    double precision NOT NULL,
            finished_at   double precision NOT NULL,
            outcome       text NOT NULL,
            attempts      integer NOT NULL,
            error_type    text,
            error_message text,
            traceback     text,
            worker        text
        )
        """,
        "CREATE INDEX runs_finished ON {s}.runs (finished_at DESC, id DESC)",
        "CREATE INDEX runs_job ON {s}.runs (job_id, finished_at DESC, id DESC)",
        "CREATE INDEX runs_task ON {s}.runs (task_name, finished_at DESC, id DESC)",
        """
        CREATE TABLE {s}.tasks (
            name       text PRIMARY KEY,
            options    text NOT NULL,
            updated_at double precision NOT NULL
        )
        """,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and understands."""

# -- reads ----------------------------------------------------------------------------------

JOB_COLUMNS = "job_id, task_name, exec_at, arguments, trigger, status"
LOAD = "SELECT " + JOB_COLUMNS + " FROM {s}.jobs"
GET = LOAD + " WHERE job_id = :job_id"
JOB_COUNTS = "SELECT task_name, status, count(*) FROM {s}.jobs GROUP BY task_name, status"

# query_jobs / query_history: a base, the filters present joined by AND, an order and a page.
JOB_FILTERS = {
    "task_name": "task_name = :task_name",
    "status": "status = :status",
    "due_before": "exec_at <= :due_before",
    "due_after": "exec_at >= :due_after",
}
JOB_PAGE = " ORDER BY exec_at, job_id LIMIT :limit OFFSET :offset"

RUN_COLUMNS = (
    "job_id, task_name, scheduled_at, started_at, finished_at, outcome, attempts,"
    " error_type, error_message, traceback, worker"
)
HISTORY = "SELECT " + RUN_COLUMNS + " FROM {s}.runs"
HISTORY_FILTERS = {
    "job_id": "job_id = :job_id",
    "task_name": "task_name = :task_name",
    "failed_only": "outcome NOT IN ('success', 'cancelled')",
    "since": "finished_at >= :since",
}
HISTORY_PAGE = " ORDER BY finished_at DESC, id DESC LIMIT :limit OFFSET :offset"


def filtered(base: str, filters: dict[str, str], present: Iterable[str], page: str) -> str:
    """``base`` with the named filters ANDed in a WHERE clause, then ``page``."""
    clauses = [filters[name] for name in present]
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    return base + where + page


LOAD_TASKS = "SELECT name, options, updated_at FROM {s}.tasks ORDER BY name"
GET_RESULTS = (
    "SELECT job_id, status, value, error, finished_at FROM {s}.results"
    " WHERE job_id = ANY(:ids::text[]) AND finished_at >= :oldest"
)

# -- worker statements ----------------------------------------------------------------------

CLAIM = """
WITH picked AS (
    SELECT job_id, locked_by FROM {s}.jobs
    WHERE status = 'scheduled' AND exec_at >= :from AND exec_at <= :due
      AND task_name = ANY(:tasks::text[])
      AND (locked_until IS NULL OR locked_until <= :now)
    ORDER BY exec_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {s}.jobs AS j SET locked_by = :worker, locked_until = :until
    FROM picked WHERE j.job_id = picked.job_id
    RETURNING j.job_id, j.task_name, j.exec_at, j.arguments, j.trigger, j.status,
        picked.locked_by AS previous
)
SELECT least(
    (SELECT min(exec_at) FROM claimed),
    (SELECT min(exec_at) FROM {s}.jobs
     WHERE status = 'scheduled' AND task_name = ANY(:tasks::text[]) AND exec_at >= :from
       AND exec_at <= coalesce((SELECT min(exec_at) FROM claimed), :due))
) AS low, claimed.*
FROM (SELECT) AS one LEFT JOIN claimed ON true
"""
"""Claim due rows (unclaimed, or whose lease expired) of these tasks, earliest first, from
the cursor ``:from`` on (see :mod:`jobify.storage.postgres_cursor`); rows locked by a
concurrent claim are skipped, never waited for. Every row returned carries ``low``: the
earliest live scheduled ``exec_at`` of these tasks at or after the cursor in the statement's
snapshot (claimed rows included), or NULL when there is none up to ``:due``: where the next
claim may start. It is read only up to the first row claimed (or ``:due``): a range that
holds the rows in flight and the few finished since the last claim, never the backlog, so
no plan the statistics may choose makes it read every waiting job. With nothing claimed,
one row of NULL job columns carries it. Each claimed row also names the worker whose
expired lease it had (``previous``; NULL for a row nobody held): a takeover."""

NEXT_CLAIMABLE = """
WITH first_free AS (
    SELECT exec_at FROM {s}.jobs
    WHERE status = 'scheduled' AND locked_until IS NULL AND task_name = ANY(:tasks::text[])
      AND exec_at >= :from
    ORDER BY exec_at LIMIT 1
)
SELECT least(
    (SELECT exec_at FROM first_free),
    (SELECT min(greatest(exec_at, locked_until)) FROM {s}.jobs
     WHERE status = 'scheduled' AND locked_until IS NOT NULL AND locked_by <> :worker
       AND task_name = ANY(:tasks::text[]) AND exec_at >= :from
       AND exec_at <= coalesce((SELECT exec_at FROM first_free), 'infinity'))
)
"""
"""The earliest unclaimed ``exec_at`` at or after the cursor ``:from``, or the earlier expiry
of another worker's lease. A claimed row can only beat the first free one if its ``exec_at``
is earlier, so the second scan stops there (it walks only the rows in flight ahead of it)."""

HEARTBEAT = (
    """
WITH mine AS (
    SELECT job_id FROM {s}.jobs
    WHERE job_id = ANY(:ids::text[]) AND locked_by = :worker
    ORDER BY job_id
    FOR UPDATE SKIP LOCKED
), renewed AS (
    UPDATE {s}.jobs AS j SET locked_until = :until FROM mine
    WHERE j.job_id = mine.job_id
    RETURNING j.job_id
)
SELECT array(SELECT job_id FROM renewed) AS renewed,
       array(SELECT id FROM unnest(:ids::text[]) AS id
             WHERE NOT EXISTS (SELECT 1 FROM {s}.jobs
                               WHERE job_id = id AND locked_by = :worker)) AS lost,
       ("""
    + NEXT_CLAIMABLE
    + """) AS next
"""
)
"""The lease heartbeat, one statement per ``lease / 3``: renew this worker's leases by id,
say which claims were taken (the row is gone or another worker holds it: those runs are no
longer this worker's), and read the earliest claimable time (so a lost notification costs at
most one heartbeat period). It never waits for a row lock (``SKIP LOCKED``: a row locked by
a completion or a producer's write right now is renewed next time, or leaves the claim
anyway), so it can be part of no deadlock. A claim whose outcome was lost in a dropped
connection is not in the list, so it is never renewed and simply expires."""

CONFIRM = (
    "UPDATE {s}.jobs SET locked_until = :until"
    " WHERE job_id = :job_id AND locked_by = :worker RETURNING job_id"
)
"""Renew one claim before its run starts late (the worker was frozen, or heartbeats failed):
no row means the claim is no longer this worker's."""

RELEASE_FRAGMENT = """
WITH released AS (
    UPDATE {s}.jobs SET locked_by = NULL, locked_until = NULL
    WHERE job_id IN (
        SELECT job_id FROM {s}.jobs WHERE locked_by = :worker {ids}
        ORDER BY job_id FOR UPDATE
    ) AND locked_by = :worker
    RETURNING exec_at, status
)
SELECT count(*), (
    SELECT pg_notify(:channel, 'n' || min(exec_at)::text)
    FROM released WHERE status = 'scheduled' HAVING count(*) > 0
) FROM released
"""
RELEASE_ALL = RELEASE_FRAGMENT.replace("{ids}", "")
RELEASE_SOME = RELEASE_FRAGMENT.replace("{ids}", "AND job_id = ANY(:ids::text[])")

SAVE_TASKS = """
WITH gone AS (DELETE FROM {s}.tasks WHERE name <> ALL(:names::text[]))
INSERT INTO {s}.tasks (name, options, updated_at)
SELECT * FROM unnest(:names::text[], :options::text[], :updated::float8[])
ON CONFLICT (name) DO UPDATE SET options = excluded.options, updated_at = excluded.updated_at
"""

PRUNE_HISTORY = """
WITH edge AS (
    SELECT finished_at, id FROM {s}.runs ORDER BY finished_at DESC, id DESC
    OFFSET :keep LIMIT 1
), gone AS (
    DELETE FROM {s}.runs WHERE id IN (
        SELECT id FROM {s}.runs
        WHERE finished_at >= :floor
          AND (finished_at < :before
               OR (finished_at, id) <= (SELECT finished_at, id FROM edge))
        ORDER BY finished_at, id
        LIMIT :batch
    )
    RETURNING finished_at
)
SELECT count(*) AS deleted, max(finished_at) AS upto FROM gone
"""
"""One step of pruning the history: at most ``:batch`` of the oldest records that are older
than ``:before`` or not among the newest ``:keep``, from ``:floor`` on (the caller passes where
its last step stopped, so no step walks the rows deleted before it, which stay in the index
until vacuum removes them)."""

# -- the group commit: one statement per batch ----------------------------------------------
#
# Each fragment is a CTE; a batch uses those of the writes it holds. Job ids are disjoint
# between the job-writing fragments (the batcher starts a new batch rather than touch one id
# twice), because PostgreSQL leaves undefined which of two changes to one row in one
# statement wins.

BATCH_UPSERT = """
upserted AS (
    INSERT INTO {s}.jobs AS j (job_id, task_name, exec_at, arguments, trigger, status)
    SELECT * FROM unnest(:up_ids::text[], :up_tasks::text[], :up_exec::float8[],
                         :up_args::bytea[], :up_trig::bytea[], :up_status::text[])
    ORDER BY 1
    ON CONFLICT (job_id) DO UPDATE SET
        task_name = excluded.task_name, exec_at = excluded.exec_at,
        arguments = excluded.arguments, trigger = excluded.trigger, status = excluded.status,
        -- A replacement (new task, arguments or trigger) takes the job from whoever claimed
        -- it: that worker's completion is then refused. A move, pause or resume keeps it.
        locked_by = CASE WHEN (j.task_name, j.arguments, j.trigger)
                            = (excluded.task_name, excluded.arguments, excluded.trigger)
                         THEN j.locked_by END,
        locked_until = CASE WHEN (j.task_name, j.arguments, j.trigger)
                               = (excluded.task_name, excluded.arguments, excluded.trigger)
                            THEN j.locked_until END
    RETURNING j.job_id, j.exec_at, j.status, (j.xmax <> 0) AS replaced
)"""
BATCH_DELETE = """
deleted AS (
    DELETE FROM {s}.jobs WHERE job_id IN (
        SELECT job_id FROM {s}.jobs WHERE job_id = ANY(:del_ids::text[])
        ORDER BY job_id FOR UPDATE
    )
    RETURNING job_id
)"""
BATCH_DONE = """
done AS (
    DELETE FROM {s}.jobs WHERE job_id IN (
        SELECT job_id FROM {s}.jobs WHERE job_id = ANY(:done_ids::text[]) AND locked_by = :worker
        ORDER BY job_id FOR UPDATE
    ) AND locked_by = :worker
    RETURNING job_id
)"""
"""Completion of one-shot jobs: deleted only where this worker still holds the lease. Rows
are locked in ``job_id`` order, as every statement of ours that waits for row locks does, so
two of them never wait for each other in a cycle (``deadlock detected``)."""
BATCH_ADVANCED = """
advanced AS (
    UPDATE {s}.jobs AS j SET
        task_name = a.task_name, exec_at = a.exec_at, arguments = a.arguments,
        trigger = a.trigger, locked_by = NULL, locked_until = NULL,
        status = CASE WHEN j.status = 'paused' THEN 'paused' ELSE a.status END
    FROM unnest(:adv_ids::text[], :adv_tasks::text[], :adv_exec::float8[],
                :adv_args::bytea[], :adv_trig::bytea[], :adv_status::text[])
         AS a(job_id, task_name, exec_at, arguments, trigger, status)
    WHERE j.job_id = a.job_id AND j.locked_by = :worker AND j.job_id IN (
        SELECT job_id FROM {s}.jobs WHERE job_id = ANY(:adv_ids::text[]) AND locked_by = :worker
        ORDER BY job_id FOR UPDATE
    )
    RETURNING j.job_id, j.exec_at, j.status
)"""
"""Completion of a cron run: the record replaces the row and the claim is released, where
this worker still holds the lease; a pause set meanwhile by someone else is kept."""
BATCH_RESULTS = """
stored AS (
    INSERT INTO {s}.results AS r (job_id, status, value, error, finished_at)
    SELECT * FROM unnest(:res_ids::text[], :res_status::text[], :res_value::bytea[],
                         :res_error::text[], :res_at::float8[]) AS n(job_id, status, value,
                                                                  error, finished_at)
    WHERE n.job_id IN ({completed})
    ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, value = excluded.value,
        error = excluded.error, finished_at = excluded.finished_at
    RETURNING r.job_id
)"""
BATCH_PRUNE_RESULTS = """
pruned AS (
    DELETE FROM {s}.results WHERE job_id IN (
        SELECT job_id FROM {s}.results
        WHERE finished_at >= :res_floor AND finished_at < :res_oldest
        ORDER BY finished_at
        LIMIT :res_limit
    )
    RETURNING finished_at
)"""
"""Expired results, a few per batch (never a spike), from ``:res_floor`` on: where the last
prune stopped, so it never walks the dead entries of the rows it deleted before."""
BATCH_RUNS = """
ran AS (
    INSERT INTO {s}.runs (job_id, task_name, scheduled_at, started_at, finished_at, outcome,
                          attempts, error_type, error_message, traceback, worker)
    SELECT * FROM unnest(:run_ids::text[], :run_tasks::text[], :run_sched::float8[],
                         :run_start::float8[], :run_end::float8[], :run_outcome::text[],
                         :run_attempts::int[], :run_etype::text[], :run_emsg::text[],
                         :run_tb::text[], :run_worker::text[])
)"""

# Notifications. Payloads: 'n' + the earliest exec_at (a float as text) of rows that became
# claimable; 'c' + a JSON array of changed job ids; 'f' + a JSON array of finished job ids;
# 'r' when a list would not fit in one notification (listeners resynchronise). Id lists are
# split into payloads of at most ~7,000 bytes (PostgreSQL's limit is 8,000).
BATCH_NOTIFY_NEW = """
notified_new AS (
    SELECT pg_notify(:channel, 'n' || min(exec_at)::text) AS sent
    FROM ({sources}) AS armed(exec_at, status)
    WHERE status = 'scheduled' HAVING count(*) > 0
)"""
BATCH_NOTIFY_IDS = """
notified_{name} AS (
    SELECT pg_notify(:channel, CASE WHEN octet_length(payload) < 7900 THEN payload ELSE 'r' END)
        AS sent
    FROM (
        SELECT '{prefix}' || json_agg(job_id)::text AS payload
        FROM (SELECT job_id,
                     sum(octet_length(to_json(job_id)::text) + 1) OVER (ORDER BY job_id) / 7000
                         AS chunk
              FROM ({sources}) AS ids(job_id)) AS sized
        GROUP BY chunk
    ) AS payloads
)"""


def batch_statement(parts: frozenset[str]) -> str:
    """The template of one group-commit statement holding the given kinds of writes.

    ``parts`` is a subset of ``{"upsert", "delete", "done", "advanced", "results",
    "prune", "runs"}``; the statement returns one row: ``completed``, the ids whose guarded
    completion applied (empty array without completions), and with ``prune``,
    ``pruned_upto``: the latest ``finished_at`` of the results it deleted (NULL: none).
    Results need a completion.
    """
    ctes: list[str] = []
    armed: list[str] = []
    changed: list[str] = []
    completed: list[str] = []
    if "upsert" in parts:
        ctes.append(BATCH_UPSERT)
        armed.append("SELECT exec_at, status FROM upserted")
        changed.append("SELECT job_id FROM upserted WHERE replaced")
    if "delete" in parts:
        ctes.append(BATCH_DELETE)
        changed.append("SELECT job_id FROM deleted")
    if "done" in parts:
        ctes.append(BATCH_DONE)
        completed.append("SELECT job_id FROM done")
    if "advanced" in parts:
        ctes.append(BATCH_ADVANCED)
        armed.append("SELECT exec_at, status FROM advanced")
        completed.append("SELECT job_id FROM advanced")
    if "results" in parts and completed:
        ctes.append(BATCH_RESULTS.replace("{completed}", " UNION ALL ".join(completed)))
    if "prune" in parts:
        ctes.append(BATCH_PRUNE_RESULTS)
    if "runs" in parts:
        ctes.append(BATCH_RUNS)
    sent: list[str] = []
    if armed:
        ctes.append(BATCH_NOTIFY_NEW.replace("{sources}", " UNION ALL ".join(armed)))
        sent.append("notified_new")
    for name, prefix, sources in (
        ("changed", "c", changed),
        ("finished", "f", ["SELECT job_id FROM stored"] if "results" in parts else []),
    ):
        if sources and (name != "finished" or completed):
            ctes.append(
                BATCH_NOTIFY_IDS.replace("{name}", name)
                .replace("{prefix}", prefix)
                .replace("{sources}", " UNION ALL ".join(sources))
            )
            sent.append(f"notified_{name}")
    # Plain SELECT CTEs run only when referenced: count them so every notification is sent.
    touch = "".join(f", (SELECT count(*) FROM {name})" for name in sent)
    if "prune" in parts:
        touch += ", (SELECT max(finished_at) FROM pruned) AS pruned_upto"
    done = " UNION ALL ".join(completed) if completed else "SELECT NULL::text WHERE false"
    return "WITH " + ",".join(ctes) + f"\nSELECT array({done}) AS completed{touch}"
