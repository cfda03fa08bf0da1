"""The request toolkit shared by every route: rendering, the session, the CSRF token, the
flash message, and how errors become responses (an HTML page or JSON, one status per kind).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from jobify.dashboard._format import (
    block,
    duration,
    job_path,
    number,
    pretty,
    relative,
    text,
    when,
)
from jobify.dashboard._params import BadRequestError
from jobify.dashboard._security import SESSION_MAX_AGE, Signer
from jobify.dashboard._static import StaticAssets
from jobify.dashboard._store import InspectorHolder
from jobify.exceptions import BaseJobifyError
from jobify.inspection import (
    ActionRefusedError,
    JobNotFoundError,
    OwnerNotAnsweringError,
    safe_text,
    zone_name,
)

__all__ = ["ACTION_LABELS", "ACTION_QUESTIONS", "FRAGMENT_HEADER", "Settings", "Web"]

log = logging.getLogger("jobify.dashboard")

FRAGMENT_HEADER = "x-jobify-fragment"
"""Sent by the page's script when it asks for the live part of a page only."""
SESSION_COOKIE = "jobify_dashboard_session"
FLASH_COOKIE = "jobify_dashboard_flash"
_FLASH_MAX = 600

ACTION_LABELS = {
    "cancel": "Cancel",
    "pause": "Pause",
    "resume": "Resume",
    "run": "Run now",
    "retry": "Retry",
}
ACTION_QUESTIONS = {
    "cancel": "Cancel job {job}? It is removed from the store and never runs again.",
    "pause": "Pause job {job}? It keeps its counters and does not fire until resumed.",
    "resume": "Resume job {job}? A cron applies its misfire policy to the fires it missed.",
    "run": "Run job {job} now? A cron job gets one extra run that does not count against "
    "max_runs and does not move its schedule.",
    "retry": "Retry job {job} now with its stored arguments? A permanently failed cron job "
    "starts its schedule again with its failure counter reset.",
}
"""How each action is offered, and the question asked before it is done."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How one dashboard behaves (see :func:`jobify.dashboard.create_app`)."""

    read_only: bool
    auth_token: str | None
    title: str
    refresh_seconds: float
    allowed_hosts: tuple[str, ...] | None
    tz: tzinfo | None = None
    """The zone times are shown in (None: the app's, as it stored it; else UTC)."""


def _status_of(exc: Exception) -> int:
    if isinstance(exc, BadRequestError):
        return exc.status_code
    if isinstance(exc, JobNotFoundError):
        return 404
    if isinstance(exc, ActionRefusedError):
        return 409
    if isinstance(exc, OwnerNotAnsweringError):
        return 504
    if isinstance(exc, ValueError):
        return 400
    if isinstance(exc, BaseJobifyError):
        # The store is missing, unreadable, of a kind this jobify cannot open, or its
        # driver is not installed: the message says which.
        return 503
    return 500


class Web:
    """Rendering and per-request helpers, shared by the page and action routes."""

    def __init__(
        self,
        settings: Settings,
        holder: InspectorHolder,
        signer: Signer,
        static: StaticAssets,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.signer = signer
        self.static = static
        self.clock = clock
        self.zone: tzinfo = settings.tz or UTC
        """The zone pages show times in (set per request: see ``Pages``)."""
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("jobify.dashboard", "templates"),
            autoescape=True,  # every value is escaped, whatever the template's name
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=lambda value: when(value, self.zone),
            duration=duration,
            number=number,
            pretty=pretty,
            text=text,
            block=block,
            job_path=job_path,
        )

    def now(self) -> datetime:
        """Now, in the zone pages show times in."""
        return datetime.fromtimestamp(self.clock(), self.zone)

    # -- session and forms ------------------------------------------------------------------

    def session(self, request: Request) -> str | None:
        """The request's valid session cookie value, if it has one."""
        if self.settings.auth_token is None:
            return None
        value = request.cookies.get(SESSION_COOKIE)
        if self.signer.verify("session", value, SESSION_MAX_AGE):
            return value
        return None

    def can_act(self, request: Request) -> bool:
        """Whether this request may see and use action buttons."""
        if self.settings.read_only:
            return False
        return self.settings.auth_token is None or self.session(request) is not None

    def csrf_token(self, request: Request) -> str:
        return self.signer.sign("csrf", self.session(request) or "")

    @staticmethod
    def base(request: Request) -> str:
        """Where the dashboard is mounted (``""`` at the root of its server)."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    def href(self, request: Request) -> Callable[..., str]:
        base = self.base(request)

        def href(path: str, **params: Any) -> str:
            query = {k: v for k, v in params.items() if v is not None and v != ""}
            return base + path + ("?" + urlencode(query) if query else "")

        return href

    def cookie_path(self, request: Request) -> str:
        return self.base(request) or "/"

    def set_flash(self, request: Request, response: Response, message: str) -> None:
        """Show ``message`` on the next page (after a redirect)."""
        response.set_cookie(
            FLASH_COOKIE,
            quote(safe_text(message)[:_FLASH_MAX], safe=""),
            max_age=60,
            path=self.cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    # -- responses --------------------------------------------------------------------------

    def context(self, request: Request, section: str, **values: Any) -> dict[str, Any]:
        """What every template gets."""
        can_act = self.can_act(request)
        context = {
            "title": self.settings.title,
            "section": section,
            "href": self.href(request),
            "static": lambda name: self.base(request) + self.static.url(name),
            "read_only": self.settings.read_only,
            "auth": self.settings.auth_token is not None,
            "logged_in": self.session(request) is not None,
            "can_act": can_act,
            "csrf": self.csrf_token(request) if can_act else "",
            "refresh": self.settings.refresh_seconds,
            "flash": None,
            "now": self.now(),
            "zone": zone_name(self.zone),
            "relative": relative,
            "labels": ACTION_LABELS,
            "questions": ACTION_QUESTIONS,
            "path": request.url.path,
        }
        context.update(values)
        return context

    def page(
        self,
        request: Request,
        template: str,
        section: str,
        *,
        live: str | None = None,
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        """A full page, or only its live part (``live`` template) when the page's script
        asks for it."""
        context = self.context(request, section, **values)
        if live is not None and request.headers.get(FRAGMENT_HEADER) == "live":
            html = self.env.get_template(live).render(context)
            return HTMLResponse(html, status_code, headers={"Vary": FRAGMENT_HEADER})
        flash = request.cookies.get(FLASH_COOKIE)
        if flash:
            context["flash"] = unquote(flash)[:_FLASH_MAX]
        html = self.env.get_template(template).render(context)
        response = HTMLResponse(html, status_code, headers={"Vary": FRAGMENT_HEADER})
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path=self.cookie_path(request))
        return response

    def error_page(self, request: Request, status_code: int, message: str) -> HTMLResponse:
        return self.page(
            request,
            "error.html",
            "",
            status_code=status_code,
            status=status_code,
            message=safe_text(message),
        )

    @staticmethod
    def json(data: Mapping[str, Any] | list[Any], status_code: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code)

    @staticmethod
    def json_error(
        status_code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> JSONResponse:
        return JSONResponse(
            {"error": safe_text(message), "status": status_code}, status_code, headers=headers
        )

    def failure(self, request: Request, exc: Exception, *, api: bool) -> Response:
        """The response for an error raised while serving ``request``."""
        status_code = _status_of(exc)
        if status_code == 500:
            raise exc  # a bug: the error middleware logs it and answers 500
        message = str(exc) or type(exc).__name__
        if status_code >= 500:
            log.warning("dashboard: %s %s failed: %s", request.method, request.url.path, exc)
        if api:
            return self.json_error(status_code, message)
        return self.error_page(request, status_code, message)
