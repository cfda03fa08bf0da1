"""The storage contract's inspection mode, on every backend that can be inspected.

An inspector is a second handle on the store of a running owner (``conftest.INSPECTORS``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from jobify.exceptions import StorageError
from jobify.storage import JobRecord, RecordStatus, Storage
from jobify.storage.base import (
    CommandAction,
    CommandChannel,
    HistoryQuery,
    JobQuery,
    RunRecord,
    TaskRecord,
)
from jobify.storage.memory import MemoryStorage

from .conftest import INSPECTORS, Wakes

JOB = JobRecord("job-1", "reports:weekly", 10.0, b"args", b"trigger")
PAUSED = JobRecord("job-2", "mail:send", 20.0, b"args", b"trigger", RecordStatus.PAUSED)
RUN = RunRecord("job-1", "reports:weekly", 1.0, 2.0, 3.0, "failed", 2, "E", "boom", "tb", "w")
TASK = TaskRecord("reports:weekly", "{}", 5.0)


@pytest.fixture(params=sorted(INSPECTORS))
def backend(request: pytest.FixtureRequest) -> str:
    """Only the backends that can be inspected (":memory:" SQLite cannot)."""
    return str(request.param)


def channel(storage: Storage) -> Any:
    assert isinstance(storage, CommandChannel)
    return storage


async def fill(owner: Storage) -> None:
    await owner.save_many([JOB, PAUSED])
    owner.record_run_soon(RUN)
    await owner.save_tasks([TASK])


async def test_an_inspector_reads_what_the_owner_committed(
    storage: Storage, inspector: Storage
) -> None:
    await fill(storage)
    assert sorted(await inspector.load(), key=lambda r: r.job_id) == [JOB, PAUSED]
    assert await inspector.get("job-2") == PAUSED
    assert await inspector.get("nope") is None
    assert await inspector.query_jobs(JobQuery(status=RecordStatus.PAUSED)) == [PAUSED]
    assert await inspector.job_counts() == {
        ("reports:weekly", "scheduled"): 1,
        ("mail:send", "paused"): 1,
    }
    assert await inspector.query_history(HistoryQuery(failed_only=True)) == [RUN]
    assert await inspector.load_tasks() == [TASK]
    # Later commits are seen too.
    await storage.delete("job-1")
    assert await inspector.load() == [PAUSED]


def owner_only_calls(store: Any) -> dict[str, Callable[[], Awaitable[object] | object]]:
    return {
        "save": lambda: store.save(JOB),
        "save_many": lambda: store.save_many([JOB]),
        "delete": lambda: store.delete("job-2"),
        "save_soon": lambda: store.save_soon(JOB),
        "delete_soon": lambda: store.delete_soon("job-2"),
        "record_run_soon": lambda: store.record_run_soon(RUN),
        "prune_history": lambda: store.prune_history(before=math.inf, keep=0),
        "save_tasks": lambda: store.save_tasks([]),
        "flush": lambda: store.flush(),
        "take_commands": lambda: store.take_commands(),
        "finish_command": lambda: store.finish_command(1, "ok"),
        "watch_commands": lambda: store.watch_commands(lambda: None),
    }


@pytest.mark.parametrize("call", sorted(owner_only_calls(None)))
async def test_owner_only_calls_on_an_inspector_raise_and_change_nothing(
    storage: Storage, inspector: Storage, call: str
) -> None:
    await fill(storage)
    with pytest.raises(StorageError, match="inspection"):
        outcome = owner_only_calls(inspector)[call]()
        if asyncio.iscoroutine(outcome):
            await outcome
    await storage.flush()
    assert sorted(await storage.load(), key=lambda r: r.job_id) == [JOB, PAUSED]
    assert await storage.query_history(HistoryQuery()) == [RUN]
    assert await storage.load_tasks() == [TASK]


async def test_owner_running_follows_the_owner(storage: Storage, inspector: Storage) -> None:
    assert await channel(inspector).owner_running() is True
    await storage.shutdown()
    assert await channel(inspector).owner_running() is False
    await storage.startup()  # the inspector holds no lock: an owner can start meanwhile
    assert await channel(inspector).owner_running() is True


async def test_a_command_travels_from_inspector_to_owner_and_back(
    storage: Storage, inspector: Storage
) -> None:
    owner, wakes = channel(storage), Wakes()
    owner.watch_commands(wakes)
    command_id = await channel(inspector).send_command("job-1", CommandAction.CANCEL)
    await wakes.next()
    (taken,) = await owner.take_commands()
    assert (taken.command_id, taken.job_id, taken.action) == (command_id, "job-1", "cancel")
    assert await channel(inspector).command_result(command_id) is None
    await owner.finish_command(command_id, "ok")
    assert await channel(inspector).command_result(command_id) == "ok"
    with pytest.raises(ValueError, match="no command has id"):
        await channel(inspector).command_result(command_id + 1)
    with pytest.raises(ValueError, match="unknown command action"):
        await channel(inspector).send_command("job-1", "explode")


async def test_a_command_sent_while_no_owner_runs_waits_for_the_next_one(
    storage: Storage, inspector_of: Callable[[Storage], Storage]
) -> None:
    await storage.save(JOB)
    await storage.shutdown()
    inspector = inspector_of(storage)
    await inspector.open_inspection()
    try:
        assert await inspector.load() == [JOB]  # no owner is needed to read
        assert await channel(inspector).owner_running() is False
        command_id = await channel(inspector).send_command("job-1", CommandAction.RUN)
    finally:
        await inspector.shutdown()
    await storage.startup()
    wakes = Wakes()
    channel(storage).watch_commands(wakes)
    await wakes.next()  # pending at start: called once right away
    assert [c.command_id for c in await channel(storage).take_commands()] == [command_id]


async def test_inspector_life_cycle(storage: Storage, inspector: Storage) -> None:
    with pytest.raises(StorageError, match="already started"):
        await inspector.open_inspection()
    with pytest.raises(StorageError, match="already started"):
        await inspector.startup()
    await inspector.shutdown()
    await inspector.shutdown()  # idempotent
    with pytest.raises(StorageError, match="shut down"):
        await inspector.load()
    with pytest.raises(StorageError, match="shut down"):
        await channel(inspector).owner_running()
    with pytest.raises(StorageError, match="shut down"):
        await channel(inspector).send_command("job-1", CommandAction.RUN)
    assert await storage.load() == []  # the owner did not notice


async def test_a_store_no_owner_ever_started_is_not_a_jobify_store(
    storage: Storage, inspector_of: Callable[[Storage], Storage], backend: str, tmp_path: Any
) -> None:
    await storage.shutdown()
    if backend == "memory":
        fresh: Storage = MemoryStorage()
    else:
        (tmp_path / "jobs.db").unlink()
        fresh = inspector_of(storage)
    with pytest.raises(StorageError, match="not a jobify store"):
        await fresh.open_inspection()
    with pytest.raises(StorageError, match=r"startup\(\)"):
        await fresh.load()  # still unopened
