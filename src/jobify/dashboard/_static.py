"""The dashboard's script and stylesheet: shipped in the package, read once, served from memory.

Each URL carries a hash of the file's content (``/static/dashboard.js?v=1a2b3c``), so a
browser may cache it for good and still gets the new file after an upgrade.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

__all__ = ["StaticAssets"]

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    media_type: str
    version: str


class StaticAssets:
    """Every file of the package's ``static`` folder, keyed by name."""

    def __init__(self, package: str = "jobify.dashboard", folder: str = "static") -> None:
        self._assets: dict[str, _Asset] = {}
        for entry in resources.files(package).joinpath(folder).iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            if not entry.is_file() or suffix not in _TYPES:
                continue
            body = entry.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:12]
            self._assets[entry.name] = _Asset(body, _TYPES[suffix], version)

    def url(self, name: str) -> str:
        """The path of an asset (relative to where the dashboard is mounted)."""
        return f"/static/{name}?v={self._assets[name].version}"

    async def serve(self, request: Request) -> Response:
        name = request.path_params["name"]
        asset = self._assets.get(name)
        if asset is None:
            return PlainTextResponse("no such file", 404)
        current = request.query_params.get("v") == asset.version
        cache = "public, max-age=31536000, immutable" if current else "no-cache"
        return Response(
            asset.body,
            media_type=asset.media_type,
            headers={"Cache-Control": cache, "ETag": f'"{asset.version}"'},
        )
