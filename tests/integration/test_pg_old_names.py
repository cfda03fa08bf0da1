"""Jobs stored on PostgreSQL under the old default task names (the bare function name) are
still their task's jobs: workers claim and run them, and a declared cron stored under an old
name stays the declaration while it is unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pgtest
from jobify import Jobify

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

NEVER = "0 0 1 1 * 2099"


def build(
    schema: str, ran: list[str], *, old: bool, worker: bool = True
) -> tuple[Jobify, Any, asyncio.Event]:
    app = Jobify(storage=pgtest.storage(schema), worker=worker)
    soon_ran = asyncio.Event()

    async def deliver(to: str) -> str:
        ran.append(to)
        if to == "soon":
            soon_ran.set()
        return to

    async def nightly() -> None:
        pass

    send = app.task(name="deliver")(deliver) if old else app.task(deliver)
    if old:
        app.task(name="nightly", cron=NEVER)(nightly)
    else:
        app.task(cron=NEVER)(nightly)
    return app, send, soon_ran


async def test_old_name_records_are_claimed_and_declarations_kept() -> None:
    async with pgtest.fresh_schema() as schema:
        ran: list[str] = []
        # The old app only schedules (a producer): its jobs wait in the store.
        app, send, _ = build(schema, ran, old=True, worker=False)
        async with app:
            await send.schedule("soon").delay(0.5, job_id="soon")
            await send.schedule("later").delay(3600, job_id="later")
        storage = pgtest.storage(schema)
        await storage.startup()
        try:
            before = await storage.get("nightly")
            assert before is not None and before.task_name == "nightly"
        finally:
            await storage.shutdown()

        app2, send2, soon_ran = build(schema, ran, old=False)
        assert send2.name.endswith(":build.<locals>.deliver")
        async with app2:
            # Stored under the old name "deliver": this worker claims and runs it.
            await asyncio.wait_for(soon_ran.wait(), 10)
            storage = pgtest.storage(schema)
            await storage.startup()
            try:
                later = await storage.get("later")
                assert later is not None and later.task_name == "deliver"
                # The unchanged declaration stays under its old id: not declared twice.
                assert await storage.get("nightly") == before
                new_name = next(n for n in app2.tasks if n.endswith(".nightly"))
                assert await storage.get(new_name) is None
            finally:
                await storage.shutdown()
        assert ran == ["soon"]
