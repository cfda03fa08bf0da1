"""Actions (cancel, pause, resume, run now) through the API and the HTML forms, on a stopped
store (edited directly, as the ``jobify`` command does); read-only mode and the token."""

from __future__ import annotations

import asyncio
import re

from starlette.testclient import TestClient

from jobify._triggerdoc import AT_TRIGGER
from jobify.dashboard import create_app
from jobify.inspection import Inspector
from jobify.storage.base import JobRecord
from jobify.storage.memory import MemoryStorage

from .conftest import TOKEN, ClientFactory, Store, record

FORM = {"content-type": "application/x-www-form-urlencoded"}


def csrf_of(html: str, form: str = "") -> str:
    """The CSRF token of the first form on a page (after the text ``form``, if given)."""
    match = re.search(r'name="csrf" value="([^"]+)"', html[html.index(form) :])
    assert match is not None, "no form with a CSRF token on the page"
    return match.group(1)


def act(client: TestClient, job_id: str, action: str, *, confirmed: bool = True) -> object:
    """Post an action as the job page's form would (with its script: confirmed=1)."""
    token = csrf_of(client.get(f"/jobs/{job_id}").text)
    data = {"csrf": token, "confirmed": "1" if confirmed else ""}
    return client.post(f"/jobs/{job_id}/{action}", data=data, follow_redirects=False)


def test_api_pause_resume_cancel(client: TestClient, store: Store) -> None:
    paused = client.post(f"/api/jobs/{store.cron_id}/pause")
    assert paused.status_code == 200
    assert paused.json() == {
        "job_id": store.cron_id,
        "action": "pause",
        "via": "direct",
        "message": f"job '{store.cron_id}' paused",
        "new_job_id": None,
    }
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "paused"
    again = client.post(f"/api/jobs/{store.cron_id}/pause").json()
    assert again["via"] == "none" and "already paused" in again["message"]
    resumed = client.post(f"/api/jobs/{store.cron_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["via"] == "direct"
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"
    cancelled = client.post(f"/api/jobs/{store.orphan_id}/cancel")
    assert cancelled.status_code == 200
    assert record(store, store.orphan_id) is None
    assert client.get(f"/api/jobs/{store.orphan_id}").status_code == 404


def test_api_run_now(client: TestClient, store: Store) -> None:
    # A cron job keeps its schedule; its extra run is a new one-shot job of the same task.
    before = record(store, store.cron_id)
    response = client.post(f"/api/jobs/{store.cron_id}/run").json()
    assert response["via"] == "direct" and response["new_job_id"]
    extra = record(store, response["new_job_id"])
    assert extra is not None and extra.trigger == AT_TRIGGER
    assert extra.task_name == "send_email" and extra.arguments == before.arguments  # type: ignore[union-attr]
    assert record(store, store.cron_id) == before
    # A one-shot job is moved to now.
    moved = client.post(f"/api/jobs/{store.once_id}/run").json()
    assert moved["new_job_id"] is None and "moved to now" in moved["message"]


def test_api_action_errors(client: TestClient, store: Store) -> None:
    missing = client.post("/api/jobs/no-such-job/pause")
    assert missing.status_code == 404 and "no job with id" in missing.json()["error"]
    refused = client.post(f"/api/jobs/{store.orphan_id}/run")
    assert refused.status_code == 409
    assert "gone_task" in refused.json()["error"] and "not registered" in refused.json()["error"]


def test_html_action_asks_for_confirmation_first(client: TestClient, store: Store) -> None:
    page = act(client, store.cron_id, "pause", confirmed=False)
    assert page.status_code == 200  # type: ignore[attr-defined]
    html = page.text  # type: ignore[attr-defined]
    assert "Pause job &#39;daily-digest&#39;?" in html
    assert 'name="confirmed" value="1"' in html
    assert f'action="/jobs/{store.cron_id}/pause"' in html
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"  # nothing done yet
    # The confirmation page's own form does it.
    done = client.post(
        f"/jobs/{store.cron_id}/pause",
        data={"csrf": csrf_of(html), "confirmed": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "paused"


def test_html_actions_redirect_with_a_message(client: TestClient, store: Store) -> None:
    paused = act(client, store.cron_id, "pause")
    assert paused.status_code == 303  # type: ignore[attr-defined]
    assert paused.headers["location"] == f"/jobs/{store.cron_id}"  # type: ignore[attr-defined]
    page = client.get(f"/jobs/{store.cron_id}")
    assert f"job &#39;{store.cron_id}&#39; paused" in page.text  # the message, once
    assert f'action="/jobs/{store.cron_id}/resume"' in page.text
    assert 'id="flash"' not in client.get(f"/jobs/{store.cron_id}").text
    resumed = act(client, store.cron_id, "resume")
    assert resumed.status_code == 303  # type: ignore[attr-defined]
    ran = act(client, store.cron_id, "run")
    assert ran.status_code == 303  # type: ignore[attr-defined]
    assert "one-shot job" in client.get(f"/jobs/{store.cron_id}").text
    cancelled = act(client, store.once_id, "cancel")
    assert cancelled.headers["location"] == "/jobs"  # type: ignore[attr-defined]
    assert record(store, store.once_id) is None
    assert "cancelled" in client.get("/jobs").text


def test_html_action_errors_are_pages(client: TestClient, store: Store) -> None:
    token = csrf_of(client.get(f"/jobs/{store.cron_id}").text)
    missing = client.post("/jobs/gone/pause", data={"csrf": token, "confirmed": "1"})
    assert missing.status_code == 404 and "no job with id &#39;gone&#39;" in missing.text
    refused = client.post(f"/jobs/{store.orphan_id}/run", data={"csrf": token, "confirmed": "1"})
    assert refused.status_code == 409 and "not registered" in refused.text


def test_csrf_is_required_on_every_form_action(client: TestClient, store: Store) -> None:
    for data in ({}, {"csrf": ""}, {"csrf": "1.2.3"}, {"csrf": "not-a-token"}):
        refused = client.post(f"/jobs/{store.cron_id}/pause", data={**data, "confirmed": "1"})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"


def test_csrf_token_of_another_dashboard_is_refused(dashboard: ClientFactory, store: Store) -> None:
    one, other = dashboard(), dashboard()
    token = csrf_of(one.get(f"/jobs/{store.cron_id}").text)
    refused = other.post(f"/jobs/{store.cron_id}/pause", data={"csrf": token, "confirmed": "1"})
    assert refused.status_code == 403
    # With a shared secret (several processes behind one address) it is accepted.
    a, b = dashboard(secret="s" * 32), dashboard(secret="s" * 32)
    token = csrf_of(a.get(f"/jobs/{store.cron_id}").text)
    accepted = b.post(
        f"/jobs/{store.cron_id}/pause",
        data={"csrf": token, "confirmed": "1"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303


def test_cross_site_posts_are_refused(client: TestClient, store: Store) -> None:
    token = csrf_of(client.get(f"/jobs/{store.cron_id}").text)
    for headers in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ):
        page = client.post(
            f"/jobs/{store.cron_id}/pause",
            data={"csrf": token, "confirmed": "1"},
            headers=headers,
        )
        assert page.status_code == 403 and "refused" in page.text, headers
        api = client.post(f"/api/jobs/{store.cron_id}/pause", headers=headers)
        assert api.status_code == 403 and api.json()["error"].startswith("refused"), headers
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"
    # The browser's own same-origin posts pass.
    same = client.post(
        f"/api/jobs/{store.cron_id}/pause",
        headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 200


def test_read_only_hides_and_refuses_actions(dashboard: ClientFactory, store: Store) -> None:
    client = dashboard(read_only=True)
    page = client.get(f"/jobs/{store.cron_id}").text
    assert "data-confirm" not in page and 'name="csrf"' not in page
    assert "read-only" in page
    api = client.post(f"/api/jobs/{store.cron_id}/pause")
    assert api.status_code == 403 and "read-only" in api.json()["error"]
    html = client.post(f"/jobs/{store.cron_id}/pause", data={"csrf": "x", "confirmed": "1"})
    assert html.status_code == 403 and "read-only" in html.text
    assert client.get("/api").json()["read_only"] is True
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"


def test_token_required_for_api_actions(dashboard: ClientFactory, store: Store) -> None:
    client = dashboard(auth_token=TOKEN)
    missing = client.post(f"/api/jobs/{store.cron_id}/pause")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="jobify"'
    wrong = client.post(
        f"/api/jobs/{store.cron_id}/pause", headers={"authorization": "Bearer wrong-token"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"] == "wrong token"
    basic = client.post(
        f"/api/jobs/{store.cron_id}/pause", headers={"authorization": f"Basic {TOKEN}"}
    )
    assert basic.status_code == 401
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"
    right = client.post(
        f"/api/jobs/{store.cron_id}/pause", headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert right.status_code == 200
    assert client.get("/api/jobs").status_code == 200  # reads stay open
    assert client.get("/api").json()["token_required"] is True


def test_token_required_for_html_actions(dashboard: ClientFactory, store: Store) -> None:
    client = dashboard(auth_token=TOKEN)
    page = client.get(f"/jobs/{store.cron_id}").text
    assert "data-confirm" not in page  # no buttons before logging in
    assert 'id="login-link"' in page
    refused = client.post(f"/jobs/{store.cron_id}/pause", data={"csrf": "x", "confirmed": "1"})
    assert refused.status_code == 401 and 'name="token"' in refused.text
    # Log in: wrong token, then the right one.
    form = client.get("/login", params={"next": f"/jobs/{store.cron_id}"}).text
    wrong = client.post(
        "/login",
        data={"csrf": csrf_of(form), "token": "nope", "next": f"/jobs/{store.cron_id}"},
    )
    assert wrong.status_code == 403 and "Wrong token." in wrong.text
    assert "jobify_dashboard_session" not in client.cookies
    logged = client.post(
        "/login",
        data={"csrf": csrf_of(form), "token": TOKEN, "next": f"/jobs/{store.cron_id}"},
        follow_redirects=False,
    )
    assert logged.status_code == 303 and logged.headers["location"] == f"/jobs/{store.cron_id}"
    cookie = logged.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    done = act(client, store.cron_id, "pause")
    assert done.status_code == 303  # type: ignore[attr-defined]
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "paused"
    # The API does not take the cookie: scripts send the token.
    assert client.post(f"/api/jobs/{store.cron_id}/resume").status_code == 401
    # A CSRF token made before logging in is not valid for the session.
    stale = client.post(
        f"/jobs/{store.cron_id}/resume", data={"csrf": csrf_of(form), "confirmed": "1"}
    )
    assert stale.status_code == 403
    # Log out: the buttons are gone again.
    page = client.get(f"/jobs/{store.cron_id}").text
    out = client.post("/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert out.status_code == 303
    assert "data-confirm" not in client.get(f"/jobs/{store.cron_id}").text


def test_a_session_of_another_token_is_refused(dashboard: ClientFactory, store: Store) -> None:
    first = dashboard(auth_token=TOKEN, secret="s" * 32)
    form = first.get("/login").text
    first.post("/login", data={"csrf": csrf_of(form), "token": TOKEN, "next": "/"})
    cookie = first.cookies.get("jobify_dashboard_session")
    assert cookie
    rotated = dashboard(auth_token=TOKEN + "-rotated", secret="s" * 32)
    rotated.cookies.set("jobify_dashboard_session", cookie)
    assert "data-confirm" not in rotated.get(f"/jobs/{store.cron_id}").text
    forged = dashboard(auth_token=TOKEN, secret="s" * 32)
    forged.cookies.set("jobify_dashboard_session", cookie[:-2] + "00")
    assert "data-confirm" not in forged.get(f"/jobs/{store.cron_id}").text


def test_login_sends_only_to_pages_of_the_dashboard(dashboard: ClientFactory) -> None:
    client = dashboard(auth_token=TOKEN)
    for target, expected in (
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        ("/jobs?task=x", "/jobs?task=x"),
    ):
        form = client.get("/login").text
        response = client.post(
            "/login",
            data={"csrf": csrf_of(form, 'class="login"'), "token": TOKEN, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == expected, target


def test_login_without_a_token_is_404(client: TestClient) -> None:
    assert client.get("/login").status_code == 404
    assert client.post("/login", data={"token": "x"}).status_code == 404


def test_login_needs_its_csrf_token(dashboard: ClientFactory) -> None:
    client = dashboard(auth_token=TOKEN)
    response = client.post("/login", data={"token": TOKEN, "next": "/"})
    assert response.status_code == 403
    assert "jobify_dashboard_session" not in client.cookies


def test_an_owner_that_does_not_answer_is_a_504(store: Store) -> None:
    # An app owns the store (a memory store here, owned by a handle that never reads its
    # commands): the action is not done behind its back; the dashboard says it waited.
    owner = MemoryStorage()
    asyncio.run(owner.startup())
    asyncio.run(owner.save(JobRecord("j1", "task", 2e9, b"{}", AT_TRIGGER)))
    app = create_app(lambda: Inspector(owner.twin, command_timeout=0.05))
    with TestClient(app) as client:
        api = client.post("/api/jobs/j1/pause")
        assert api.status_code == 504
        assert "did not answer within 0.05s" in api.json()["error"]
        assert client.get("/api/overview").json()["owner_running"] is True
    assert asyncio.run(owner.get("j1")) == JobRecord("j1", "task", 2e9, b"{}", AT_TRIGGER)
