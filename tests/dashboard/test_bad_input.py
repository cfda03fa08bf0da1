"""Bad query parameters and options: a clear 400 (or a clear exception) that says what is
wrong, never a page that silently ignores a typo."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from jobify.dashboard import create_app
from jobify.dashboard._params import parse_form
from jobify.inspection import Inspector

from .conftest import Store


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/jobs", {"page": "x"}, "page must be a whole number, got 'x'"),
        ("/jobs", {"page": "0"}, "page must be between 1 and 1,000,000, got 0"),
        ("/jobs", {"page": "-3"}, "page must be between 1 and 1,000,000, got -3"),
        ("/jobs", {"page": "1.5"}, "page must be a whole number"),
        ("/jobs", {"per_page": "501"}, "per_page must be between 1 and 500, got 501"),
        ("/jobs", {"status": "running"}, "status must be one of scheduled, paused"),
        ("/jobs", {"stauts": "paused"}, "unknown query parameter 'stauts'; this page takes: "),
        ("/jobs", {"due_after": "tomorrow"}, "due_after must be an ISO 8601 time"),
        ("/jobs", {"task": "x" * 1001}, "task is longer than 1000 characters"),
        ("/", {"hours": "0"}, "hours must be between 1 and 168, got 0"),
        ("/", {"hours": "999"}, "hours must be between 1 and 168"),
        ("/crons", {"hours": "soon"}, "hours must be a whole number"),
        ("/runs", {"failed": "maybe"}, "failed must be 1 or 0, got 'maybe'"),
        ("/failures", {"failed": "1"}, "unknown query parameter 'failed'"),
        ("/jobs/daily-digest", {"status": "paused"}, "unknown query parameter 'status'"),
    ],
)
def test_bad_query_parameters(
    client: TestClient, path: str, params: dict[str, str], message: str
) -> None:
    page = client.get(path, params=params)
    assert page.status_code == 400
    assert 'id="error-message"' in page.text
    api_path = "/api/overview" if path == "/" else "/api" + path
    api = client.get(api_path, params=params)
    assert api.status_code == 400
    assert api.json() == {"error": api.json()["error"], "status": 400}
    assert message in api.json()["error"]


def test_a_repeated_parameter_is_refused(client: TestClient) -> None:
    api = client.get("/api/jobs?page=1&page=2")
    assert api.status_code == 400
    assert api.json()["error"] == "query parameter 'page' is given more than once"


def test_an_unknown_action_is_404(client: TestClient) -> None:
    api = client.post("/api/jobs/email-1/delete")
    assert api.status_code == 404
    assert "unknown action 'delete'" in api.json()["error"]
    page = client.post("/jobs/email-1/delete", data={"csrf": "x"})
    assert page.status_code == 404


def test_get_on_an_action_url_is_not_an_action(client: TestClient, store: Store) -> None:
    # GET never changes anything: /jobs/ID/pause reads as the job "ID/pause" (none here).
    assert client.get(f"/jobs/{store.once_id}/pause").status_code == 404
    assert client.get(f"/api/jobs/{store.once_id}").json()["status"] == "scheduled"
    assert client.post("/api/jobs").status_code == 405


def test_a_missing_store_is_a_clear_503(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path}/absent.db")
    with TestClient(app) as client:
        page = client.get("/jobs")
        assert page.status_code == 503
        assert "absent.db" in page.text and "does not exist" in page.text
        api = client.get("/api/overview")
        assert api.status_code == 503 and "does not exist" in api.json()["error"]
    assert not (tmp_path / "absent.db").exists()  # nothing was created


def test_a_file_that_is_not_a_store_is_a_clear_503(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("hello")
    with TestClient(create_app(str(tmp_path / "notes.db"))) as client:
        api = client.get("/api/jobs")
        assert api.status_code == 503
        assert "not" in api.json()["error"] and "notes.db" in api.json()["error"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"storage": "ftp://x"}, ValueError, "unknown storage URL scheme 'ftp'"),
        ({"storage": ""}, ValueError, "empty storage URL"),
        ({"storage": 42}, TypeError, "storage must be a storage URL"),
        ({"auth_token": "short"}, ValueError, "at least 16 printable ASCII characters"),
        ({"auth_token": "x" * 20 + " y"}, ValueError, "must not contain spaces"),
        ({"auth_token": "é" * 20}, ValueError, "printable ASCII"),
        ({"auth_token": 1234}, TypeError, "auth_token must be a str"),
        ({"refresh_seconds": 0.1}, ValueError, "refresh_seconds must be 0 (off) or between"),
        ({"refresh_seconds": "5"}, TypeError, "refresh_seconds must be a number"),
        ({"secret": b"short"}, ValueError, "secret must be at least 16 bytes"),
        ({"allowed_hosts": "localhost"}, TypeError, "not one string"),
        ({"allowed_hosts": []}, ValueError, "allowed_hosts must name at least one host"),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception], message: str) -> None:
    storage = options.pop("storage", "sqlite:///jobs.db")
    with pytest.raises(error) as raised:
        create_app(storage, **options)
    assert message in str(raised.value)


def test_an_inspector_instance_is_refused_with_the_way_to_do_it(store: Store) -> None:
    with pytest.raises(TypeError, match=r"lambda: Inspector.from_url\(url, serializer=...\)"):
        create_app(Inspector.from_url(store.url))  # type: ignore[arg-type]


def test_a_factory_that_returns_something_else_is_a_clear_error(store: Store) -> None:
    factory: Callable[[], Any] = lambda: "sqlite:///jobs.db"  # noqa: E731
    with TestClient(create_app(factory)) as client:
        response = client.get("/api/jobs")
    assert response.status_code == 500
    assert response.text.startswith("internal error of the jobify dashboard")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"a=1", "text/plain", 415, "must be sent as application/x-www-form-urlencoded"),
        (b"a=1", None, 415, "got 'none'"),
        (b"a=1&a=2", "application/x-www-form-urlencoded", 400, "given more than once"),
        (b"a" * 9000, "application/x-www-form-urlencoded", 413, "larger than 8192 bytes"),
        (b"\xff=1", "application/x-www-form-urlencoded", 400, "malformed"),
        (b"no-equals-sign", "application/x-www-form-urlencoded", 400, "malformed"),
    ],
)
def test_bad_forms(body: bytes, content_type: str | None, status: int, message: str) -> None:
    from jobify.dashboard._params import BadRequestError

    with pytest.raises(BadRequestError) as raised:
        parse_form(body, content_type)
    assert raised.value.status_code == status
    assert message in str(raised.value)


def test_forms_are_parsed(client: TestClient) -> None:
    assert parse_form(b"", "application/x-www-form-urlencoded") == {}
    form = parse_form(
        b"csrf=a.b.c&confirmed=1&next=%2Fjobs", "application/x-www-form-urlencoded; charset=x"
    )
    assert form == {"csrf": "a.b.c", "confirmed": "1", "next": "/jobs"}


def test_an_oversized_form_post_is_413(client: TestClient, store: Store) -> None:
    response = client.post(
        f"/jobs/{store.once_id}/pause",
        content=b"csrf=" + b"x" * 10_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_store_is_left_alone_by_reads(client: TestClient, store: Store) -> None:
    before = store.path.stat().st_mtime_ns
    for path in ("/", "/jobs", "/crons", "/failures", "/runs", f"/jobs/{store.cron_id}"):
        client.get(path)
    asyncio.run(asyncio.sleep(0))
    assert store.path.stat().st_mtime_ns == before
