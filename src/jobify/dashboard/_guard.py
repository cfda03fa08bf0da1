"""``Guard``: the outermost layer of the dashboard (plain ASGI).

It refuses requests that name a host the dashboard does not answer to, adds the security
headers to every response (errors included), and turns an unexpected exception into a plain
500 response (logged with its traceback, never shown: tracebacks may hold secrets).
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobify.dashboard._security import host_allowed

__all__ = ["SECURITY_HEADERS", "Guard"]

log = logging.getLogger("jobify.dashboard")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class Guard:
    """Wraps the dashboard's ASGI app; ``allowed_hosts`` None answers every ``Host``."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] | None = None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("cache-control", "no-store")
            await send(message)

        if self.allowed_hosts is not None:
            host = Headers(scope=scope).get("host")
            if not host_allowed(host, self.allowed_hosts):
                response = PlainTextResponse(
                    f"this dashboard answers only to {', '.join(self.allowed_hosts)}: "
                    f"open it as http://{self.allowed_hosts[0]}:PORT/ (a page that reaches it "
                    "under another name is refused, so other sites cannot read it)",
                    400,
                )
                await response(scope, receive, send_secured)
                return
        try:
            await self.app(scope, receive, send_secured)
        except Exception:
            log.exception("dashboard: %s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = PlainTextResponse(
                "internal error of the jobify dashboard (logged by the 'jobify.dashboard' logger)",
                500,
            )
            await response(scope, receive, send_secured)
