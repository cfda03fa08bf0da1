"""``create_app`` as a component: mounted in another Starlette app, its store's life cycle
(lifespan or lazy), the public surface, and the files it ships."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import jobify.dashboard
from jobify.dashboard import create_app
from jobify.inspection import Inspector

from .conftest import TOKEN, Store, record


class CountingInspector(Inspector):
    """An inspector that counts how often it is opened and closed."""

    opened = 0
    closed = 0

    async def open(self) -> None:
        await super().open()
        CountingInspector.opened += 1

    async def close(self) -> None:
        if self._storage is not None:
            CountingInspector.closed += 1
        await super().close()


def counting(store: Store) -> type[CountingInspector]:
    CountingInspector.opened = CountingInspector.closed = 0
    return CountingInspector


def test_public_surface() -> None:
    assert set(jobify.dashboard.__all__) == {
        "LOOPBACK_HOSTS",
        "MIN_TOKEN_LENGTH",
        "TOKEN_ENV",
        "create_app",
    }
    assert jobify.dashboard.TOKEN_ENV == "JOBIFY_DASHBOARD_TOKEN"
    from jobify.cli._dashboard import TOKEN_ENV

    assert TOKEN_ENV == jobify.dashboard.TOKEN_ENV  # the command's copy, for --help


def test_templates_and_assets_ship_in_the_package() -> None:
    package = resources.files("jobify.dashboard")
    for name in ("base.html", "jobs.html", "job_live.html", "macros.html", "login.html"):
        assert package.joinpath("templates", name).is_file(), name
    for name in ("dashboard.js", "dashboard.css"):
        assert package.joinpath("static", name).is_file(), name
    script = package.joinpath("static", "dashboard.js").read_text()
    assert "http" not in script.replace("X-Jobify-Fragment", "")  # nothing from elsewhere


def test_the_library_and_the_cli_do_not_load_the_dashboard() -> None:
    code = (
        "import sys, jobify, jobify.inspection, jobify.cli._root\n"
        "loaded = {'jobify.dashboard', 'starlette', 'jinja2', 'uvicorn'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_without_the_extra_the_import_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['starlette'] = None\n"
        "try:\n"
        "    import jobify.dashboard\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'jobify[dashboard]'" in result.stdout, result.stderr


def test_mounted_in_another_app(store: Store) -> None:
    dashboard = create_app(store.url)

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("the host app")

    host = Starlette(routes=[Route("/", home), Mount("/ops/jobs-ui", app=dashboard)])
    with TestClient(host) as client:
        assert client.get("/").text == "the host app"
        page = client.get("/ops/jobs-ui/jobs")
        assert page.status_code == 200
        html = page.text
        assert f'href="/ops/jobs-ui/jobs/{store.cron_id}"' in html
        assert 'href="/ops/jobs-ui/crons"' in html
        (script,) = re.findall(r'<script src="([^"]+)"', html)
        assert script.startswith("/ops/jobs-ui/static/")
        assert client.get(script).status_code == 200
        job = client.get(f"/ops/jobs-ui/jobs/{store.cron_id}").text
        assert f'action="/ops/jobs-ui/jobs/{store.cron_id}/pause"' in job
        token = re.search(r'name="csrf" value="([^"]+)"', job).group(1)  # type: ignore[union-attr]
        done = client.post(
            f"/ops/jobs-ui/jobs/{store.cron_id}/pause",
            data={"csrf": token, "confirmed": "1"},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/ops/jobs-ui/jobs/{store.cron_id}"
        assert "Path=/ops/jobs-ui" in done.headers["set-cookie"]
        api = client.post(f"/ops/jobs-ui/api/jobs/{store.cron_id}/resume")
        assert api.json()["via"] == "direct"
        assert client.get("/ops/jobs-ui/api/jobs").status_code == 200
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"


def test_mounted_login_cookie_and_next(store: Store) -> None:
    host = Starlette(routes=[Mount("/ui", app=create_app(store.url, auth_token=TOKEN))])
    with TestClient(host) as client:
        form = client.get("/ui/login", params={"next": "/ui/jobs"}).text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        response = client.post(
            "/ui/login",
            data={"csrf": token, "token": TOKEN, "next": "/ui/jobs"},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/ui/jobs"
        assert "Path=/ui" in response.headers["set-cookie"]
        # A path outside the dashboard is not a place to send people after logging in.
        response = client.post(
            "/ui/login",
            data={"csrf": token, "token": TOKEN, "next": "/admin"},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/ui/"


def test_its_lifespan_closes_the_store(store: Store) -> None:
    factory = counting(store)
    app = create_app(lambda: factory.from_url(store.url))
    with TestClient(app) as client:
        assert CountingInspector.opened == 0  # opened on first use, not before
        client.get("/api/jobs")
        client.get("/api/jobs")
        assert CountingInspector.opened == 1
    assert CountingInspector.closed == 1


def test_mounted_it_opens_lazily_and_the_host_lifespan_can_close_it(store: Store) -> None:
    factory = counting(store)
    dashboard = create_app(lambda: factory.from_url(store.url))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # What docs/dashboard.md tells: run the mounted dashboard's lifespan in your own.
        async with dashboard.router.lifespan_context(dashboard):
            yield

    host = Starlette(routes=[Mount("/ui", app=dashboard)], lifespan=lifespan)
    with TestClient(host) as client:
        assert client.get("/ui/api/jobs").status_code == 200
        assert CountingInspector.opened == 1
    assert CountingInspector.closed == 1
    # Without it, the mounted dashboard still works: Starlette does not run a mounted app's
    # lifespan, so the store is opened on the first request (and closed with the process).
    bare = Starlette(routes=[Mount("/ui", app=create_app(lambda: factory.from_url(store.url)))])
    with TestClient(bare) as client:
        assert client.get("/ui/api/jobs").status_code == 200
    assert CountingInspector.opened == 2


def test_requests_on_a_new_event_loop_open_the_store_again(store: Store) -> None:
    # A test client used without "with" runs each request on a new event loop.
    factory = counting(store)
    client = TestClient(create_app(lambda: factory.from_url(store.url)))
    assert client.get("/api/jobs").status_code == 200
    assert client.get("/api/jobs").status_code == 200
    assert CountingInspector.opened == 2


def test_a_factory_gives_the_inspector_its_options(store: Store) -> None:
    # With no serializer the arguments are shown as stored.
    app = create_app(lambda: Inspector.from_url(store.url, serializer=None))
    with TestClient(app) as client:
        data = client.get(f"/api/jobs/{store.cron_id}").json()
    assert data["arguments"]["decoded"] is False
    assert "team@example.com" in data["arguments"]["summary"]


def test_refresh_setting_reaches_the_page(store: Store) -> None:
    with TestClient(create_app(store.url, refresh_seconds=0)) as client:
        assert 'data-refresh="0.0"' in client.get("/").text
    with TestClient(create_app(store.url, refresh_seconds=2, title="billing")) as client:
        html = client.get("/").text
        assert 'data-refresh="2.0"' in html and "<title>Overview · jobify</title>" in html
        assert '<a class="brand" href="/">billing</a>' in html
