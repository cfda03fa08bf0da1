"""Backend-independent life-cycle rules that need an unstarted storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobify.exceptions import StorageError
from jobify.storage import JobRecord

from .conftest import BACKENDS


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_calls_before_startup_raise_storage_error(backend: str, tmp_path: Path) -> None:
    storage = BACKENDS[backend](tmp_path)
    with pytest.raises(StorageError, match=r"startup\(\)"):
        await storage.load()
    with pytest.raises(StorageError, match=r"startup\(\)"):
        storage.save_soon(JobRecord("a", "t", 1.0, b"", b""))
    await storage.shutdown()  # shutting down an unstarted storage is a no-op


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_restart_after_shutdown(backend: str, tmp_path: Path) -> None:
    storage = BACKENDS[backend](tmp_path)
    await storage.startup()
    await storage.save(JobRecord("a", "t", 1.0, b"", b""))
    await storage.shutdown()
    await storage.startup()
    try:
        await storage.load()  # usable again (":memory:" starts empty)
    finally:
        await storage.shutdown()
