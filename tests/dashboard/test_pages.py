"""Every read route of the dashboard, as HTML and as its JSON twin, on a real SQLite store."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.testclient import TestClient

from .conftest import BULK, SCRIPT, ClientFactory, Store


def rows(html: str) -> list[str]:
    """The job ids of a jobs table, in page order."""
    return re.findall(r'<tr class="job" data-job-id="([^"]*)"', html)


def test_overview_page(client: TestClient, store: Store) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    total = BULK + 6  # bulk + once, cron, declared cron, hostile, paused, orphan
    assert f'id="count-total">{total}<' in html
    assert 'id="count-paused">1<' in html
    assert 'id="owner-running">stopped<' in html
    assert 'id="activity-runs">3<' in html  # the three runs recorded a minute or two ago
    assert 'id="activity-failures" class="bad">2<' in html  # a failure and a timeout
    assert '<svg class="chart"' in html and 'class="bar failed"' in html
    assert "ConnectionError" in html  # recent failures
    assert 'id="no-late">' in html


def test_overview_json(client: TestClient, store: Store) -> None:
    data = client.get("/api/overview", params={"hours": 1}).json()
    assert data["hours"] == 1
    assert data["counts"]["total"] == BULK + 6
    assert data["counts"]["by_status"]["paused"] == 1
    assert data["counts"]["by_task"]["bulk"] == {"scheduled": BULK}
    assert data["owner_running"] is False
    activity = data["activity"]
    assert activity["runs"] == 3 and activity["failures"] == 2
    assert len(activity["buckets"]) == 60  # one per minute of the hour
    assert sum(b["runs"] for b in activity["buckets"]) == 3
    assert data["late"] == []
    assert [r["job_id"] for r in data["recent_failures"]] == [store.hostile_id, store.cron_id]


def test_overview_lists_late_jobs(dashboard: ClientFactory, store: Store) -> None:
    # Seen from far in the future (the dashboard's clock), every scheduled job is late.
    future = dashboard(clock=lambda: 2_000_000_000.0)
    data = future.get("/api/overview").json()
    html = future.get("/").text
    assert len(data["late"]) == 10 and data["late_more"] is True
    assert data["late"][0]["job_id"] == store.static_cron_id  # the earliest fire first
    assert "Late jobs" in html and "no app is running on this store" in html


def test_jobs_page_lists_by_next_fire_and_pages(client: TestClient, store: Store) -> None:
    first = client.get("/jobs")
    assert first.status_code == 200
    ids = rows(first.text)
    assert len(ids) == 50
    assert ids[:2] == [store.static_cron_id, store.cron_id]  # the crons fire soonest
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    third = client.get("/jobs", params={"page": 3})
    assert rows(third.text) == [f"bulk-{i:03d}" for i in range(94, BULK)]
    assert 'rel="next"' not in third.text and 'rel="prev"' in third.text
    past = client.get("/jobs", params={"page": 9})
    assert past.status_code == 200
    assert rows(past.text) == [] and "past the last page" in past.text


def test_jobs_filters(client: TestClient, store: Store) -> None:
    paused = client.get("/jobs", params={"status": "paused"})
    assert rows(paused.text) == [store.paused_id]
    assert '<option value="paused" selected>' in paused.text
    bulk = client.get("/jobs", params={"task": "bulk", "per_page": 10, "page": 2})
    assert rows(bulk.text) == [f"bulk-{i:03d}" for i in range(10, 20)]
    # Links keep the filters.
    assert "task=bulk" in bulk.text and "per_page=10" in bulk.text
    both = client.get("/jobs", params={"task": "send_email", "status": "scheduled"})
    assert set(rows(both.text)) == {store.once_id, store.cron_id, quote_free(store.hostile_id)}
    # An empty filter (the form's "any") means no filter.
    assert len(rows(client.get("/jobs", params={"task": "", "status": ""}).text)) == 50
    window = client.get(
        "/jobs", params={"due_after": "2031-01-02T04:04:05", "due_before": "2031-01-02T04:04:07"}
    )
    assert rows(window.text) == ["bulk-000", "bulk-001", "bulk-002"]


def quote_free(job_id: str) -> str:
    """A job id as it appears HTML-escaped in an attribute."""
    return job_id.replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")


def test_jobs_json(client: TestClient, store: Store) -> None:
    data = client.get("/api/jobs", params={"task": "send_email", "per_page": 2}).json()
    assert data["page"] == 1 and data["per_page"] == 2 and data["has_next"] is True
    assert data["filters"] == {
        "task": "send_email",
        "status": None,
        "due_after": None,
        "due_before": None,
    }
    cron = data["jobs"][0]
    assert cron["job_id"] == store.cron_id
    assert cron["kind"] == "cron"
    assert cron["cron"]["expression"] == "0 9 * * *" and cron["cron"]["tz"] == "Europe/Berlin"
    assert cron["arguments"]["values"] == {"to": "team@example.com"}
    orphan = client.get("/api/jobs", params={"task": "gone_task"}).json()["jobs"]
    assert [(j["job_id"], j["orphaned"]) for j in orphan] == [(store.orphan_id, True)]


def test_job_page(client: TestClient, dashboard: ClientFactory, store: Store) -> None:
    page = client.get(f"/jobs/{store.cron_id}")
    assert page.status_code == 200
    html = page.text
    assert "0 9 * * *" in html and "Europe/Berlin" in html
    assert 'id="job-runs">0 of at most 10<' in html
    # Times in the app's zone (this store's app runs in UTC), named; or in the one chosen.
    assert "Times in UTC" in html
    berlin = dashboard(tz="Europe/Berlin").get(f"/jobs/{store.cron_id}").text
    # Its 10 next fires, and its next run (text and tooltip).
    assert berlin.count("09:00:00 CET") + berlin.count("09:00:00 CEST") == 12
    assert "team@example.com" in html
    assert "ConnectionError" in html and "smtp down" in html  # its run history
    assert '<pre class="traceback">' in html
    for action in ("pause", "run", "cancel"):
        assert f'action="/jobs/{store.cron_id}/{action}"' in html
    assert f'action="/jobs/{store.cron_id}/resume"' not in html
    paused = client.get(f"/jobs/{store.paused_id}").text
    assert f'action="/jobs/{store.paused_id}/resume"' in paused
    assert f'action="/jobs/{store.paused_id}/pause"' not in paused
    orphan = client.get(f"/jobs/{store.orphan_id}").text
    assert "orphaned" in orphan and f'action="/jobs/{store.orphan_id}/run"' not in orphan


def test_job_json(client: TestClient, store: Store) -> None:
    data = client.get(f"/api/jobs/{store.cron_id}").json()
    assert data["job_id"] == store.cron_id and data["status"] == "scheduled"
    assert len(data["next_fires"]) == 10
    assert data["next_fires"][0].endswith(("+01:00", "+02:00"))  # in the job's zone
    (run,) = data["runs"]
    assert run["outcome"] == "failed" and run["failed"] is True and run["attempts"] == 3
    assert run["traceback"].startswith("Traceback")
    assert data["runs_has_next"] is False
    once = client.get(f"/api/jobs/{store.once_id}").json()
    assert once["kind"] == "once" and once["next_fires"] == []
    assert once["next_run"] == "2031-01-02T03:04:05+00:00"


def test_job_ids_with_slashes_and_specials(client: TestClient, store: Store) -> None:
    quoted = quote(store.hostile_id, safe="")
    assert client.get(f"/jobs/{quoted}").status_code == 200
    data = client.get(f"/api/jobs/{quoted}").json()
    assert data["job_id"] == store.hostile_id
    # Links to it are quoted (no raw '<' or '/' inside the id part of the URL).
    assert f'href="/jobs/{quoted}"' in client.get("/jobs", params={"task": "send_email"}).text


def test_unknown_job_is_404(client: TestClient) -> None:
    page = client.get("/jobs/no-such-job")
    assert page.status_code == 404
    assert "no job with id &#39;no-such-job&#39;" in page.text
    api = client.get("/api/jobs/no-such-job")
    assert api.status_code == 404
    assert api.json()["error"].startswith("no job with id 'no-such-job'")
    assert client.get("/jobs/").status_code == 200  # redirected to the list


def test_job_history_pages(client: TestClient, store: Store) -> None:
    data = client.get(f"/api/jobs/{store.cron_id}", params={"per_page": 1, "page": 2}).json()
    assert data["runs"] == [] and data["runs_page"] == 2


def test_crons_page(client: TestClient, store: Store) -> None:
    page = client.get("/crons")
    assert page.status_code == 200
    html = page.text
    assert '<svg class="timeline"' in html
    assert '<section id="live" data-live data-refresh="30">' in html  # finding crons costs
    assert html.count('class="fire"') >= 60  # the 5-minute cron: every computed fire
    assert 'class="dense"' in html  # ... and a band for the fires beyond them
    assert "0 9 * * *" in html and "*/5 * * * *" in html
    data = client.get("/api/crons", params={"hours": 1}).json()
    assert [c["job_id"] for c in data["crons"]] == [store.static_cron_id, store.cron_id]
    assert len(data["crons"][1]["next_fires"]) == 10  # bounded by max_runs
    assert data["more"] is False and data["hours"] == 1


def test_failures_and_runs_pages(client: TestClient, store: Store) -> None:
    failures = client.get("/failures")
    assert failures.status_code == 200
    assert failures.text.count('<tr class="run failed">') == 2
    data = client.get("/api/failures").json()
    assert [r["outcome"] for r in data["runs"]] == ["timeout", "failed"]
    assert data["failed_only"] is True
    runs = client.get("/api/runs").json()["runs"]
    assert [r["job_id"] for r in runs] == [store.hostile_id, store.cron_id, store.once_id]
    only_failed = client.get("/api/runs", params={"failed": "1", "per_page": 1}).json()
    assert len(only_failed["runs"]) == 1 and only_failed["has_next"] is True
    by_task = client.get("/runs", params={"task": "nothing"})
    assert "No runs recorded" in by_task.text


def test_api_index(client: TestClient) -> None:
    data = client.get("/api").json()
    assert data["read_only"] is False and data["token_required"] is False
    assert "POST /api/jobs/{job_id}/cancel|pause|resume|run|retry" in data["routes"].values()


def test_live_fragment_is_only_the_live_part(client: TestClient, store: Store) -> None:
    for path in ("/", "/jobs", f"/jobs/{store.cron_id}", "/crons", "/failures", "/runs"):
        full = client.get(path)
        part = client.get(path, headers={"X-Jobify-Fragment": "live"})
        assert part.status_code == 200, path
        assert "<html" not in part.text and "<html" in full.text, path
        assert 'id="live"' not in part.text
        assert part.headers["vary"] == "x-jobify-fragment"
    assert SCRIPT not in client.get("/jobs", headers={"X-Jobify-Fragment": "live"}).text


def test_static_assets(client: TestClient) -> None:
    html = client.get("/").text
    (script,) = re.findall(r'<script src="([^"]+)"', html)
    (style,) = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    js = client.get(script)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in js.headers["cache-control"]
    assert "X-Jobify-Fragment" in js.text
    css = client.get(style)
    assert css.headers["content-type"].startswith("text/css")
    stale = client.get("/static/dashboard.js", params={"v": "old"})
    assert stale.headers["cache-control"] == "no-cache"
    assert client.get("/static/nothing.js").status_code == 404


def test_head_requests(client: TestClient) -> None:
    response = client.head("/jobs")
    assert response.status_code == 200 and response.text == ""
