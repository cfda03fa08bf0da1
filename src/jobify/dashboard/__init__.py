"""The jobify dashboard: see and steer a job store in a browser (extra ``dashboard``).

``jobify dashboard --storage URL`` serves it; :func:`create_app` returns it as a Starlette
(ASGI) application to serve or to mount in an existing Starlette or FastAPI service::

    from jobify.dashboard import create_app

    dashboard = create_app("sqlite:///jobs.db", auth_token=token)

Server-rendered pages (overview, jobs, one job with its history, crons on a timeline,
failures, runs), each with a JSON twin under ``/api/``; actions (cancel, pause, resume, run
now) go through :mod:`jobify.inspection`, so an app running on the store applies them. Safe
by default: see ``docs/dashboard.md`` for the token, CSRF and header rules.
"""

from jobify.exceptions import MissingDependencyError

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        exc.name or "starlette", "dashboard", "jobify.dashboard (the web dashboard)"
    ) from exc

from jobify.dashboard._app import MIN_TOKEN_LENGTH, create_app
from jobify.dashboard._security import LOOPBACK_HOSTS, TOKEN_ENV

__all__ = ["LOOPBACK_HOSTS", "MIN_TOKEN_LENGTH", "TOKEN_ENV", "create_app"]
