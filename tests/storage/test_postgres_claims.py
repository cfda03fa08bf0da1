"""PostgresStorage as a worker sees it: claims, leases, guarded completions, results and
notifications (two workers in one process; several processes: tests/integration)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

import pgtest
from jobify.exceptions import StorageError
from jobify.storage import PostgresStorage
from jobify.storage.base import HistoryQuery, RecordStatus, ResultRecord, RunRecord, TaskRecord

from .test_postgres import Heard, job


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pgtest.fresh_schema() as name:
        yield name


@pytest.fixture
async def a(schema: str) -> AsyncIterator[PostgresStorage]:
    storage = pgtest.storage(schema)
    await storage.startup()
    try:
        yield storage
    finally:
        await storage.shutdown()


@pytest.fixture
async def b(schema: str) -> AsyncIterator[PostgresStorage]:
    storage = pgtest.storage(schema)
    await storage.startup()
    try:
        yield storage
    finally:
        await storage.shutdown()


async def lease_of(storage: PostgresStorage, job_id: str) -> tuple[str | None, float | None]:
    conn = await pgtest.admin()
    try:
        row = await conn.fetchrow(
            f'SELECT locked_by, locked_until FROM "{storage.schema}".jobs WHERE job_id = $1',
            job_id,
        )
        return (row["locked_by"], row["locked_until"]) if row else (None, None)
    finally:
        await conn.close()


def result(job_id: str, value: bytes = b"42") -> ResultRecord:
    return ResultRecord(job_id, "success", value, None, time.time())


# -- claim -----------------------------------------------------------------------------------


async def test_claim_takes_only_due_scheduled_jobs_of_the_given_tasks(
    a: PostgresStorage,
) -> None:
    now = time.time()
    await a.save_many(
        [
            job("due-1", now - 2),
            job("due-2", now - 1),
            job("future", now + 60),
            job("soon", now + 0.5),
            job("other-task", now - 3, task_name="other"),
            job("paused", now - 3, status=RecordStatus.PAUSED),
            job("finished", now - 3, status=RecordStatus.FINISHED),
            job("failed", now - 3, status=RecordStatus.PERMANENTLY_FAILED),
        ]
    )
    assert [r.job_id for r in await a.claim(["t"], 1)] == ["due-1"]  # earliest first, limit
    assert [r.job_id for r in await a.claim(["t"], 10)] == ["due-2"]
    assert await a.claim(["t"], 10) == []
    assert [r.job_id for r in await a.claim(["t"], 10, horizon=1.0)] == ["soon"]
    assert [r.job_id for r in await a.claim(["t", "other"], 10)] == ["other-task"]
    assert await a.claim(["t"], 0) == []
    assert await a.claim([], 10) == []
    assert a.held == {"due-1", "due-2", "soon", "other-task"}
    locked_by, locked_until = await lease_of(a, "due-1")
    assert locked_by == a.worker_id
    assert locked_until is not None and abs(locked_until - (time.time() + a.lease)) < 5


async def test_concurrent_claims_never_share_a_job(a: PostgresStorage, b: PostgresStorage) -> None:
    await a.save_many([job(f"j{i}") for i in range(300)])
    claims = await asyncio.gather(*(s.claim(["t"], 20) for _ in range(10) for s in (a, b)))
    ids = [r.job_id for claimed in claims for r in claimed]
    assert len(ids) == len(set(ids)) == 300


async def test_an_expired_lease_is_claimable_and_the_old_owner_cannot_complete(
    schema: str, b: PostgresStorage, caplog: pytest.LogCaptureFixture
) -> None:
    stale = pgtest.storage(schema, lease=0.3)
    await stale.startup()
    try:
        await stale.save(job("x"))
        [claimed] = await stale.claim(["t"], 5)
        assert await b.claim(["t"], 5) == []  # held
        # b's clock runs past the stale lease (as if stale had stopped for a second): its
        # heartbeats, however prompt, renew only up to its own clock's now + 0.3 s.
        b.use_clock(lambda: time.time() + 1.0)
        with caplog.at_level(logging.WARNING, logger="jobify.storage"):
            [taken] = await b.claim(["t"], 5)
        assert taken.job_id == "x"
        # The takeover is named: which jobs, from which worker.
        [line] = [r.getMessage() for r in caplog.records if "took over" in r.getMessage()]
        assert f"took over 1 job(s) from worker {stale.worker_id}" in line and "'x'" in line
        assert await stale.complete("x", None, result("x", b"stale")) is False
        assert await stale.complete("x", replace(claimed, exec_at=1.0), None) is False
        assert await b.get_result("x") is None  # a refused completion keeps no result
        assert await b.get("x") == claimed
        kept = result("x")
        assert await b.complete("x", None, kept) is True
        assert await b.get("x") is None
        assert await b.get_result("x") == kept
    finally:
        await stale.shutdown()


async def test_the_heartbeat_keeps_a_live_workers_leases(schema: str, b: PostgresStorage) -> None:
    live = pgtest.storage(schema, lease=0.3)
    await live.startup()
    try:
        await live.save(job("x"))
        await live.claim(["t"], 5)
        await asyncio.sleep(0.7)  # two lease lengths, with the loop free for the heartbeat
        assert await b.claim(["t"], 5) == []
        assert await live.complete("x", None, None) is True
    finally:
        await live.shutdown()


async def test_release_gives_jobs_back_at_once_and_notifies(
    schema: str, a: PostgresStorage
) -> None:
    other = pgtest.storage(schema)
    heard = Heard()
    other.set_listener(heard)
    await other.startup()
    try:
        await a.save_many([job("x", 10.0), job("y", 20.0), job("z", 30.0)])
        await heard.wait("new")
        await a.claim(["t"], 5)
        assert await other.claim(["t"], 5) == []
        await a.release(["y"])
        await heard.wait("new")
        assert heard.of("new")[-1] == 20.0
        assert [r.job_id for r in await other.claim(["t"], 5)] == ["y"]
        await a.release()
        assert a.held == frozenset()
        assert [r.job_id for r in await other.claim(["t"], 5)] == ["x", "z"]
    finally:
        await other.shutdown()


async def test_shutdown_releases_claims(schema: str, b: PostgresStorage) -> None:
    leaving = pgtest.storage(schema)
    await leaving.startup()
    await leaving.save(job("x"))
    await leaving.claim(["t"], 5)
    await leaving.shutdown()
    assert [r.job_id for r in await b.claim(["t"], 5)] == ["x"]


async def test_next_claimable(a: PostgresStorage, b: PostgresStorage) -> None:
    assert await a.next_claimable(["t"]) is None
    now = time.time()
    await a.save_many([job("early", now - 5), job("late", now + 100), job("o", 1.0, task_name="o")])
    assert await a.next_claimable(["t"]) == now - 5
    assert await a.next_claimable(["o"]) == 1.0
    assert await a.next_claimable([]) is None
    await b.claim(["t"], 1)  # b holds "early": for a, it is claimable when b's lease expires
    expiry = await a.next_claimable(["t"])
    assert expiry is not None and now + b.lease - 5 < expiry < now + b.lease + 5
    assert await b.next_claimable(["t"]) == now + 100  # never waits for its own lease


# -- completion --------------------------------------------------------------------------------


async def test_completing_a_cron_run_advances_and_releases_it(
    a: PostgresStorage, b: PostgresStorage
) -> None:
    await a.save(job("cron", 1.0, trigger=b"runs=0"))
    [claimed] = await a.claim(["t"], 1)
    advanced = replace(claimed, exec_at=2.0, trigger=b"runs=1")
    assert await a.complete("cron", advanced, result("cron")) is True
    assert await a.get("cron") == advanced
    assert a.held == frozenset()
    assert await lease_of(a, "cron") == (None, None)
    assert [r.trigger for r in await b.claim(["t"], 1)] == [b"runs=1"]


async def test_completion_keeps_a_pause_set_meanwhile(a: PostgresStorage) -> None:
    await a.save(job("cron", 1.0, trigger=b"runs=0"))
    [claimed] = await a.claim(["t"], 1)
    await a.save(replace(claimed, status=RecordStatus.PAUSED))  # an inspector pauses it
    finished = replace(claimed, exec_at=2.0, trigger=b"runs=1")
    assert await a.complete("cron", finished, None) is True
    assert await a.get("cron") == replace(finished, status=RecordStatus.PAUSED)


async def test_completion_of_a_job_deleted_meanwhile_changes_nothing(a: PostgresStorage) -> None:
    await a.save(job("x"))
    [claimed] = await a.claim(["t"], 1)
    await a.delete("x")
    assert await a.complete("x", replace(claimed, exec_at=5.0), result("x")) is False
    assert await a.get("x") is None
    assert await a.get_result("x") is None


async def test_a_replacement_takes_the_job_from_its_claimer(
    a: PostgresStorage, b: PostgresStorage
) -> None:
    await a.save(job("x", arguments=b"old"))
    await a.claim(["t"], 1)
    await b.save(job("x", arguments=b"new"))  # replace=True from a producer
    assert await a.complete("x", None, result("x")) is False
    assert (await b.get("x")) is not None
    [again] = await b.claim(["t"], 1)
    assert again.arguments == b"new"


async def test_many_completions_share_one_statement(a: PostgresStorage) -> None:
    await a.save_many([job(f"j{i}") for i in range(500)])
    claimed = await a.claim(["t"], 500)
    before = a.commit_count
    results = {r.job_id: result(r.job_id) for r in claimed}
    done = await asyncio.gather(*(a.complete(i, None, kept) for i, kept in results.items()))
    assert all(done) and len(done) == 500
    assert a.commit_count - before <= 2
    assert await a.load() == []
    assert await a.get_result("j499") == results["j499"]


async def test_results_expire_after_their_retention(schema: str) -> None:
    short = pgtest.storage(schema, results_ttl=0.2)
    await short.startup()
    try:
        await short.save(job("x"))
        await short.claim(["t"], 1)
        assert await short.complete("x", None, result("x", b"v"))
        stored = await short.get_result("x")
        assert stored is not None and stored.value == b"v"
        await asyncio.sleep(0.3)
        assert await short.get_result("x") is None
    finally:
        await short.shutdown()


@pytest.mark.parametrize("call", ["complete", "release", "record_run_soon", "save_tasks"])
async def test_worker_calls_refuse_after_shutdown(schema: str, call: str) -> None:
    storage = pgtest.storage(schema)
    await storage.startup()
    await storage.shutdown()
    with pytest.raises(StorageError, match="shut down"):
        if call == "complete":
            await storage.complete("x", None, None)
        elif call == "release":
            await storage.release()
        elif call == "record_run_soon":
            storage.record_run_soon(RunRecord("x", "t", 1.0, 1.0, 1.0, "success"))
        else:
            await storage.save_tasks([TaskRecord("t", "{}", 1.0)])


async def test_complete_refuses_a_record_of_another_job(a: PostgresStorage) -> None:
    with pytest.raises(ValueError, match="does not match"):
        await a.complete("x", job("y"), None)
    with pytest.raises(TypeError):
        await a.complete("x", None, "not a result")  # type: ignore[arg-type]


# -- notifications --------------------------------------------------------------------------


async def test_writes_notify_inside_their_transaction(schema: str, a: PostgresStorage) -> None:
    watcher = pgtest.storage(schema)
    heard = Heard()
    watcher.set_listener(heard)
    await watcher.startup()
    try:
        await a.save_many([job("x", 30.0), job("y", 20.0), job("z", 25.0)])
        await heard.wait("new")
        assert heard.of("new") == [20.0]  # the earliest of the batch
        assert await watcher.get("y") is not None  # never heard before it is readable
        await a.save(job("x", 40.0, arguments=b"replaced"))
        await heard.wait("changed")
        await a.delete("z")
        await heard.wait("changed")
        assert heard.of("changed") == ["x", "z"]
        await a.save(job("p", 1.0, status=RecordStatus.PAUSED))  # nothing claimable
        [claimed] = await a.claim(["t"], 1)
        assert await a.complete(claimed.job_id, None, result(claimed.job_id))
        await heard.wait("finished")
        assert heard.of("finished") == ["y"]
        assert heard.of("new") == [20.0, 40.0]
    finally:
        await watcher.shutdown()


async def test_long_id_lists_are_split_over_notifications(schema: str, a: PostgresStorage) -> None:
    watcher = pgtest.storage(schema)
    heard = Heard()
    watcher.set_listener(heard)
    await watcher.startup()
    try:
        ids = [f"{i:05d}-" + "é" * 100 for i in range(300)]  # ~60 kB of ids in one batch
        await a.save_many([job(i) for i in ids])
        await asyncio.gather(*(a.delete(i) for i in ids))
        deadline = time.monotonic() + 5
        while len(heard.of("changed")) < 300:
            assert time.monotonic() < deadline, len(heard.of("changed"))
            await asyncio.sleep(0.01)
        assert sorted(heard.of("changed")) == ids  # type: ignore[type-var]
    finally:
        await watcher.shutdown()


async def test_run_history_rides_the_group_commit(a: PostgresStorage) -> None:
    runs = [RunRecord(f"j{i}", "t", 1.0, 2.0, 3.0 + i, "success", worker="w") for i in range(5)]
    for run in runs:
        a.record_run_soon(run)
    await a.save(job("x"))
    assert await a.query_history(HistoryQuery()) == runs[::-1]
    assert await a.prune_history(before=5.0, keep=10) == 2
    assert await a.prune_history(before=0.0, keep=1) == 2
    assert await a.query_history(HistoryQuery()) == [runs[-1]]


async def last_queries(storage: PostgresStorage) -> dict[int, tuple[object, str]]:
    """When each connection of ``storage`` last started a statement, and which."""
    conn = await pgtest.admin()
    try:
        rows = await conn.fetch(
            "SELECT pid, query_start, query FROM pg_stat_activity WHERE application_name = $1",
            storage.application_name,
        )
        return {row["pid"]: (row["query_start"], row["query"]) for row in rows}
    finally:
        await conn.close()


async def test_between_events_only_the_heartbeat_queries(schema: str) -> None:
    storage = pgtest.storage(schema, lease=0.3)
    storage.set_listener(Heard())
    await storage.startup()
    try:
        await storage.save(job("x"))
        await asyncio.sleep(0.1)
        idle = await last_queries(storage)
        assert len(idle) >= 2  # a pooled connection and the LISTEN connection
        await asyncio.sleep(0.5)  # idle, no claims: nothing may be sent
        assert await last_queries(storage) == idle

        await storage.claim(["t"], 1)
        holding = await last_queries(storage)
        await asyncio.sleep(0.5)  # holding a claim: heartbeats (every 0.1 s), nothing else
        changed = {
            pid: query
            for pid, (started, query) in (await last_queries(storage)).items()
            if holding.get(pid, (None, ""))[0] != started
        }
        assert changed, "no heartbeat was sent"
        assert all("SET locked_until = $" in query for query in changed.values()), changed
    finally:
        await storage.shutdown()


@pytest.mark.parametrize("bad", ["nul\x00inside", "lone \udcff surrogate"])
async def test_unstorable_ids_fail_their_caller_not_the_batch(a: PostgresStorage, bad: str) -> None:
    fine = a.save(job("fine"))
    with pytest.raises(ValueError, match="cannot be stored in PostgreSQL"):
        await a.save(job(bad))
    with pytest.raises(ValueError, match="cannot be stored in PostgreSQL"):
        a.save_soon(job("x", task_name=bad))
    await fine
    assert [r.job_id for r in await a.load()] == ["fine"]


async def test_untrusted_run_text_is_stored_cleaned(a: PostgresStorage) -> None:
    a.record_run_soon(
        RunRecord("j", "t", 1.0, 2.0, 3.0, "failed", error_message="bad\x00 \udcff", traceback="x")
    )
    await a.flush()
    [run] = await a.query_history(HistoryQuery())
    assert run.error_message == "bad\\x00 \\udcff"
    with pytest.raises(ValueError):
        await a.save_tasks([TaskRecord("t", "{}", 1.0), TaskRecord("t", "{}", 2.0)])
