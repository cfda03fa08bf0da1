"""The storage contract's command channel, owner side, on every embedded backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobify.exceptions import StorageError
from jobify.storage import JobRecord, Storage
from jobify.storage.base import Command, CommandAction, CommandChannel

from .conftest import SHARED, Wakes


@pytest.fixture(autouse=True)
def _embedded_only(backend: str) -> None:
    if backend in SHARED:
        pytest.skip(f"{backend} is a shared store: it is edited directly, it has no commands")


def channel(storage: Storage) -> Any:
    assert isinstance(storage, CommandChannel)
    return storage


async def settle(storage: Storage) -> None:
    """Let any wake-up already queued on the loop run."""
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)


async def test_embedded_backends_are_command_channels(storage: Storage) -> None:
    assert isinstance(storage, CommandChannel)
    assert await channel(storage).owner_running() is True


async def test_commands_are_taken_oldest_first_until_answered(storage: Storage) -> None:
    store = channel(storage)
    assert await store.take_commands() == []
    first = await store.send_command("job-1", CommandAction.PAUSE)
    second = await store.send_command("job-2", CommandAction.RUN)
    assert second > first
    taken = await store.take_commands()
    assert [(c.command_id, c.job_id, c.action) for c in taken] == [
        (first, "job-1", "pause"),
        (second, "job-2", "run"),
    ]
    assert all(type(c) is Command and type(c.created_at) is float for c in taken)
    # Taking does not answer: the same commands are taken again.
    assert await store.take_commands() == taken
    assert await store.command_result(first) is None

    await store.finish_command(first, "ok")
    assert await store.command_result(first) == "ok"
    assert await store.command_result(second) is None
    assert [c.command_id for c in await store.take_commands()] == [second]
    await store.finish_command(second, "no job with id 'job-2'")
    assert await store.command_result(second) == "no job with id 'job-2'"
    assert await store.take_commands() == []


@pytest.mark.parametrize("action", CommandAction.ALL)
async def test_every_action_is_accepted(storage: Storage, action: str) -> None:
    command_id = await channel(storage).send_command("job", action)
    (taken,) = await channel(storage).take_commands()
    assert (taken.command_id, taken.action) == (command_id, action)


async def test_finishing_twice_or_an_unknown_command_is_an_error(storage: Storage) -> None:
    store = channel(storage)
    command_id = await store.send_command("job-1", CommandAction.CANCEL)
    await store.finish_command(command_id, "ok")
    with pytest.raises(ValueError, match=f"no pending command has id {command_id}"):
        await store.finish_command(command_id, "again")
    assert await store.command_result(command_id) == "ok"
    with pytest.raises(ValueError, match="no pending command"):
        await store.finish_command(command_id + 100, "ok")
    with pytest.raises(ValueError, match="no command has id"):
        await store.command_result(command_id + 100)


@pytest.mark.parametrize(
    ("job_id", "action", "error"),
    [
        ("job", "explode", ValueError),
        ("job", None, ValueError),
        ("job", "PAUSE", ValueError),
        (42, "pause", TypeError),
        (None, "pause", TypeError),
        ("\ud800", "pause", ValueError),
    ],
)
async def test_bad_command_is_refused(
    storage: Storage, job_id: Any, action: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await channel(storage).send_command(job_id, action)
    assert await channel(storage).take_commands() == []


@pytest.mark.parametrize(
    ("command_id", "result", "error"),
    [
        ("1", "ok", TypeError),
        (True, "ok", TypeError),
        (1.0, "ok", TypeError),
        (1, "", ValueError),
        (1, None, TypeError),
        (1, b"ok", TypeError),
    ],
)
async def test_bad_answer_is_refused(
    storage: Storage, command_id: Any, result: Any, error: type[Exception]
) -> None:
    await channel(storage).send_command("job", CommandAction.RUN)
    with pytest.raises(error):
        await channel(storage).finish_command(command_id, result)
    assert len(await channel(storage).take_commands()) == 1


@pytest.mark.parametrize("bad", ["1", None, 1.5, False])
async def test_command_result_of_a_bad_id_is_refused(storage: Storage, bad: Any) -> None:
    with pytest.raises(TypeError, match="command_id"):
        await channel(storage).command_result(bad)


async def test_the_watcher_is_called_after_each_command(storage: Storage) -> None:
    store, wakes = channel(storage), Wakes()
    store.watch_commands(wakes)
    await settle(storage)
    assert wakes.count == 0  # nothing pending when watching started
    await store.send_command("job-1", CommandAction.CANCEL)
    await wakes.next()
    await store.send_command("job-2", CommandAction.CANCEL)
    await wakes.next()
    assert len(await store.take_commands()) == 2


async def test_the_watcher_is_called_at_once_when_commands_are_pending(storage: Storage) -> None:
    store, wakes = channel(storage), Wakes()
    await store.send_command("job-1", CommandAction.RESUME)
    store.watch_commands(wakes)
    await wakes.next()
    assert wakes.count == 1


async def test_own_writes_do_not_wake_the_watcher(storage: Storage) -> None:
    store, wakes = channel(storage), Wakes()
    store.watch_commands(wakes)
    await asyncio.gather(*(storage.save(JobRecord(f"j{i}", "t", 1.0, b"", b"")) for i in range(50)))
    await storage.save(JobRecord("last", "t", 1.0, b"", b""))
    await settle(storage)
    assert wakes.count == 0


async def test_watching_stops_with_none_and_can_change_callback(storage: Storage) -> None:
    store, first, second = channel(storage), Wakes(), Wakes()
    store.watch_commands(first)
    store.watch_commands(None)
    command_id = await store.send_command("job-1", CommandAction.PAUSE)
    await settle(storage)
    assert first.count == 0
    store.watch_commands(second)  # pending: called once right away
    await second.next()
    await store.finish_command(command_id, "ok")
    await store.send_command("job-2", CommandAction.PAUSE)
    await second.next()
    assert first.count == 0


async def test_shutdown_stops_watching(storage: Storage) -> None:
    store, wakes = channel(storage), Wakes()
    store.watch_commands(wakes)
    await storage.shutdown()
    with pytest.raises(StorageError):
        store.watch_commands(wakes)
    with pytest.raises(StorageError):
        await store.send_command("job", CommandAction.RUN)
    await settle(storage)
    assert wakes.count == 0
