"""The read routes: each page as HTML and as its JSON twin under ``/api/``.

Every route reads its query parameters strictly (an unknown or malformed one is a 400 that
says what is wrong), asks the inspector once (:mod:`._views`), and renders the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

import jobify.dashboard._params as p
from jobify.dashboard._views import (
    LATE_AFTER,
    crons_view,
    job_view,
    jobs_view,
    overview_view,
    runs_view,
)
from jobify.dashboard._web import Web
from jobify.inspection import Inspector
from jobify.storage.base import RecordStatus

__all__ = ["Pages"]

JOBS_PER_PAGE = 50
RUNS_PER_PAGE = 25


Load = Callable[[Inspector, dict[str, Any]], Awaitable[Any]]


class Pages:
    """The GET routes of the dashboard."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        api, html = True, False
        pages: list[tuple[str, Callable[[Request, bool], Awaitable[Response]]]] = [
            ("/", self.overview),
            ("/jobs", self.jobs),
            ("/jobs/{job_id:path}", self.job),
            ("/crons", self.crons),
            ("/failures", self.failures),
            ("/runs", self.runs),
        ]
        routes = [Route("/api", self.api_index, methods=["GET"])]
        for path, handler in pages:
            routes.append(Route(path, _bind(handler, html), methods=["GET"]))
            api_path = "/api/overview" if path == "/" else "/api" + path
            routes.append(Route(api_path, _bind(handler, api), methods=["GET"]))
        return routes

    async def _serve(
        self,
        request: Request,
        api: bool,
        params: Mapping[str, p.Param],
        defaults: Mapping[str, Any],
        load: Load,
        render: Callable[[Any], Response],
    ) -> Response:
        try:
            query = p.parse_query(request.query_params.multi_items(), params, defaults)
            inspector = await self.web.holder.get()
            # One zone for every time on the page: the dashboard's own, else the app's.
            self.web.zone = await inspector.display_zone(self.web.settings.tz)
            view = await load(inspector, query)
        except Exception as exc:
            return self.web.failure(request, exc, api=api)
        if api:
            return self.web.json(view.json())
        return render(view)

    async def api_index(self, request: Request) -> Response:
        base = self.web.base(request)
        routes = {
            "overview": "GET /api/overview?hours=3",
            "jobs": "GET /api/jobs?task=&status=&due_after=&due_before=&page=1&per_page=50",
            "job": "GET /api/jobs/{job_id}?page=1&per_page=25",
            "crons": "GET /api/crons?hours=24",
            "failures": "GET /api/failures?task=&page=1&per_page=25",
            "runs": "GET /api/runs?task=&failed=0&page=1&per_page=25",
            "actions": "POST /api/jobs/{job_id}/cancel|pause|resume|run|retry",
        }
        return self.web.json(
            {
                "base": base,
                "read_only": self.web.settings.read_only,
                "token_required": self.web.settings.auth_token is not None,
                "routes": routes,
            }
        )

    async def overview(self, request: Request, api: bool) -> Response:
        async def load(inspector: Inspector, q: dict[str, Any]) -> Any:
            return await overview_view(inspector, q["hours"], self.web.now())

        def render(view: Any) -> Response:
            return self.web.page(
                request,
                "overview.html",
                "overview",
                live="overview_live.html",
                view=view,
                late_after=LATE_AFTER,
                statuses=RecordStatus.ALL,
            )

        return await self._serve(request, api, {"hours": p.hours}, {"hours": 3}, load, render)

    async def jobs(self, request: Request, api: bool) -> Response:
        params = {
            "task": p.task,
            "status": p.status,
            "due_after": p.when("due_after"),
            "due_before": p.when("due_before"),
            "page": p.page,
            "per_page": p.per_page,
        }
        defaults = {
            "task": None,
            "status": None,
            "due_after": None,
            "due_before": None,
            "page": 1,
            "per_page": JOBS_PER_PAGE,
        }

        async def load(inspector: Inspector, q: dict[str, Any]) -> Any:
            return await jobs_view(inspector, now=self.web.now(), **q)

        def render(view: Any) -> Response:
            return self.web.page(
                request,
                "jobs.html",
                "jobs",
                live="jobs_live.html",
                view=view,
                statuses=RecordStatus.ALL,
            )

        return await self._serve(request, api, params, defaults, load, render)

    async def job(self, request: Request, api: bool) -> Response:
        job_id = request.path_params["job_id"]
        if not job_id:
            return RedirectResponse(self.web.href(request)("/api/jobs" if api else "/jobs"), 307)

        async def load(inspector: Inspector, q: dict[str, Any]) -> Any:
            return await job_view(inspector, job_id, now=self.web.now(), **q)

        def render(view: Any) -> Response:
            return self.web.page(request, "job.html", "jobs", live="job_live.html", view=view)

        params = {"page": p.page, "per_page": p.per_page}
        defaults = {"page": 1, "per_page": RUNS_PER_PAGE}
        return await self._serve(request, api, params, defaults, load, render)

    async def crons(self, request: Request, api: bool) -> Response:
        async def load(inspector: Inspector, q: dict[str, Any]) -> Any:
            return await crons_view(inspector, now=self.web.now(), hours=q["hours"])

        def render(view: Any) -> Response:
            return self.web.page(
                request,
                "crons.html",
                "crons",
                live="crons_live.html",
                view=view,
                window_end=view.now + timedelta(hours=view.hours),
            )

        return await self._serve(request, api, {"hours": p.hours}, {"hours": 24}, load, render)

    async def failures(self, request: Request, api: bool) -> Response:
        return await self._runs(request, api, failures_page=True)

    async def runs(self, request: Request, api: bool) -> Response:
        return await self._runs(request, api, failures_page=False)

    async def _runs(self, request: Request, api: bool, *, failures_page: bool) -> Response:
        params: dict[str, p.Param] = {"task": p.task, "page": p.page, "per_page": p.per_page}
        defaults: dict[str, Any] = {"task": None, "page": 1, "per_page": RUNS_PER_PAGE}
        if not failures_page:
            params["failed"] = p.flag("failed")
            defaults["failed"] = False

        async def load(inspector: Inspector, q: dict[str, Any]) -> Any:
            failed_only = failures_page or q.pop("failed")
            return await runs_view(inspector, now=self.web.now(), failed_only=failed_only, **q)

        section = "failures" if failures_page else "runs"

        def render(view: Any) -> Response:
            return self.web.page(
                request,
                "runs.html",
                section,
                live="runs_live.html",
                view=view,
                page_path="/" + section,
            )

        return await self._serve(request, api, params, defaults, load, render)


def _bind(
    handler: Callable[[Request, bool], Awaitable[Response]], api: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, api)

    return endpoint
