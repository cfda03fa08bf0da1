"""Wrong tokens slow a client down: after a few, each address waits longer and longer (the
clock is injected: nothing sleeps), and every wrong token is logged."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from jobify.dashboard import create_app
from jobify.dashboard._security import FREE_FAILURES, MAX_DELAY, LoginThrottle

from .conftest import HOST, TOKEN, Store
from .test_actions import csrf_of


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _login(client: TestClient, token: str) -> int:
    form = client.get("/login").text
    csrf = csrf_of(form, 'class="login"')
    response = client.post(
        "/login", data={"csrf": csrf, "token": token, "next": "/"}, follow_redirects=False
    )
    return response.status_code


def test_wrong_logins_get_a_growing_wait(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    caplog.set_level(logging.WARNING, "jobify.dashboard")
    app = create_app(store.url, auth_token=TOKEN, clock=clock)
    with TestClient(app, base_url=f"http://{HOST}") as client:
        for _ in range(FREE_FAILURES):
            assert _login(client, "guess") == 403
        assert _login(client, "guess") == 403  # the first one that costs a wait: 1 s
        form = client.get("/login").text
        refused = client.post("/login", data={"csrf": csrf_of(form), "token": TOKEN, "next": "/"})
        assert refused.status_code == 429  # even the right token waits its turn
        assert refused.headers["retry-after"] == "1"
        clock.now += 1.0
        assert _login(client, "guess") == 403  # the next wait doubles: 2 s
        clock.now += 1.0
        assert _login(client, TOKEN) == 429
        clock.now += 1.0
        assert _login(client, TOKEN) == 303  # logged in: the count starts again
        for _ in range(FREE_FAILURES):
            assert _login(client, "guess") == 403
    wrong = [r for r in caplog.records if "wrong token" in r.getMessage()]
    assert len(wrong) == 2 * FREE_FAILURES + 2
    assert "testclient" in wrong[0].getMessage() and "login form" in wrong[0].getMessage()
    assert "refused for 2 s" in wrong[FREE_FAILURES + 1].getMessage()


def test_wrong_api_tokens_are_throttled_too(store: Store) -> None:
    clock = Clock()
    app = create_app(store.url, auth_token=TOKEN, clock=clock)
    url = f"/api/jobs/{store.cron_id}/pause"
    with TestClient(app, base_url=f"http://{HOST}") as client:
        for _ in range(FREE_FAILURES + 1):
            wrong = client.post(url, headers={"Authorization": "Bearer guess"})
            assert wrong.status_code == 403
        early = client.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert early.status_code == 429 and early.headers["retry-after"] == "1"
        clock.now += 1.5
        assert client.post(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_each_address_has_its_own_count_and_the_wait_is_capped() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(FREE_FAILURES + 40):
        throttle.failed("10.0.0.1", "API")
    assert throttle.wait("10.0.0.1") == MAX_DELAY
    assert throttle.wait("10.0.0.2") == 0.0
    clock.now += MAX_DELAY
    assert throttle.wait("10.0.0.1") == 0.0
    throttle.succeeded("10.0.0.1")
    throttle.failed("10.0.0.1", "API")
    assert throttle.wait("10.0.0.1") == 0.0  # a fresh count: the first ones are free
