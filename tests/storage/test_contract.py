"""The storage contract (``jobify.storage.base``), run on every backend of ``conftest.BACKENDS``."""

from __future__ import annotations

import asyncio

import pytest

from jobify.exceptions import StorageError
from jobify.storage import JobRecord, RecordStatus, SQLiteStorage, Storage
from jobify.storage.base import SharedStorage

from .conftest import PERSISTENT


def record(
    job_id: object = "job-1", exec_at: object = 1_700_000_000.25, **changes: object
) -> JobRecord:
    fields: dict[str, object] = {
        "job_id": job_id,
        "task_name": "reports:weekly",
        "exec_at": exec_at,
        "arguments": b'{"args": [1, 2]}',
        "trigger": b'{"at": 1}',
    }
    fields.update(changes)
    return JobRecord(**fields)  # type: ignore[arg-type]


async def test_save_get_load_delete(storage: Storage) -> None:
    first, second = record("a"), record("b", exec_at=5.5)
    await storage.save(first)
    await storage.save(second)
    assert await storage.get("a") == first
    assert sorted(await storage.load(), key=lambda r: r.job_id) == [first, second]
    await storage.delete("a")
    assert await storage.get("a") is None
    assert await storage.load() == [second]


async def test_get_of_unknown_id_is_none_and_delete_of_it_is_fine(storage: Storage) -> None:
    assert await storage.get("nope") is None
    await storage.delete("nope")
    storage.delete_soon("nope")
    await storage.flush()
    assert await storage.load() == []


async def test_replace_keeps_one_row(storage: Storage) -> None:
    await storage.save(record("a", exec_at=1.0))
    replacement = record("a", exec_at=2.0, arguments=b"new", trigger=b"cron")
    await storage.save(replacement)
    assert await storage.load() == [replacement]


async def test_fields_round_trip_exactly(storage: Storage) -> None:
    odd = record(
        "ünïcødé id",
        exec_at=1_234_567_890.123456,
        arguments=bytes(range(256)),
        trigger=b"\x00\x00\xff",
        task_name="analytics.users:track_logins",
    )
    await storage.save(odd)
    assert await storage.get(odd.job_id) == odd
    assert await storage.load() == [odd]


async def test_integer_exec_at_comes_back_as_float(storage: Storage) -> None:
    await storage.save(record("a", exec_at=1_700_000_000))
    loaded = await storage.get("a")
    assert loaded is not None
    assert type(loaded.exec_at) is float
    assert loaded.exec_at == 1_700_000_000.0


@pytest.mark.parametrize("status", RecordStatus.ALL)
async def test_every_status_round_trips(storage: Storage, status: str) -> None:
    kept = record("cron-job", status=status)
    await storage.save(kept)
    loaded = await storage.get("cron-job")
    assert loaded == kept
    assert loaded is not None
    assert loaded.status == status
    assert await storage.load() == [kept]


async def test_save_many(storage: Storage) -> None:
    records = [record(f"id-{i}", exec_at=float(i)) for i in range(50)]
    await storage.save_many(records)
    assert sorted(await storage.load(), key=lambda r: r.exec_at) == records
    await storage.save_many([])
    assert len(await storage.load()) == 50


async def test_save_many_with_repeated_id_keeps_the_last(storage: Storage) -> None:
    await storage.save_many([record("a", exec_at=1.0), record("a", exec_at=2.0)])
    assert await storage.load() == [record("a", exec_at=2.0)]


async def test_soon_writes_are_committed_by_flush(storage: Storage) -> None:
    await storage.save(record("gone"))
    storage.save_soon(record("a"))
    storage.save_soon(record("b"))
    storage.delete_soon("gone")
    await storage.flush()
    assert sorted(r.job_id for r in await storage.load()) == ["a", "b"]


async def test_flush_with_nothing_queued_returns(storage: Storage) -> None:
    await storage.flush()


async def test_save_delete_save_on_one_id_in_one_batch_keeps_the_last(storage: Storage) -> None:
    storage.save_soon(record("a", exec_at=1.0))
    storage.delete_soon("a")
    storage.save_soon(record("a", exec_at=3.0))
    storage.save_soon(record("b"))
    storage.delete_soon("b")
    await storage.flush()
    assert await storage.load() == [record("a", exec_at=3.0)]


async def test_awaited_writes_issued_together_apply_in_order(storage: Storage) -> None:
    await asyncio.gather(
        storage.save(record("a", exec_at=1.0)),
        storage.delete("a"),
        storage.save(record("a", exec_at=2.0)),
        storage.save(record("b")),
        storage.delete("b"),
    )
    assert await storage.load() == [record("a", exec_at=2.0)]


async def test_a_thousand_concurrent_saves_all_land_and_return_after_commit(
    storage: Storage,
) -> None:
    async def save_then_read(i: int) -> JobRecord | None:
        await storage.save(record(f"id-{i}", exec_at=float(i)))
        # get() reads committed state only: the write must be there when save returns.
        return await storage.get(f"id-{i}")

    seen = await asyncio.gather(*(save_then_read(i) for i in range(1000)))
    assert seen == [record(f"id-{i}", exec_at=float(i)) for i in range(1000)]
    assert len(await storage.load()) == 1000

    await asyncio.gather(*(storage.delete(f"id-{i}") for i in range(0, 1000, 2)))
    assert sorted(r.exec_at for r in await storage.load()) == [float(i) for i in range(1, 1000, 2)]


async def test_a_cancelled_save_is_still_committed(storage: Storage) -> None:
    task = asyncio.create_task(storage.save(record("a")))
    await asyncio.sleep(0)  # the write is issued
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await storage.flush()
    assert await storage.get("a") == record("a")


@pytest.mark.parametrize(
    "bad",
    [
        record(arguments="text, not bytes"),
        record(trigger=None),
        record(exec_at="soon"),
        record(job_id=42),
        record(exec_at=True),
    ],
)
async def test_ill_typed_record_is_refused_when_issued(storage: Storage, bad: JobRecord) -> None:
    with pytest.raises(TypeError):
        await storage.save(bad)
    with pytest.raises(TypeError):
        storage.save_soon(bad)
    with pytest.raises(TypeError):
        await storage.save_many([record("fine"), bad])
    await storage.flush()
    assert await storage.load() == []


@pytest.mark.parametrize("bad", [42, None, b"bytes"])
async def test_ill_typed_job_id_is_refused(storage: Storage, bad: object) -> None:
    with pytest.raises(TypeError, match="job_id"):
        await storage.get(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="job_id"):
        await storage.delete(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="job_id"):
        storage.delete_soon(bad)  # type: ignore[arg-type]


async def test_a_write_that_fails_on_its_own_fails_only_its_caller(storage: Storage) -> None:
    # A lone surrogate cannot be encoded by any database driver: a poison write.
    await storage.save(record("stays"))
    good = [record(f"good-{i:02}") for i in range(20)]
    outcomes = await asyncio.gather(
        *(storage.save(r) for r in good[:10]),
        storage.save(record("\ud800 poison")),
        storage.delete("stays"),
        storage.save_many([record("many-1"), record("many-\udfff")]),  # all or none
        *(storage.save(r) for r in good[10:]),
        return_exceptions=True,
    )
    failed = [i for i, outcome in enumerate(outcomes) if outcome is not None]
    assert failed == [10, 12]
    for index in failed:
        # Refused when issued (ValueError) or failed alone at commit (StorageError).
        assert isinstance(outcomes[index], StorageError | ValueError)
    assert "poison" in str(outcomes[10])
    assert sorted(await storage.load(), key=lambda r: r.job_id) == good
    # And the storage goes on working.
    await storage.save(record("after"))
    assert await storage.get("after") == record("after")


async def test_calls_after_shutdown_raise_storage_error(storage: Storage) -> None:
    await storage.save(record("a"))
    await storage.shutdown()
    await storage.shutdown()  # idempotent
    with pytest.raises(StorageError):
        await storage.load()
    with pytest.raises(StorageError):
        await storage.get("a")
    with pytest.raises(StorageError):
        await storage.save(record("b"))
    with pytest.raises(StorageError):
        await storage.save_many([record("b")])
    with pytest.raises(StorageError):
        await storage.delete("a")
    with pytest.raises(StorageError):
        storage.save_soon(record("b"))
    with pytest.raises(StorageError):
        storage.delete_soon("a")
    with pytest.raises(StorageError):
        await storage.flush()


async def test_concurrent_shutdowns_both_return_after_committing_the_queued_write(
    storage: Storage, backend: str
) -> None:
    storage.save_soon(record("a"))
    await asyncio.gather(storage.shutdown(), storage.shutdown())
    if backend in PERSISTENT:
        await storage.startup()  # the same store again: the queued write is there
        assert await storage.load() == [record("a")]
    else:  # nothing outlives a ":memory:" database: its one commit is the proof
        assert isinstance(storage, SQLiteStorage)
        assert storage.commit_count == 1


async def test_only_shared_backends_say_shared(storage: Storage) -> None:
    assert storage.shared is isinstance(storage, SharedStorage)
