"""``jobify.inspection.Inspector`` actions on real SQLite stores: edited directly when no app
runs, asked of the running owner otherwise."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobify import Cron
from jobify._triggerdoc import AT_TRIGGER
from jobify.inspection import (
    ActionRefusedError,
    Inspector,
    JobNotFoundError,
    OwnerNotAnsweringError,
)
from jobify.storage import SQLiteStorage
from jobify.storage.base import CommandChannel, JobRecord, RecordStatus

from .conftest import ONCE_AT, Store, cron_record, save

# -- actions on a stopped store -----------------------------------------------------------


async def stored(store: Store, job_id: str) -> JobRecord | None:
    owner = SQLiteStorage(store.path)
    await owner.startup()
    try:
        return await owner.get(job_id)
    finally:
        await owner.shutdown()


async def test_pause_resume_keep_everything_else(inspector: Inspector, store: Store) -> None:
    before = await stored(store, store.cron_id)
    assert before is not None
    result = await inspector.pause(store.cron_id)
    assert (result.via, result.action, result.job_id) == ("direct", "pause", store.cron_id)
    paused = await stored(store, store.cron_id)
    assert paused is not None
    assert paused.status == RecordStatus.PAUSED
    assert (paused.exec_at, paused.arguments, paused.trigger) == (
        before.exec_at,
        before.arguments,
        before.trigger,
    )
    assert (await inspector.pause(store.cron_id)).via == "none"
    assert (await inspector.resume(store.cron_id)).via == "direct"
    assert await stored(store, store.cron_id) == before
    again = await inspector.resume(store.cron_id)
    assert (again.via, again.message) == (
        "none",
        f"job {store.cron_id!r} is not paused (it is scheduled)",
    )


async def test_cancel_and_unknown_ids(inspector: Inspector, store: Store) -> None:
    assert (await inspector.cancel(store.orphan_id)).via == "direct"
    assert await stored(store, store.orphan_id) is None
    for act in (inspector.cancel, inspector.pause, inspector.resume, inspector.run_now):
        with pytest.raises(JobNotFoundError):
            await act(store.orphan_id)


async def test_run_now(inspector: Inspector, store: Store) -> None:
    before = time.time()
    result = await inspector.run_now(store.once_id)
    assert result.new_job_id is None
    moved = await stored(store, store.once_id)
    assert moved is not None
    assert before <= moved.exec_at <= time.time()
    result = await inspector.run_now(store.cron_id)
    assert result.new_job_id is not None
    extra = await stored(store, result.new_job_id)
    cron = await stored(store, store.cron_id)
    assert extra is not None and cron is not None
    assert (extra.task_name, extra.arguments, extra.trigger) == (
        cron.task_name,
        cron.arguments,
        AT_TRIGGER,
    )
    assert cron.exec_at > time.time()  # the cron's own schedule did not move


async def test_refused_actions(store: Store) -> None:
    await save(
        store.path,
        cron_record("done", Cron("0 9 * * *", max_runs=1), ONCE_AT, runs=1, status="finished"),
        cron_record("broken", Cron("0 9 * * *"), ONCE_AT, status="permanently_failed"),
        JobRecord("future", "send_email", 2e9, b"{}", AT_TRIGGER, "a-status-from-the-future"),
    )
    async with Inspector.from_url(store.url) as inspector:
        with pytest.raises(ActionRefusedError, match="nothing to pause"):
            await inspector.pause("done")
        with pytest.raises(ActionRefusedError, match="cannot be resumed"):
            await inspector.resume("broken")
        with pytest.raises(ActionRefusedError, match="unknown to this jobify"):
            await inspector.pause("future")
        with pytest.raises(ActionRefusedError, match="not registered"):
            await inspector.run_now(store.orphan_id)
        # Cancel always applies, and a failed-for-good cron can still run once more.
        assert (await inspector.cancel("future")).via == "direct"
        assert (await inspector.run_now("broken")).new_job_id is not None


# -- actions through a running owner ----------------------------------------------------------


class Owner:
    """A stand-in for the running app's command handling, on a real owner storage: it
    answers each command with ``answer`` (the core's own handling is tested in the core)."""

    def __init__(self, storage: SQLiteStorage, answer: str) -> None:
        self.storage = storage
        self.answer = answer
        self.seen: list[tuple[str, str]] = []
        self._wake = asyncio.Event()

    async def serve(self) -> None:
        assert isinstance(self.storage, CommandChannel)
        self.storage.watch_commands(self._wake.set)
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for command in await self.storage.take_commands():
                    self.seen.append((command.job_id, command.action))
                    await self.storage.finish_command(command.command_id, self.answer)
        finally:
            self.storage.watch_commands(None)


async def run_owner(store: Store, answer: str) -> tuple[Owner, asyncio.Task[None]]:
    storage = SQLiteStorage(store.path)
    await storage.startup()
    owner = Owner(storage, answer)
    return owner, asyncio.create_task(owner.serve())


async def stop_owner(owner: Owner, task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await owner.storage.shutdown()


async def test_running_owner_is_asked_not_edited(inspector: Inspector, store: Store) -> None:
    owner, task = await run_owner(store, "ok")
    try:
        before = await owner.storage.get(store.cron_id)
        result = await inspector.pause(store.cron_id)
        assert result.via == "owner"
        assert owner.seen == [(store.cron_id, "pause")]
        # The inspector did not touch the record: applying it is the owner's business.
        assert await owner.storage.get(store.cron_id) == before
        assert (await inspector.cancel(store.orphan_id)).via == "owner"
        assert (await inspector.run_now(store.cron_id)).via == "owner"
        assert owner.seen[1:] == [(store.orphan_id, "cancel"), (store.cron_id, "run")]
    finally:
        await stop_owner(owner, task)


async def test_running_owner_refusal(inspector: Inspector, store: Store) -> None:
    owner, task = await run_owner(store, "job is running\x1b[31m right now")
    try:
        with pytest.raises(ActionRefusedError, match="refused to pause") as caught:
            await inspector.pause(store.once_id)
        assert "\x1b" not in str(caught.value)
    finally:
        await stop_owner(owner, task)


async def test_silent_owner_times_out_and_the_command_stays_queued(store: Store) -> None:
    owner = SQLiteStorage(store.path)
    await owner.startup()  # an owner that runs but never reads its commands
    try:
        async with Inspector.from_url(store.url, command_timeout=0.2) as inspector:
            started = time.monotonic()
            with pytest.raises(OwnerNotAnsweringError, match=r"did not answer within 0\.2s"):
                await inspector.pause(store.once_id)
            assert time.monotonic() - started < 2
        (pending,) = await owner.take_commands()
        assert (pending.job_id, pending.action) == (store.once_id, "pause")
    finally:
        await owner.shutdown()
    # The next one to own the store answers it: here an inspector editing directly.
    async with Inspector.from_url(store.url) as inspector:
        assert (await inspector.cancel(store.orphan_id)).via == "direct"
        assert (await inspector.get_job(store.once_id)).job.status == RecordStatus.PAUSED
        assert isinstance(inspector.storage, CommandChannel)
        assert await inspector.storage.command_result(pending.command_id) == "ok"


async def test_owner_that_leaves_without_answering_is_replaced(store: Store) -> None:
    owner = SQLiteStorage(store.path)
    await owner.startup()
    arrived = asyncio.Event()
    owner.watch_commands(arrived.set)
    async with Inspector.from_url(store.url, command_timeout=10) as inspector:
        asking = asyncio.create_task(inspector.pause(store.cron_id))
        await asyncio.wait_for(arrived.wait(), 5)
        assert await owner.take_commands()  # the command has arrived, and stays unanswered
        started = time.monotonic()
        await owner.shutdown()  # the app stops without answering
        result = await asking
        assert time.monotonic() - started < 2  # noticed well before the timeout
        assert result.via == "direct"
        assert (await inspector.get_job(store.cron_id)).job.status == RecordStatus.PAUSED


async def test_concurrent_actions_of_one_inspector(inspector: Inspector, store: Store) -> None:
    results = await asyncio.gather(
        inspector.pause(store.cron_id),
        inspector.cancel(store.orphan_id),
        inspector.pause(store.static_cron_id),
        inspector.run_now(store.once_id),
    )
    assert [r.via for r in results] == ["direct"] * 4
    counts = await inspector.count_jobs()
    assert counts.by_status == {"paused": 2, "scheduled": 1}


async def test_two_inspectors_acting_at_once(store: Store) -> None:
    # Each one may find the other holding the store for its edit and take it for a running
    # app: the commands it sends are answered by whoever owns the store next.
    first = Inspector.from_url(store.url, command_timeout=10)
    second = Inspector.from_url(store.url, command_timeout=10)
    async with first, second:
        results = await asyncio.gather(
            *(first.pause(store.cron_id) for _ in range(3)),
            *(second.pause(store.static_cron_id) for _ in range(3)),
            first.cancel(store.orphan_id),
            second.run_now(store.once_id),
        )
        assert {r.via for r in results} <= {"direct", "owner", "none"}
        counts = await first.count_jobs()
    assert counts.by_status == {"paused": 2, "scheduled": 1}
