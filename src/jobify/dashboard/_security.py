"""What keeps the dashboard safe: signed session and CSRF tokens, request checks, headers.

The design (documented for users in ``docs/dashboard.md``):

- **Token.** With an auth token set, every action needs it: scripts send it as
  ``Authorization: Bearer TOKEN`` to ``/api/...``; people type it once into the login form,
  which sets a session cookie (``HttpOnly``, ``SameSite=Strict``) signed with the dashboard's
  secret. The API never accepts the cookie, so no form on another site can act through it.
- **CSRF.** Every HTML form carries a token signed with the secret and bound to the session
  (to nothing when there is no token), valid for :data:`FORM_MAX_AGE`; a POST without a valid
  one is refused. Every POST, HTML or API, is also refused when the browser says it comes
  from another site (``Sec-Fetch-Site``) or another origin (``Origin`` differs from
  ``Host``): that covers scripts and forms on other sites even where no token is set.
- **Host.** Served on a loopback address, only requests naming a loopback host are answered:
  a web page that points its own domain name at 127.0.0.1 (DNS rebinding) gets nothing.
- **Wrong tokens.** After :data:`FREE_FAILURES` wrong tokens in a row from one client
  address (login form or API), that address is refused for a delay that doubles with each
  further wrong token (from one second up to :data:`MAX_DELAY`), whatever it sends; each
  wrong token is logged. A right token clears the count.
- **Headers.** A strict Content-Security-Policy (no inline script or style, nothing from
  elsewhere, no framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``,
  ``Cache-Control: no-store`` on every response.

The secret is random per process unless given (several processes behind one address must
share it, or a form made by one is refused by another).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

__all__ = [
    "FORM_MAX_AGE",
    "FREE_FAILURES",
    "LOOPBACK_HOSTS",
    "MAX_DELAY",
    "SESSION_MAX_AGE",
    "TOKEN_ENV",
    "LoginThrottle",
    "Signer",
    "bearer_token",
    "cross_site_reason",
    "host_allowed",
    "is_loopback",
    "tokens_equal",
]

TOKEN_ENV = "JOBIFY_DASHBOARD_TOKEN"
"""The environment variable ``jobify dashboard`` reads the auth token from."""

SESSION_MAX_AGE = 12 * 3600
"""Seconds a login lasts."""
FORM_MAX_AGE = 12 * 3600
"""Seconds a form's CSRF token stays valid (a page left open for a working day)."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Host names a dashboard served on a loopback address answers to."""

FREE_FAILURES = 3
"""Wrong tokens in a row an address may send before it has to wait."""
MAX_DELAY = 300.0
"""The longest wait, in seconds, after wrong tokens."""
_TRACKED = 10_000  # addresses remembered at most (the oldest are forgotten first)

log = logging.getLogger("jobify.dashboard")

_UNSAFE_SITES = frozenset({"cross-site", "same-site"})


def tokens_equal(given: str, expected: str) -> bool:
    """Compare secrets in constant time (as bytes: any text is accepted)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


class Signer:
    """Makes and checks the signed values of the dashboard (session, CSRF) with one secret.

    A signed value is ``issued.nonce.mac`` where ``mac`` is an HMAC-SHA256 over its purpose,
    what it is bound to, the issue time and the nonce. ``token`` (the auth token, if any)
    is mixed into the key, so a session made under one token dies when the token changes.
    ``clock`` gives epoch seconds.
    """

    def __init__(
        self, secret: bytes, token: str | None, clock: Callable[[], float] = time.time
    ) -> None:
        material = secret + b"\0" + (token or "").encode()
        self._key = hashlib.sha256(material).digest()
        self._clock = clock

    def _mac(self, purpose: str, binding: str, issued: str, nonce: str) -> str:
        message = f"{purpose}\0{binding}\0{issued}\0{nonce}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, purpose: str, binding: str = "") -> str:
        """A new signed value for ``purpose``, bound to ``binding``."""
        issued = str(int(self._clock()))
        nonce = secrets.token_hex(8)
        return f"{issued}.{nonce}.{self._mac(purpose, binding, issued, nonce)}"

    def verify(self, purpose: str, value: str | None, max_age: float, binding: str = "") -> bool:
        """Whether ``value`` was made by :meth:`sign` for ``purpose`` and ``binding`` and is
        at most ``max_age`` seconds old."""
        if not value or len(value) > 200:
            return False
        parts = value.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        issued, nonce, mac = parts
        age = self._clock() - int(issued)
        if not -60 <= age <= max_age:  # a little clock skew between processes is fine
            return False
        return tokens_equal(mac, self._mac(purpose, binding, issued, nonce))


class LoginThrottle:
    """Wrong tokens per client address, and how long each address must wait.

    ``clock`` gives epoch seconds; nothing sleeps: a request that comes too early is refused
    (the caller answers 429 with ``Retry-After``), so a guessing client gets one try per
    delay and the server holds no connection open for it.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # address -> (wrong tokens in a row, refused until)
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def wait(self, address: str) -> float:
        """Seconds ``address`` must still wait before its token is checked (0: go ahead)."""
        found = self._failures.get(address)
        return 0.0 if found is None else max(0.0, found[1] - self._clock())

    def failed(self, address: str, where: str) -> None:
        """``address`` sent a wrong token (to ``where``): count it, log it."""
        count = self._failures.pop(address, (0, 0.0))[0] + 1
        delay = (
            0.0 if count <= FREE_FAILURES else min(MAX_DELAY, 2.0 ** (count - 1 - FREE_FAILURES))
        )
        self._failures[address] = (count, self._clock() + delay)
        while len(self._failures) > _TRACKED:
            self._failures.popitem(last=False)
        if delay:
            log.warning(
                "dashboard: wrong token from %s (%s), %d in a row; its next try is refused "
                "for %.0f s",
                address,
                where,
                count,
                delay,
            )
        else:
            log.warning("dashboard: wrong token from %s (%s)", address, where)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _host_name(host: str) -> str:
    """The name part of a ``Host`` header value (no port; IPv6 without brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(host_header: str | None, allowed: Collection[str]) -> bool:
    """Whether a request's ``Host`` header names one of ``allowed`` (any port)."""
    if not host_header:
        return False
    return _host_name(host_header) in allowed


def cross_site_reason(
    method: str, host: str | None, origin: str | None, fetch_site: str | None
) -> str | None:
    """Why an unsafe request must be refused as coming from another site, or None.

    Browsers say where a request comes from; scripts (curl, httpx) say nothing and pass.
    """
    if method in ("GET", "HEAD", "OPTIONS"):
        return None
    if fetch_site is not None and fetch_site.lower() in _UNSAFE_SITES:
        return f"the browser says this request comes from another site ({fetch_site})"
    if origin is None:
        return None
    if origin == "null":
        return "the browser hid where this request comes from (Origin: null)"
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return "the request's Origin header is malformed"
    if not host or netloc != host.strip().lower():
        return f"the request comes from another origin ({origin})"
    return None
