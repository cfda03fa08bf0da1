"""``Inspector`` over the in-memory store (the reference backend): a dashboard inside the
app's own process, and the shared-store rule (edited directly, never through commands)."""

from __future__ import annotations

import pytest

from jobify._triggerdoc import AT_TRIGGER
from jobify.inspection import Inspector, OwnerNotAnsweringError
from jobify.storage.base import JobRecord, RecordStatus
from jobify.storage.memory import MemoryStorage


async def owned_store(*records: JobRecord) -> MemoryStorage:
    owner = MemoryStorage()
    await owner.startup()
    await owner.save_many(records)
    return owner


RECORD = JobRecord("j1", "task", 2e9, b'{"x":1}', AT_TRIGGER)


async def test_inspecting_beside_a_running_owner() -> None:
    owner = await owned_store(RECORD)
    try:
        async with Inspector(owner.twin, command_timeout=0.05) as inspector:
            (job,) = await inspector.list_jobs()
            assert job.arguments.values == {"x": 1}
            assert await inspector.owner_running() is True
            # The owner runs but nobody applies commands: the action is not done behind its
            # back, it waits for the owner and says so.
            with pytest.raises(OwnerNotAnsweringError):
                await inspector.pause("j1")
        assert (await owner.get("j1")) == RECORD
        (pending,) = await owner.take_commands()
        assert pending.action == "pause"
    finally:
        await owner.shutdown()


class SharedMemory(MemoryStorage):
    """Stands for a shared store (PostgreSQL) with workers running on it."""

    shared = True

    async def owner_running(self) -> bool:
        return True  # workers run, and yet a shared store is edited directly


async def test_a_shared_store_is_edited_directly() -> None:
    seed = SharedMemory()
    await seed.startup()
    await seed.save(RECORD)
    await seed.shutdown()
    async with Inspector(seed.twin) as inspector:
        assert await inspector.owner_running() is None
        result = await inspector.pause("j1")
        assert result.via == "direct"
        (job,) = await inspector.list_jobs()
        assert job.status == RecordStatus.PAUSED
        run = await inspector.run_now("j1")
        assert "a worker runs it" in run.message
    check = seed.twin()
    await check.startup()
    assert await check.take_commands() == []  # nothing went through the command channel
    await check.shutdown()
