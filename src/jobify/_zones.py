"""Time zones named by stored data, looked up without running or importing anything.

``ZoneInfo(key)`` reads a file from the system's zone database, and when the key is not
there it imports a package of ``tzdata`` named after the key. A key read from a job store is
untrusted, so it is checked first: it must look like an IANA name and name a zone that
exists. Zones are cached by key, which also keeps the common case one dict lookup.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from zoneinfo import ZoneInfo

__all__ = ["zone_from_key"]

# IANA names are ASCII letters, digits and ``_+-`` segments joined by ``/`` (no dots, so no
# ``..`` and no absolute path can get through).
_KEY = re.compile(r"[A-Za-z0-9_+\-]{1,40}(?:/[A-Za-z0-9_+\-]{1,40}){0,3}")
_KNOWN: dict[str, ZoneInfo] = {}
_AVAILABLE: list[frozenset[str]] = []


def _on_tzpath(key: str) -> bool:
    return any(os.path.isfile(os.path.join(root, key)) for root in zoneinfo.TZPATH)


def _available() -> frozenset[str]:
    # Only for keys that are not in the system's database: the list of zones ``tzdata``
    # provides, computed once.
    if not _AVAILABLE:
        _AVAILABLE.append(frozenset(zoneinfo.available_timezones()))
    return _AVAILABLE[0]


def zone_from_key(key: object) -> ZoneInfo:
    """The zone stored as ``key``; ``ValueError`` for a malformed or unknown key."""
    zone = _KNOWN.get(key) if type(key) is str else None
    if zone is not None:
        return zone
    if type(key) is not str or not _KEY.fullmatch(key):
        raise ValueError(f"malformed time zone key {key!r:.60}")
    if not _on_tzpath(key) and key not in _available():
        raise ValueError(f"unknown time zone {key!r}")
    try:
        zone = ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {key!r} ({exc})") from None
    _KNOWN[key] = zone
    return zone
