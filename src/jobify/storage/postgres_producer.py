"""Producer writes to a PostgreSQL store outside the group commit: bulk inserts and inserts
on a caller's own connection (transactional enqueue).

Both write *new* jobs only (generated ids, never in use), so neither needs the group commit's
insert-or-replace, and both announce the new rows with the same ``'n' + exec_at``
notification as the group commit, inside the same transaction: a listener hears of a row only
once it is committed, and never of a row whose transaction rolled back.

- :func:`copy_new_jobs`: many rows with ``COPY`` (binary; about twice the rows per second of
  a multi-row ``INSERT`` here, where each row also updates five indexes) and one
  notification, in one transaction.
- :func:`insert_on`: one row and its notification in one statement on the caller's asyncpg
  connection, inside whatever transaction the caller has open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobify.storage.base import JobRecord

__all__ = ["COLUMNS", "TRANSACTION_STATUS", "copy_new_jobs", "insert_on", "insert_statement"]

COLUMNS = ("job_id", "task_name", "exec_at", "arguments", "trigger", "status")

_NOTIFY = "SELECT pg_notify($1, $2)"

_INSERT_ON = """
WITH inserted AS (
    INSERT INTO {s}.jobs (job_id, task_name, exec_at, arguments, trigger, status)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (job_id) DO NOTHING
    RETURNING exec_at, status
), notified AS (
    SELECT pg_notify($7, 'n' || exec_at::text) FROM inserted WHERE status = 'scheduled'
)
SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM notified) AS sent,
       txid_current() AS xid
"""
"""One new job and its notification, on the caller's connection. An id in use inserts
nothing (``inserted`` 0) instead of failing, so the caller's transaction stays usable.
``xid`` identifies the caller's transaction, to learn later whether it committed."""

TRANSACTION_STATUS = "SELECT txid_status(:xid)"
"""``committed``, ``aborted``, ``in progress``, or NULL when too old to be known."""


def _row(record: JobRecord) -> tuple[Any, ...]:
    return (
        record.job_id,
        record.task_name,
        record.exec_at,
        record.arguments,
        record.trigger,
        record.status,
    )


def _announce(records: Sequence[JobRecord]) -> str | None:
    """The payload announcing these rows (the earliest armed time), or None."""
    armed = [r.exec_at for r in records if r.status == "scheduled"]
    return None if not armed else "n" + repr(float(min(armed)))


async def copy_new_jobs(conn: Any, schema: str, channel: str, records: Sequence[JobRecord]) -> None:
    """Insert ``records`` (new ids) with one ``COPY`` and one notification, in one
    transaction on ``conn`` (an asyncpg connection). A duplicate id fails the whole batch."""
    async with conn.transaction():
        await conn.copy_records_to_table(
            "jobs", schema_name=schema, columns=COLUMNS, records=[_row(r) for r in records]
        )
        payload = _announce(records)
        if payload is not None:
            await conn.execute(_NOTIFY, channel, payload)


def insert_statement(quoted_schema: str) -> str:
    """The one-row insert-and-notify statement for a schema (already quoted)."""
    return _INSERT_ON.replace("{s}", quoted_schema)


async def insert_on(conn: Any, statement: str, channel: str, record: JobRecord) -> int | None:
    """Insert one new job and its notification on ``conn``, in the caller's transaction if
    one is open (rolled back: neither the row nor the notification ever existed). Returns
    the transaction's id, or None when the job id is in use (nothing written)."""
    row = await conn.fetchrow(statement, *_row(record), channel)
    if row is None or row["inserted"] == 0:
        return None
    return int(row["xid"])
