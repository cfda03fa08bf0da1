"""Chart geometry (pure): bar heights follow the counts, axes are labelled, the cron timeline
places fires in time and bands the fires it did not compute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobify.dashboard._chart import activity_chart, cron_timeline, median_gap
from jobify.inspection._activity import bucket_runs
from jobify.storage.base import RunRecord

T0 = 1_800_000_000.0


def runs_at(*pairs: tuple[float, str]) -> list[RunRecord]:
    return [RunRecord("j", "t", at - 1, at - 1, at, outcome) for at, outcome in pairs]


def test_activity_bars_stack_failures_on_successes() -> None:
    activity = bucket_runs(
        runs_at((T0 + 1, "success"), (T0 + 2, "success"), (T0 + 3, "failed"), (T0 + 61, "failed")),
        since=T0,
        until=T0 + 180,
        bucket=60,
    )
    chart = activity_chart(activity, width=400, height=200)
    assert chart.peak == 3
    ok, failed_first, failed_second = chart.bars
    assert (ok.kind, failed_first.kind, failed_second.kind) == ("ok", "failed", "failed")
    # Heights are proportional: the scale is 5 (the next round number above 3).
    assert abs(ok.height - 2 / 5 * 170) < 0.01
    assert abs(failed_first.height - 1 / 5 * 170) < 0.01
    assert failed_first.y + failed_first.height == ok.y  # stacked
    assert failed_second.x > ok.x
    assert "3 run(s), 1 failed" in ok.title
    assert [t.label for t in chart.y_ticks] == ["0", "5"]  # 2.5 is not a whole count
    assert chart.x_ticks and all(t.label.count(":") == 1 for t in chart.x_ticks)


def test_an_empty_window_draws_no_bar() -> None:
    chart = activity_chart(bucket_runs([], since=T0, until=T0 + 3600, bucket=60))
    assert chart.bars == () and chart.peak == 0
    assert [t.label for t in chart.y_ticks] == ["0", "1"]


def test_timeline_places_fires_and_bands_the_rest() -> None:
    start = datetime.fromtimestamp(T0, UTC)
    hourly = [start + timedelta(hours=h) for h in range(1, 30)]
    minutely = [start + timedelta(minutes=m) for m in range(1, 61)]
    timeline = cron_timeline(
        [
            ("a", "task · 0 * * * *", "scheduled", hourly, None),
            ("b", "other · * * * * *" + "x" * 50, "paused", minutely, start + timedelta(hours=3)),
        ],
        start,
        24,
        width=1000,
    )
    first, second = timeline.rows
    assert len(first.ticks) == 24  # the fires after the window are left out
    assert first.dense is None
    plot = timeline.plot_right - timeline.plot_left
    assert abs(first.ticks[0].position - (timeline.plot_left + plot / 24)) < 0.01
    assert second.dense is not None
    assert abs(second.dense.x + second.dense.width - (timeline.plot_left + plot / 8)) < 0.01
    assert "about every 1m00s" in second.dense.title
    assert len(second.label) == 36 and second.label.endswith("…")
    assert second.y > first.y and timeline.height > second.y


def test_median_gap() -> None:
    start = datetime.fromtimestamp(T0, UTC)
    assert median_gap([start]) is None
    assert median_gap([start, start + timedelta(seconds=5), start + timedelta(seconds=7)]) == 5
