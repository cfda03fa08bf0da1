"""The ``storage`` fixture: every backend, started, for the one contract suite.

To run the suite on a new backend, add one entry to ``BACKENDS``: a name and a factory that
takes pytest's ``tmp_path`` and returns an unstarted storage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import pgtest
from jobify.storage import SQLiteStorage, Storage
from jobify.storage.memory import MemoryStorage

BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "memory": lambda tmp_path: MemoryStorage(),
    "sqlite-file": lambda tmp_path: SQLiteStorage(tmp_path / "jobs.db"),
    "sqlite-memory": lambda tmp_path: SQLiteStorage(":memory:"),
    # A fresh schema per storage (skipped when no server answers, failed under CI=true).
    "postgres": lambda tmp_path: pgtest.storage(),
}


@pytest.fixture(autouse=True)
async def _drop_postgres_schemas() -> AsyncIterator[None]:
    """Drop the PostgreSQL schemas a test created, after its storages are shut down."""
    yield
    await pgtest.drop_created()


@pytest.fixture(params=sorted(BACKENDS))
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A started storage of each backend, shut down after the test."""
    backend = BACKENDS[request.param](tmp_path)
    await backend.startup()
    try:
        yield backend
    finally:
        await backend.shutdown()
