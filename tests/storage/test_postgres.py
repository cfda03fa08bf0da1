"""PostgresStorage beyond the common contract: schema, claims, leases, completions, results,
notifications and bad input. Every test works in a schema of its own (see ``pgtest``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

import pgtest
from jobify.exceptions import MissingDependencyError, SchemaVersionError, StorageError
from jobify.storage import PostgresStorage
from jobify.storage.base import (
    JobRecord,
    RecordStatus,
    SharedListener,
)


def job(job_id: str, exec_at: float | None = None, **changes: Any) -> JobRecord:
    fields: dict[str, Any] = {
        "job_id": job_id,
        "task_name": "t",
        "exec_at": time.time() - 1 if exec_at is None else exec_at,
        "arguments": b"args",
        "trigger": b"once",
    }
    fields.update(changes)
    return JobRecord(**fields)


class Heard(SharedListener):
    """Every notification, in order, and an event per kind."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.got = {kind: asyncio.Event() for kind in ("new", "changed", "finished", "resync")}

    def _add(self, kind: str, value: object) -> None:
        self.events.append((kind, value))
        self.got[kind].set()

    def on_new_job(self, exec_at: float) -> None:
        self._add("new", exec_at)

    def on_job_changed(self, job_id: str) -> None:
        self._add("changed", job_id)

    def on_job_finished(self, job_id: str) -> None:
        self._add("finished", job_id)

    def on_resync(self) -> None:
        self._add("resync", None)

    async def wait(self, kind: str) -> None:
        await asyncio.wait_for(self.got[kind].wait(), timeout=5)
        self.got[kind].clear()

    def of(self, kind: str) -> list[object]:
        return [value for k, value in self.events if k == kind]


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        yield name


@pytest.fixture
async def pair(schema: str) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    """Two started workers on one schema."""
    first, second = pgtest.storage(schema), pgtest.storage(schema)
    await first.startup()
    await second.startup()
    try:
        yield first, second
    finally:
        await first.shutdown()
        await second.shutdown()


# -- construction and connection errors --------------------------------------------------


@pytest.mark.parametrize(
    "schema", ["", "1abc", "has space", "x;drop", "pg_catalog", "public", "a" * 49, 42]
)
def test_schema_must_be_a_plain_identifier(schema: object) -> None:
    with pytest.raises(ValueError, match="schema must be a plain identifier"):
        PostgresStorage(pgtest.DSN, schema=schema)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"), [("lease", 0), ("lease", "30"), ("results_ttl", -1), ("pool_size", 0)]
)
def test_bad_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        PostgresStorage(pgtest.DSN, **{option: value})  # type: ignore[arg-type]


def test_dsn_must_be_a_postgres_uri() -> None:
    with pytest.raises(ValueError, match="PostgreSQL URI"):
        PostgresStorage("host=localhost dbname=test")
    with pytest.raises(ValueError, match="PostgreSQL URI"):
        PostgresStorage("mysql://u@h/db")


def test_repr_hides_the_password() -> None:
    storage = PostgresStorage("postgresql://bob:hunter2secret@db.example:6543/app")
    assert "hunter2secret" not in repr(storage)
    assert "db.example:6543" in repr(storage)


def test_missing_asyncpg_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['asyncpg'] = None\n"
        "from jobify.storage import PostgresStorage\n"
        "from jobify.exceptions import MissingDependencyError\n"
        "try:\n    PostgresStorage('postgresql://u@h/db')\n"
        "except MissingDependencyError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "jobify[postgres]" in out.stdout and "asyncpg" in out.stdout
    assert issubclass(MissingDependencyError, ImportError)


async def test_unreachable_server_names_host_and_port_never_the_password() -> None:
    storage = PostgresStorage(
        "postgresql://postgres:Sup3rS3cretPw@127.0.0.1:1/test", connect_timeout=2
    )
    with pytest.raises(StorageError) as caught:
        await storage.startup()
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "Sup3rS3cretPw" not in message and "Sup3rS3cretPw" not in repr(caught.value)
    with pytest.raises(StorageError, match=r"startup\(\)"):
        await storage.get("a")  # still not started
    await storage.shutdown()


async def test_unknown_database_is_a_clear_error() -> None:
    pgtest.require_server()
    target = pgtest.DSN.rsplit("/", 1)[0] + "/jobify_no_such_database"
    storage = PostgresStorage(target)
    with pytest.raises(StorageError, match="no database 'jobify_no_such_database'"):
        await storage.startup()


# -- schema ----------------------------------------------------------------------------------


async def test_tables_live_only_in_the_schema(schema: str) -> None:
    storage = pgtest.storage(schema)
    await storage.startup()
    await storage.shutdown()
    conn = await pgtest.admin()
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema
        )
        assert [t["tablename"] for t in tables] == ["jobs", "meta", "results", "runs", "tasks"]
        indexes = await conn.fetch(
            "SELECT schemaname FROM pg_indexes WHERE indexname LIKE 'jobs\\_%'"
            " AND tablename = 'jobs' AND schemaname = $1",
            schema,
        )
        assert indexes
    finally:
        await conn.close()


async def test_workers_starting_at_the_same_instant_migrate_once(schema: str) -> None:
    storages = [pgtest.storage(schema, pool_size=1) for _ in range(6)]
    await asyncio.gather(*(s.startup() for s in storages))
    try:
        await storages[0].save(job("a"))
        assert [r.job_id for r in await storages[5].load()] == ["a"]
    finally:
        await asyncio.gather(*(s.shutdown() for s in storages))


async def test_a_newer_schema_is_refused(schema: str) -> None:
    storage = pgtest.storage(schema)
    await storage.startup()
    await storage.shutdown()
    conn = await pgtest.admin()
    try:
        await conn.execute(f"UPDATE \"{schema}\".meta SET value = '99'")
    finally:
        await conn.close()
    with pytest.raises(SchemaVersionError, match="newer jobify"):
        await storage.startup()
    with pytest.raises(SchemaVersionError):
        await storage.open_inspection()


async def test_inspection_of_a_missing_schema_creates_nothing(schema: str) -> None:
    inspector = pgtest.storage(schema)
    with pytest.raises(StorageError, match="not a jobify store"):
        await inspector.open_inspection()
    conn = await pgtest.admin()
    try:
        assert await conn.fetchval("SELECT to_regnamespace($1)", schema) is None
    finally:
        await conn.close()


async def test_a_schema_holding_foreign_tables_is_refused(schema: str) -> None:
    conn = await pgtest.admin()
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".jobs (x int)')
    finally:
        await conn.close()
    with pytest.raises(StorageError, match="did not create"):
        await pgtest.storage(schema).startup()


async def test_inspector_reads_and_edits_directly_but_cannot_claim(schema: str) -> None:
    worker = pgtest.storage(schema)
    heard = Heard()
    worker.set_listener(heard)
    await worker.startup()
    inspector = pgtest.storage(schema)
    await inspector.open_inspection()
    try:
        await worker.save(job("a"))
        await heard.wait("new")
        stored = await inspector.get("a")
        assert stored is not None and stored == await worker.get("a")
        await inspector.save(replace(stored, status=RecordStatus.PAUSED))
        await heard.wait("changed")
        assert heard.of("changed") == ["a"]
        with pytest.raises(StorageError, match="inspection"):
            await inspector.claim(["t"], 1)
        with pytest.raises(StorageError, match="inspection"):
            await inspector.complete("a", None, None)
    finally:
        await inspector.shutdown()
        await worker.shutdown()
