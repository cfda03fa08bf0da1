"""Misfire policies: the pure fire-planning functions, and a blocked event loop."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from jobify import Cron, GracePolicy, Jobify, MisfirePolicy
from jobify.crontab import create_crontab
from jobify._triggers import MISFIRE_TOLERANCE, due_fires, runs_for_misfire

EVERY_MINUTE = create_crontab("* * * * *")
T0 = datetime(2030, 5, 6, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_due_fires_counts_fires_up_to_now() -> None:
    assert due_fires(EVERY_MINUTE, at(0), at(5.5)) == (6, at(5), at(6))
    assert due_fires(EVERY_MINUTE, at(0), at(0)) == (1, at(0), at(1))  # 'now' is inclusive
    assert due_fires(EVERY_MINUTE, at(3), at(2)) == (0, None, at(3))  # not due yet


def test_due_fires_stops_counting_at_the_limit() -> None:
    count, latest, nxt = due_fires(EVERY_MINUTE, at(0), at(100.5), limit=3)
    assert (count, latest) == (3, at(2))
    assert nxt == at(101)  # the next future fire is still right


def test_due_fires_follows_the_expression() -> None:
    hourly = create_crontab("0 * * * *")
    count, latest, nxt = due_fires(hourly, at(0), at(60 * 5 + 59))
    assert (count, latest, nxt) == (6, at(300), at(360))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MisfirePolicy.ALL, 6),
        (MisfirePolicy.ONCE, 1),
        (MisfirePolicy.SKIP, 0),
        (MisfirePolicy.GRACE(timedelta(minutes=1)), 1),
        (MisfirePolicy.GRACE(timedelta(seconds=10)), 0),
    ],
)
def test_policies_for_missed_fires(policy: MisfirePolicy | GracePolicy, expected: int) -> None:
    # Six fires due, the latest 30 s ago: all of them were missed.
    assert runs_for_misfire(policy, 6, at(5), at(5.5)) == expected


@pytest.mark.parametrize(
    "policy",
    [
        MisfirePolicy.ALL,
        MisfirePolicy.ONCE,
        MisfirePolicy.SKIP,
        MisfirePolicy.GRACE(timedelta(0)),
    ],
)
def test_a_single_fire_within_tolerance_is_on_time(policy: MisfirePolicy | GracePolicy) -> None:
    late = MISFIRE_TOLERANCE - timedelta(milliseconds=1)
    assert runs_for_misfire(policy, 1, at(5), at(5) + late) == 1
    assert runs_for_misfire(policy, 0, None, at(5)) == 0


def test_skip_keeps_an_on_time_latest_fire_but_drops_older_ones() -> None:
    now = at(5) + timedelta(milliseconds=200)
    assert runs_for_misfire(MisfirePolicy.SKIP, 3, at(5), now) == 1
    assert runs_for_misfire(MisfirePolicy.ALL, 3, at(5), now) == 3
    assert runs_for_misfire(MisfirePolicy.ONCE, 3, at(5), now) == 1


def test_a_single_late_fire() -> None:
    now = at(5) + timedelta(seconds=5)
    assert runs_for_misfire(MisfirePolicy.ALL, 1, at(5), now) == 1
    assert runs_for_misfire(MisfirePolicy.ONCE, 1, at(5), now) == 1
    assert runs_for_misfire(MisfirePolicy.SKIP, 1, at(5), now) == 0
    assert runs_for_misfire(MisfirePolicy.GRACE(timedelta(seconds=10)), 1, at(5), now) == 1
    assert runs_for_misfire(MisfirePolicy.GRACE(timedelta(seconds=4)), 1, at(5), now) == 0


def test_grace_policy_validation() -> None:
    policy = MisfirePolicy.GRACE(timedelta(minutes=5))
    assert isinstance(policy, GracePolicy)
    assert policy.grace == timedelta(minutes=5)
    with pytest.raises(TypeError, match="timedelta"):
        MisfirePolicy.GRACE(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        MisfirePolicy.GRACE(timedelta(seconds=-1))
    with pytest.raises(TypeError, match="misfire_policy"):
        Cron("* * * * *", misfire_policy="all")  # type: ignore[arg-type]


async def test_a_blocked_loop_applies_each_policy(app: Jobify) -> None:
    runs: dict[str, int] = {"all": 0, "skip": 0, "once": 0}

    @app.task
    async def tick(policy: str) -> None:
        runs[policy] += 1

    async with app:
        # Fire at two whole seconds, the first at least 0.5 s ahead (scheduling must not race
        # it), then not again for a minute.
        s0 = int(time.time() + 0.5)
        expression = f"{(s0 + 1) % 60},{(s0 + 2) % 60} * * * * * *"
        jobs = {
            name: await tick.schedule(name).cron(
                Cron(expression, misfire_policy=policy), job_id=name
            )
            for name, policy in (
                ("all", MisfirePolicy.ALL),
                ("skip", MisfirePolicy.SKIP),
                ("once", MisfirePolicy.ONCE),
            )
        }
        assert runs == {"all": 0, "skip": 0, "once": 0}
        # Block the loop past both fires, until the later one is more than 1 s late.
        time.sleep(s0 + 3.2 - time.time())  # noqa: ASYNC251 - blocking is the point
        async with asyncio.timeout(10):
            waits = [asyncio.create_task(jobs[n].wait()) for n in ("all", "once")]
            await asyncio.gather(*waits)
            while runs["all"] < 2:
                await jobs["all"].wait()
        await asyncio.sleep(0.05)
        assert runs == {"all": 2, "skip": 0, "once": 1}
        next_fire = datetime.fromtimestamp(s0 + 61, UTC)
        for job in jobs.values():
            assert job.exec_at == next_fire
