"""Misfire policies: the pure fire-planning functions, and a blocked event loop."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from jobify import Cron, GracePolicy, Jobify, MisfirePolicy
from jobify._triggers import MISFIRE_TOLERANCE, latest_due_fire, runs_for_misfire
from jobify.crontab import create_crontab

EVERY_MINUTE = create_crontab("* * * * *")
T0 = datetime(2030, 5, 6, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_latest_due_fire_of_nothing_one_and_several() -> None:
    assert latest_due_fire(EVERY_MINUTE, at(3), at(2)) == (0, None)  # not due yet
    assert latest_due_fire(EVERY_MINUTE, at(0), at(0)) == (1, at(0))  # 'now' is inclusive
    assert latest_due_fire(EVERY_MINUTE, at(0), at(0.5)) == (1, at(0))
    assert latest_due_fire(EVERY_MINUTE, at(0), at(5.5)) == (2, at(5))


def test_a_fire_exactly_at_now_after_the_first_is_due() -> None:
    # The second fire falls exactly on 'now': it is due (and is the latest).
    assert latest_due_fire(EVERY_MINUTE, at(0), at(1)) == (2, at(1))
    assert latest_due_fire(EVERY_MINUTE, at(0), at(7)) == (2, at(7))


def test_latest_due_fire_follows_the_expression() -> None:
    hourly = create_crontab("0 * * * *")
    assert latest_due_fire(hourly, at(0), at(60 * 5 + 59)) == (2, at(300))
    sparse = create_crontab("0 9 * * MON")  # weekly
    start = datetime(2030, 1, 7, 9, tzinfo=UTC)  # a Monday
    assert latest_due_fire(sparse, start, start + timedelta(days=20)) == (
        2,
        start + timedelta(days=14),
    )


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("* * * * * * *", "UTC"),
        ("*/7 * * * * * *", "Europe/Berlin"),
        ("30 2 * * *", "Europe/Berlin"),  # a fixed time inside the spring-forward gap
        ("0 */3 * * *", "America/New_York"),
        ("15 10 L * *", "Australia/Lord_Howe"),
    ],
)
def test_latest_due_fire_agrees_with_walking_every_fire(expression: str, zone: str) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    parser = create_crontab(expression)
    first = parser.next_run(now=datetime(2030, 3, 1, tzinfo=tz))
    spans = [timedelta(seconds=3), timedelta(hours=5), timedelta(days=1, seconds=0.4)]
    if "*" not in expression.split()[0]:
        spans.append(timedelta(days=40))  # walked fire by fire below: sparse ones only
    for span in spans:
        now = first + span
        fire, latest, count = first, first, 1
        while (nxt := parser.next_run(now=fire)) <= now:
            fire = latest = nxt
            count += 1
        expected = (1, first) if count == 1 else (2, latest)
        assert latest_due_fire(parser, first, now) == expected


def test_latest_due_fire_is_cheap_after_a_long_downtime() -> None:
    calls = 0
    real = create_crontab("* * * * * * *")

    class Counting:
        def next_run(self, *, now: datetime) -> datetime:
            nonlocal calls
            calls += 1
            return real.next_run(now=now)

    # Three days of every-second fires (259,200 of them) cost a few dozen calls, not one per fire.
    count, latest = latest_due_fire(Counting(), at(0), at(3 * 24 * 60) + timedelta(seconds=0.5))
    assert (count, latest) == (2, at(3 * 24 * 60))
    assert calls < 100


def test_tolerance_boundary_is_on_time() -> None:
    # Exactly at the tolerance is still on time; just past it is missed.
    fire = at(5)
    for policy in (MisfirePolicy.SKIP, MisfirePolicy.GRACE(timedelta(0))):
        assert runs_for_misfire(policy, 1, fire, fire + MISFIRE_TOLERANCE) == 1
        assert (
            runs_for_misfire(policy, 1, fire, fire + MISFIRE_TOLERANCE + timedelta(microseconds=1))
            == 0
        )


def test_grace_zero_with_several_due_fires_runs_an_on_time_latest_one() -> None:
    # Several fires due, the latest within the tolerance: GRACE(0) still runs it once.
    latest = at(5)
    now = latest + timedelta(milliseconds=300)
    assert runs_for_misfire(MisfirePolicy.GRACE(timedelta(0)), 2, latest, now) == 1
    assert (
        runs_for_misfire(MisfirePolicy.GRACE(timedelta(0)), 2, latest, now + MISFIRE_TOLERANCE) == 0
    )


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
