"""The ``storage`` fixture: every backend, started, for the one contract suite.

To run the suite on a new backend, add one entry to ``BACKENDS``: a name and a factory that
takes pytest's ``tmp_path`` and returns an unstarted storage. If the backend can be inspected
(``open_inspection``), add to ``INSPECTORS`` how to get a second, unstarted handle on the
same store; if its records outlive ``shutdown()`` + ``startup()``, add it to ``PERSISTENT``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

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

INSPECTORS: dict[str, Callable[[Any, Path], Storage]] = {
    "memory": lambda owner, tmp_path: owner.twin(),
    "sqlite-file": lambda owner, tmp_path: SQLiteStorage(tmp_path / "jobs.db"),
}
"""A second handle on the store of ``owner`` (a storage made by ``BACKENDS``)."""

PERSISTENT = {"memory", "sqlite-file", "postgres"}
SHARED = {"postgres"}
"""Shared stores: no command channel (they are edited directly, and notify their workers)."""
"""Backends whose records are still there after ``shutdown()`` and ``startup()``."""


@pytest.fixture(autouse=True)
async def _drop_postgres_schemas() -> AsyncIterator[None]:
    """Drop the PostgreSQL schemas a test created, after its storages are shut down."""
    yield
    await pgtest.drop_created()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
async def storage(backend: str, tmp_path: Path) -> AsyncIterator[Storage]:
    """A started storage of each backend, shut down after the test."""
    store = BACKENDS[backend](tmp_path)
    await store.startup()
    try:
        yield store
    finally:
        await store.shutdown()


@pytest.fixture
def inspector_of(backend: str, tmp_path: Path) -> Callable[[Storage], Storage]:
    """Makes an unstarted inspector handle on the store of a storage of this backend."""
    if backend not in INSPECTORS:
        pytest.skip(f"{backend} cannot be inspected (tested on its own in its backend's tests)")
    return lambda owner: INSPECTORS[backend](owner, tmp_path)


@pytest.fixture
async def inspector(
    storage: Storage, inspector_of: Callable[[Storage], Storage]
) -> AsyncIterator[Storage]:
    """An inspector opened on the store of the running ``storage``."""
    handle = inspector_of(storage)
    await handle.open_inspection()
    try:
        yield handle
    finally:
        await handle.shutdown()


class Wakes:
    """A ``watch_commands`` callback that counts calls and lets a test await the next one."""

    def __init__(self) -> None:
        self.count = 0
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._event.set()

    async def next(self, timeout: float = 5.0) -> None:
        """Wait for a call not awaited yet."""
        await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
