"""The PostgreSQL server of the test suite: where it is, whether it answers, one schema per test.

Tests read ``JOBIFY_TEST_POSTGRES_DSN`` (default: the local server, user ``postgres``, database
``test``). When no server answers, PostgreSQL tests are skipped with the reason, except under
``CI=true``, where they fail: CI must never pass by skipping them. Every test works in a schema
of its own (``jobify_t_<random>``), dropped afterwards, so tests never see each other's rows
and the shared server is left as it was found.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import asyncpg
import pytest

from jobify.storage.postgres import PostgresStorage
from jobify.storage.postgres_connection import Target

DSN = os.environ.get("JOBIFY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")

created: list[str] = []
"""Schemas handed out by :func:`new_schema` and not dropped yet."""


@cache
def _unreachable_reason() -> str | None:
    target = Target.parse(DSN)
    try:
        with socket.create_connection((target.host, int(target.port)), timeout=2):
            return None
    except OSError as exc:
        return f"no PostgreSQL server answers at {target.host}:{target.port} ({exc})"


def reachable() -> bool:
    """Whether the test server answers."""
    return _unreachable_reason() is None


def require_server() -> None:
    """Skip the calling test when the server is unreachable; fail instead under CI=true."""
    reason = _unreachable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the PostgreSQL tests to run", pytrace=False)
    pytest.skip(f"{reason}; set JOBIFY_TEST_POSTGRES_DSN to run the PostgreSQL tests")


def new_schema() -> str:
    """A fresh schema name, registered for :func:`drop_created`."""
    require_server()
    name = f"jobify_t_{uuid.uuid4().hex[:12]}"
    created.append(name)
    return name


def storage(schema: str | None = None, **options: Any) -> PostgresStorage:
    """An unstarted storage on the test server, in ``schema`` or a fresh one."""
    options.setdefault("pool_size", 3)
    return PostgresStorage(DSN, schema=schema or new_schema(), **options)


async def drop(schemas: Iterable[str]) -> None:
    """Drop these schemas (and everything in them) if they exist."""
    names = list(schemas)
    if not names:
        return
    conn = await asyncpg.connect(DSN)
    try:
        for name in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def drop_created() -> None:
    """Drop every schema handed out so far."""
    names, created[:] = list(created), []
    await drop(names)


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A schema name for one test, dropped when the block ends."""
    name = new_schema()
    try:
        yield name
    finally:
        created.remove(name)
        await drop([name])


async def admin() -> asyncpg.Connection:
    """A plain connection for test set-up and checks (the caller closes it)."""
    return await asyncpg.connect(DSN)


async def terminate_backends(application_name: str) -> int:
    """``pg_terminate_backend`` every connection of one storage (by its application name,
    which holds its random worker id: never another engineer's connection)."""
    conn = await admin()
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                application_name,
            )
        )
    finally:
        await conn.close()
