"""Time zones named by stored data, looked up without running or importing anything.

``ZoneInfo(key)`` reads a file from the system's zone database, and when the key is not
there it imports a package of ``tzdata`` named after the key. A key read from a job store is
untrusted, so it is checked first: it must look like an IANA name and name a zone file that
exists (nothing is imported to find out). Zones are cached by key, which also keeps the
common case one dict lookup.
"""

from __future__ import annotations

import importlib.util
import os
import re
import zoneinfo
from zoneinfo import ZoneInfo

__all__ = ["zone_from_key"]

# IANA names are ASCII letters, digits and ``_+-`` segments joined by ``/`` (no dots, so no
# ``..`` and no absolute path can get through).
_KEY = re.compile(r"[A-Za-z0-9_+\-]{1,40}(?:/[A-Za-z0-9_+\-]{1,40}){0,3}")
_KNOWN: dict[str, ZoneInfo] = {}
_TZDATA: list[str | None] = []


def _tzdata_root() -> str | None:
    # Where the ``tzdata`` package keeps its zone files, found (once) without importing it.
    if not _TZDATA:
        spec = importlib.util.find_spec("tzdata")
        locations = list(spec.submodule_search_locations or ()) if spec is not None else []
        _TZDATA.append(os.path.join(locations[0], "zoneinfo") if locations else None)
    return _TZDATA[0]


def _exists(key: str) -> bool:
    """Whether ``key`` names a zone file of the system's database or of ``tzdata`` (where
    ``ZoneInfo`` then imports that package's data modules: they exist, so a stored key can
    only pick one of them)."""
    roots = [*zoneinfo.TZPATH, _tzdata_root()]
    return any(root and os.path.isfile(os.path.join(root, key)) for root in roots)


def zone_from_key(key: object) -> ZoneInfo:
    """The zone stored as ``key``; ``ValueError`` for a malformed or unknown key."""
    zone = _KNOWN.get(key) if type(key) is str else None
    if zone is not None:
        return zone
    if type(key) is not str or not _KEY.fullmatch(key):
        raise ValueError(f"malformed time zone key {key!r:.60}")
    if not _exists(key):
        raise ValueError(f"unknown time zone {key!r}")
    try:
        zone = ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {key!r} ({exc})") from None
    _KNOWN[key] = zone
    return zone
