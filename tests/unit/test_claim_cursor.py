"""The claim cursor's bookkeeping (jobify.storage.postgres_cursor), without a server: what may
have become claimable below it is never lost, whatever order claims and notifications come in."""

from __future__ import annotations

import math

from jobify.storage.base import SharedListener
from jobify.storage.postgres_cursor import MARGIN, ClaimCursor, CursorListener


class Heard(SharedListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_new_job(self, exec_at: float) -> None:
        self.events.append(("new", exec_at))

    def on_job_changed(self, job_id: str) -> None:
        self.events.append(("changed", job_id))

    def on_job_finished(self, job_id: str) -> None:
        self.events.append(("finished", job_id))

    def on_resync(self) -> None:
        self.events.append(("resync", None))


def test_a_claim_moves_the_cursor_to_the_earliest_live_row_it_saw() -> None:
    cursor = ClaimCursor()
    start, watch = cursor.begin(["t"], valid=True)
    assert start == -math.inf
    cursor.end(watch, 100.0, now=200.0)
    assert cursor.position == 100.0
    start, watch = cursor.begin(["t"], valid=True)
    assert start == 100.0
    cursor.end(watch, None, now=200.0)  # nothing live: later rows are due from now on
    assert cursor.position == 200.0


def test_what_is_announced_during_a_claim_wins_over_what_the_claim_saw() -> None:
    cursor = ClaimCursor()
    _, watch = cursor.begin(["t"], valid=True)
    cursor.lower(50.0)  # committed after the claim's snapshot
    cursor.end(watch, 100.0, now=200.0)
    assert cursor.position == 50.0 - MARGIN
    _, first = cursor.begin(["t"], valid=True)
    _, second = cursor.begin(["t"], valid=True)
    cursor.end(first, 60.0, now=200.0)
    cursor.lower(40.0)
    cursor.end(second, 70.0, now=200.0)
    assert cursor.position == 40.0 - MARGIN


def test_other_tasks_invalid_listening_and_resync_start_at_the_beginning() -> None:
    cursor = ClaimCursor()
    _, watch = cursor.begin(["t"], valid=True)
    cursor.end(watch, 100.0, now=200.0)
    assert cursor.start_for(["t"], valid=True) == 100.0
    assert cursor.start_for(["t", "u"], valid=True) == -math.inf
    assert cursor.start_for(["t"], valid=False) == -math.inf
    assert cursor.begin(["t"], valid=False)[0] == -math.inf
    _, watch = cursor.begin(["t"], valid=True)
    cursor.end(watch, 100.0, now=200.0)
    heard = Heard()
    listener = CursorListener(cursor, lambda: heard)
    listener.on_resync()
    assert cursor.position == -math.inf and heard.events == [("resync", None)]


def test_a_failed_claim_keeps_the_cursor_and_notifications_pass_through() -> None:
    cursor = ClaimCursor()
    _, watch = cursor.begin(["t"], valid=True)
    cursor.end(watch, 100.0, now=200.0)
    _, watch = cursor.begin(["t"], valid=True)
    cursor.abandon(watch)
    assert cursor.position == 100.0
    heard = Heard()
    listener = CursorListener(cursor, lambda: heard)
    listener.on_new_job(90.0)
    listener.on_job_changed("a")
    listener.on_job_finished("b")
    assert cursor.position == 90.0 - MARGIN
    assert heard.events == [("new", 90.0), ("changed", "a"), ("finished", "b")]
    CursorListener(cursor, lambda: None).on_new_job(10.0)  # no listener: still lowered
    assert cursor.position == 10.0 - MARGIN
