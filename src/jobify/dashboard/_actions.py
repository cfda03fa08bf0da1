"""The action routes (cancel, pause, resume, run now) and the login form.

Every action goes through :class:`~jobify.inspection.Inspector`, the path the ``jobify``
command takes: a running app applies it through its store's command channel; a stopped store
is edited directly. What each request must carry is described in :mod:`._security`.

An HTML action asks for confirmation: the page's script asks in the browser and sends
``confirmed=1``; without the script the server answers with a confirmation page instead.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from jobify.dashboard._format import job_path
from jobify.dashboard._json import action_json
from jobify.dashboard._params import MAX_FORM_BYTES, BadRequestError, parse_form
from jobify.dashboard._security import (
    FORM_MAX_AGE,
    SESSION_MAX_AGE,
    LoginThrottle,
    bearer_token,
    cross_site_reason,
    tokens_equal,
)
from jobify.dashboard._web import ACTION_LABELS, ACTION_QUESTIONS, SESSION_COOKIE, Web
from jobify.inspection import ActionResult, Inspector

__all__ = ["ACTIONS", "Actions"]

ACTIONS: dict[str, Callable[[Inspector, str], Awaitable[ActionResult]]] = {
    "cancel": Inspector.cancel,
    "pause": Inspector.pause,
    "resume": Inspector.resume,
    "run": Inspector.run_now,
}
"""Action name in the URL -> the inspector's method."""

_READ_ONLY = "this dashboard is read-only: actions are turned off"
_UNKNOWN = "unknown action {action!r}; the actions are cancel, pause, resume and run"


class Actions:
    """The POST routes of the dashboard, and the login form."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.throttle = LoginThrottle(web.clock)

    def routes(self) -> list[Route]:
        return [
            Route("/jobs/{job_id:path}/{action}", self.html_action, methods=["POST"]),
            Route("/api/jobs/{job_id:path}/{action}", self.api_action, methods=["POST"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    # -- API --------------------------------------------------------------------------------

    async def api_action(self, request: Request) -> Response:
        job_id, action = request.path_params["job_id"], request.path_params["action"]
        web = self.web
        if action not in ACTIONS:
            return web.json_error(404, _UNKNOWN.format(action=action))
        if web.settings.read_only:
            return web.json_error(403, _READ_ONLY)
        reason = _cross_site(request)
        if reason is not None:
            return web.json_error(403, f"refused: {reason}")
        expected = web.settings.auth_token
        if expected is not None:
            given = bearer_token(request.headers.get("authorization"))
            if given is None:
                return web.json_error(
                    401,
                    "this dashboard needs its token for actions: send the header "
                    "'Authorization: Bearer TOKEN'",
                    headers={"WWW-Authenticate": 'Bearer realm="jobify"'},
                )
            address = _address(request)
            wait = self.throttle.wait(address)
            if wait:
                return web.json_error(429, _TOO_MANY, headers={"Retry-After": _seconds(wait)})
            if not tokens_equal(given, expected):
                self.throttle.failed(address, "API")
                return web.json_error(403, "wrong token")
            self.throttle.succeeded(address)
        try:
            result = await ACTIONS[action](await web.holder.get(), job_id)
        except Exception as exc:
            return web.failure(request, exc, api=True)
        return web.json(action_json(result))

    # -- HTML -------------------------------------------------------------------------------

    async def html_action(self, request: Request) -> Response:
        job_id, action = request.path_params["job_id"], request.path_params["action"]
        web = self.web
        if action not in ACTIONS:
            return web.error_page(request, 404, _UNKNOWN.format(action=action))
        if web.settings.read_only:
            return web.error_page(request, 403, _READ_ONLY)
        job_href = web.href(request)("/jobs/" + job_path(job_id))
        try:
            form = await self._form(request)
        except BadRequestError as exc:
            return web.failure(request, exc, api=False)
        if web.settings.auth_token is not None and web.session(request) is None:
            return web.page(
                request,
                "login.html",
                "",
                status_code=401,
                next=job_href,
                csrf_login=web.signer.sign("csrf"),
                message="Log in with the dashboard's token to change jobs.",
            )
        if not web.signer.verify(
            "csrf", form.get("csrf"), FORM_MAX_AGE, web.session(request) or ""
        ):
            return web.error_page(
                request,
                403,
                "the form has expired or did not come from this dashboard (CSRF check): "
                "reload the page and try again",
            )
        if form.get("confirmed") != "1":
            return web.page(
                request,
                "confirm.html",
                "jobs",
                job_id=job_id,
                action=action,
                label=ACTION_LABELS[action],
                question=ACTION_QUESTIONS[action].format(job=repr(job_id)),
                job_href=job_href,
                action_href=f"{job_href}/{action}",
            )
        try:
            result = await ACTIONS[action](await web.holder.get(), job_id)
        except Exception as exc:
            return web.failure(request, exc, api=False)
        gone = action == "cancel" and result.via != "none"
        target = web.href(request)("/jobs") if gone else job_href
        response = RedirectResponse(target, 303)
        web.set_flash(request, response, result.message)
        return response

    async def _form(self, request: Request) -> dict[str, str]:
        """The form fields, after refusing a cross-site request or an oversized body."""
        reason = _cross_site(request)
        if reason is not None:
            raise BadRequestError(f"refused: {reason}", 403)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_FORM_BYTES:
                raise BadRequestError(f"the form is larger than {MAX_FORM_BYTES} bytes", 413)
        return parse_form(bytes(body), request.headers.get("content-type"))

    # -- login ------------------------------------------------------------------------------

    def _next(self, request: Request, value: str | None) -> str:
        """Where to go after logging in: a path of this dashboard, else its home."""
        base = self.web.base(request)
        home = base + "/"
        if not value or not value.startswith(home) or value.startswith("//") or "\\" in value:
            return home
        return value

    async def login_form(self, request: Request) -> Response:
        web = self.web
        if web.settings.auth_token is None:
            return web.error_page(
                request, 404, "this dashboard has no token: actions need no login"
            )
        return web.page(
            request,
            "login.html",
            "",
            next=self._next(request, request.query_params.get("next")),
            csrf_login=web.signer.sign("csrf"),
            message=None,
        )

    async def login(self, request: Request) -> Response:
        web = self.web
        expected = web.settings.auth_token
        if expected is None:
            return web.error_page(
                request, 404, "this dashboard has no token: actions need no login"
            )
        try:
            form = await self._form(request)
        except BadRequestError as exc:
            return web.failure(request, exc, api=False)
        target = self._next(request, form.get("next"))
        if not web.signer.verify("csrf", form.get("csrf"), FORM_MAX_AGE):
            return web.error_page(
                request, 403, "the login form has expired (CSRF check): reload it and try again"
            )
        address = _address(request)
        wait = self.throttle.wait(address)
        if wait:
            refused = web.page(
                request,
                "login.html",
                "",
                status_code=429,
                next=target,
                csrf_login=web.signer.sign("csrf"),
                message=f"{_TOO_MANY.capitalize()} (try again in {_seconds(wait)} s).",
            )
            refused.headers["Retry-After"] = _seconds(wait)
            return refused
        if not tokens_equal(form.get("token", ""), expected):
            self.throttle.failed(address, "login form")
            return web.page(
                request,
                "login.html",
                "",
                status_code=403,
                next=target,
                csrf_login=web.signer.sign("csrf"),
                message="Wrong token.",
            )
        self.throttle.succeeded(address)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            SESSION_COOKIE,
            web.signer.sign("session"),
            max_age=SESSION_MAX_AGE,
            path=web.cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        web = self.web
        try:
            form = await self._form(request)
        except BadRequestError as exc:
            return web.failure(request, exc, api=False)
        session = web.session(request)
        if session is not None and not web.signer.verify(
            "csrf", form.get("csrf"), FORM_MAX_AGE, session
        ):
            return web.error_page(request, 403, "the form has expired (CSRF check): reload")
        response = RedirectResponse(web.href(request)("/"), 303)
        response.delete_cookie(SESSION_COOKIE, path=web.cookie_path(request))
        return response


_TOO_MANY = "too many wrong tokens from this address: wait before trying again"


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _seconds(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def _cross_site(request: Request) -> str | None:
    headers = request.headers
    return cross_site_reason(
        request.method, headers.get("host"), headers.get("origin"), headers.get("sec-fetch-site")
    )
