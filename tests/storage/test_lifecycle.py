"""Backend-independent life-cycle rules that need an unstarted storage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from jobify.exceptions import StorageError
from jobify.storage import JobRecord
from jobify.storage.base import CommandAction, HistoryQuery, JobQuery, RunRecord

from .conftest import BACKENDS, PERSISTENT, SHARED

JOB = JobRecord("a", "t", 1.0, b"", b"")
RUN = RunRecord("a", "t", 1.0, 2.0, 3.0, "success")


def every_call(store: Any) -> dict[str, Callable[[], Awaitable[object] | object]]:
    return {
        "load": lambda: store.load(),
        "get": lambda: store.get("a"),
        "query_jobs": lambda: store.query_jobs(JobQuery()),
        "job_counts": lambda: store.job_counts(),
        "query_history": lambda: store.query_history(HistoryQuery()),
        "load_tasks": lambda: store.load_tasks(),
        "save": lambda: store.save(JOB),
        "save_many": lambda: store.save_many([JOB]),
        "delete": lambda: store.delete("a"),
        "save_soon": lambda: store.save_soon(JOB),
        "delete_soon": lambda: store.delete_soon("a"),
        "record_run_soon": lambda: store.record_run_soon(RUN),
        "prune_history": lambda: store.prune_history(before=0.0, keep=1),
        "save_tasks": lambda: store.save_tasks([]),
        "flush": lambda: store.flush(),
        "owner_running": lambda: store.owner_running(),
        "send_command": lambda: store.send_command("a", CommandAction.RUN),
        "command_result": lambda: store.command_result(1),
        "take_commands": lambda: store.take_commands(),
        "finish_command": lambda: store.finish_command(1, "ok"),
        "watch_commands": lambda: store.watch_commands(lambda: None),
    }


COMMAND_CALLS = {
    "owner_running",
    "send_command",
    "command_result",
    "take_commands",
    "finish_command",
    "watch_commands",
}


def skip_commands_on_shared(backend: str, method: str) -> None:
    if backend in SHARED and method in COMMAND_CALLS:
        pytest.skip(f"{backend} is a shared store: it has no command channel")


async def call(make: Callable[[], Awaitable[object] | object]) -> None:
    outcome = make()
    if asyncio.iscoroutine(outcome):
        await outcome


@pytest.mark.parametrize("method", sorted(every_call(None)))
@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_calls_before_startup_raise_storage_error(
    backend: str, method: str, tmp_path: Path
) -> None:
    skip_commands_on_shared(backend, method)
    storage = BACKENDS[backend](tmp_path)
    with pytest.raises(StorageError, match=r"startup\(\)"):
        await call(every_call(storage)[method])
    await storage.shutdown()  # shutting down an unstarted storage is a no-op


@pytest.mark.parametrize("method", sorted(every_call(None)))
@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_calls_after_shutdown_raise_storage_error(
    backend: str, method: str, tmp_path: Path
) -> None:
    skip_commands_on_shared(backend, method)
    storage = BACKENDS[backend](tmp_path)
    await storage.startup()
    await storage.shutdown()
    with pytest.raises(StorageError, match="shut down"):
        await call(every_call(storage)[method])


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_restart_after_shutdown(backend: str, tmp_path: Path) -> None:
    storage = BACKENDS[backend](tmp_path)
    await storage.startup()
    await storage.save(JOB)
    await storage.shutdown()
    await storage.startup()
    try:
        # Usable again; ":memory:" SQLite starts empty, the others kept the record.
        assert await storage.load() == ([JOB] if backend in PERSISTENT else [])
        await storage.save(JobRecord("b", "t", 2.0, b"", b""))
        assert len(await storage.load()) == (2 if backend in PERSISTENT else 1)
    finally:
        await storage.shutdown()


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_startup_twice_is_an_error(backend: str, tmp_path: Path) -> None:
    storage = BACKENDS[backend](tmp_path)
    await storage.startup()
    try:
        with pytest.raises(StorageError, match="already started"):
            await storage.startup()
        with pytest.raises(StorageError, match="already started"):
            await storage.open_inspection()
    finally:
        await storage.shutdown()
