"""Escaping of untrusted text, security headers, the Host check, and the signed tokens."""

from __future__ import annotations

import html as html_lib
import re
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from jobify.dashboard._guard import SECURITY_HEADERS
from jobify.dashboard._security import (
    LOOPBACK_HOSTS,
    Signer,
    bearer_token,
    cross_site_reason,
    host_allowed,
    is_loopback,
)

from .conftest import SCRIPT, TOKEN, ClientFactory, Store

ESCAPED = html_lib.escape(SCRIPT, quote=True).replace("&#x27;", "&#39;")
"""How the pages show :data:`SCRIPT` (the template engine writes ' as &#39;)."""


def no_live_markup(html: str) -> None:
    """No script element but the dashboard's own, no event handler attribute, no raw
    hostile text anywhere."""
    assert SCRIPT not in html
    assert "<script>" not in html
    scripts = re.findall(r"<script\b[^>]*>", html)
    ours = r'<script src="/static/dashboard\.js\?v=\w+" defer>'
    assert all(re.fullmatch(ours, s) for s in scripts)
    assert not re.search(r"<[^>]+\son\w+=", html)


def test_hostile_text_is_escaped_on_every_page(client: TestClient, store: Store) -> None:
    quoted = quote(store.hostile_id, safe="")
    pages = [
        "/",
        "/jobs",
        "/jobs?task=send_email",
        f"/jobs/{quoted}",
        f"/jobs/{store.cron_id}",
        "/failures",
        "/runs",
        "/crons",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        no_live_markup(response.text)
    job = client.get(f"/jobs/{quoted}").text
    assert ESCAPED in job  # shown, as text: arguments, id, history, traceback
    assert job.count(ESCAPED) >= 4
    tracebacks = client.get("/failures").text
    assert f"smtp down {ESCAPED}" in tracebacks


def test_hostile_text_in_errors_and_confirmations(client: TestClient, store: Store) -> None:
    missing = client.get("/jobs/" + quote(SCRIPT, safe=""))
    assert missing.status_code == 404
    no_live_markup(missing.text)
    bad = client.get("/jobs", params={"status": SCRIPT})
    assert bad.status_code == 400
    no_live_markup(bad.text)
    unknown = client.get("/jobs", params={SCRIPT: "1"})
    no_live_markup(unknown.text)
    quoted = quote(store.hostile_id, safe="")
    page = client.get(f"/jobs/{quoted}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    confirm = client.post(f"/jobs/{quoted}/pause", data={"csrf": token})
    assert confirm.status_code == 200
    no_live_markup(confirm.text)
    assert f'action="/jobs/{quoted}/pause"' in confirm.text


def test_hostile_text_in_json_stays_data(client: TestClient, store: Store) -> None:
    quoted = quote(store.hostile_id, safe="")
    response = client.get(f"/api/jobs/{quoted}")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    data = response.json()
    assert data["arguments"]["values"] == {"to": SCRIPT, "subject": SCRIPT}
    assert SCRIPT in data["runs"][0]["traceback"]


def test_control_characters_are_shown_as_escapes(client: TestClient) -> None:
    # A bidirectional override or a terminal escape in a job id would make a page lie.
    response = client.get("/jobs/" + quote("a\u202eb\x1bc", safe=""))
    assert response.status_code == 404
    assert "\u202e" not in response.text and "\x1b" not in response.text
    assert "a\\u202eb\\x1bc" in response.text


def test_security_headers_on_every_response(dashboard: ClientFactory, store: Store) -> None:
    client = dashboard(auth_token=TOKEN)
    responses = [
        client.get("/"),
        client.get("/jobs?page=0"),  # 400
        client.get("/jobs/nope"),  # 404
        client.get("/api/jobs"),
        client.post(f"/api/jobs/{store.cron_id}/pause"),  # 401
        client.get("/login"),
        client.get("/static/dashboard.css"),
        client.get("/nothing-here"),  # Starlette's own 404
    ]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (response.url, name)
        assert "cache-control" in response.headers
    csp = SECURITY_HEADERS["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert responses[0].headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script_or_style(client: TestClient, store: Store) -> None:
    # The policy forbids them: a page that used them would break in the browser.
    for path in ("/", "/jobs", f"/jobs/{store.cron_id}", "/crons", "/failures", "/runs"):
        html = client.get(path).text
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html, path


def test_host_check(dashboard: ClientFactory) -> None:
    client = dashboard(allowed_hosts=LOOPBACK_HOSTS)
    for host in ("127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000"):
        assert client.get("/api", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        refused = client.get("/api", headers={"host": host})
        assert refused.status_code == 400, host
        assert "answers only to 127.0.0.1, localhost, ::1" in refused.text
        assert refused.headers["x-frame-options"] == "DENY"
    open_client = dashboard()
    assert open_client.get("/api", headers={"host": "evil.example"}).status_code == 200


def test_an_unexpected_error_is_a_plain_500_with_the_headers(
    dashboard: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from jobify.inspection import Inspector

    client = dashboard()

    async def broken(self: Inspector) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(Inspector, "count_jobs", broken)
    response = client.get("/")
    assert response.status_code == 500
    assert "secret detail" not in response.text
    assert response.headers["content-security-policy"]
    assert "secret detail" in caplog.text  # logged with its traceback for the operator


# -- units ------------------------------------------------------------------------------------


def test_signer_round_trip_binding_and_expiry() -> None:
    now = [1_000_000.0]
    signer = Signer(b"k" * 32, None, clock=lambda: now[0])
    value = signer.sign("csrf", "session-a")
    assert signer.verify("csrf", value, 60, "session-a")
    assert not signer.verify("csrf", value, 60, "session-b")
    assert not signer.verify("session", value, 60, "session-a")
    assert not Signer(b"j" * 32, None).verify("csrf", value, 60, "session-a")
    assert not Signer(b"k" * 32, "token-token-token").verify("csrf", value, 60, "session-a")
    issued, nonce, mac = value.split(".")
    assert not signer.verify("csrf", f"{int(issued) + 1}.{nonce}.{mac}", 60, "session-a")
    flipped = "1" if mac[-1] == "0" else "0"  # a last character that surely differs
    assert not signer.verify("csrf", f"{issued}.{nonce}.{mac[:-1]}{flipped}", 60, "session-a")
    for broken in (None, "", "a.b", "x.y.z", "1.2.3.4", "9" * 300):
        assert not signer.verify("csrf", broken, 60)
    now[0] += 61
    assert not signer.verify("csrf", value, 60, "session-a")


def test_bearer_token() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


def test_cross_site_reason() -> None:
    assert cross_site_reason("GET", "a:1", "https://evil", "cross-site") is None
    assert cross_site_reason("POST", "a:1", None, None) is None  # a script
    assert cross_site_reason("POST", "a:1", "http://a:1", "same-origin") is None
    assert cross_site_reason("POST", "a:1", "http://a:2", None) is not None
    assert cross_site_reason("POST", "a:1", None, "cross-site") is not None
    assert cross_site_reason("POST", "a:1", "null", None) is not None
    assert cross_site_reason("POST", None, "http://a:1", None) is not None


def test_host_names() -> None:
    assert host_allowed("LocalHost:8000", LOOPBACK_HOSTS)
    assert host_allowed("[::1]:80", LOOPBACK_HOSTS)
    assert host_allowed("::1", LOOPBACK_HOSTS)
    assert not host_allowed("localhost.evil", LOOPBACK_HOSTS)
    assert not host_allowed(None, LOOPBACK_HOSTS)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
