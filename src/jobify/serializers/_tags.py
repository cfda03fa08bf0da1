"""The built-in tags of :class:`~jobify.serializers.ExtendedJSONSerializer`: values that hold
no other value (numbers JSON cannot write, bytes, times, zones, UUIDs, decimals, paths), each
with its encoder and its decoder. Containers and classes are encoded by the serializer, with its
registry.
"""

from __future__ import annotations

import base64
import pathlib
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from jobify._zones import zone_from_key
from jobify.exceptions import SerializationError
from jobify.serializers.base import type_name

__all__ = ["LEAF_DECODERS", "LEAF_ENCODERS", "TAG"]

_NAME = "ExtendedJSONSerializer"
TAG = "$t"
_TAG = TAG

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[dict[str, Any]], Any]


def _encode_float(value: float) -> Any:
    if value - value == 0.0:  # finite (inf - inf and nan - nan are nan)
        return value
    return {_TAG: "float", "v": repr(value)}  # 'nan', 'inf' or '-inf'


def _zone_key(tz: ZoneInfo) -> str:
    key: str | None = tz.key
    if key is None:  # ZoneInfo.from_file(): nothing to look it up by later
        raise SerializationError(
            f"{_NAME} cannot serialize a ZoneInfo without a key (made by from_file())"
        )
    return key


def _put_tz(out: dict[str, Any], tz: tzinfo) -> None:
    """Record ``tz`` in a tagged datetime/time: a ZoneInfo by key, a fixed offset by offset."""
    tp = type(tz)
    if tp is ZoneInfo:
        out["z"] = _zone_key(tz)  # type: ignore[arg-type]
    elif tp is timezone:
        offset = tz.utcoffset(None)
        assert offset is not None  # a datetime.timezone always has a fixed offset
        out["o"] = offset // timedelta(microseconds=1)
        name = tz.tzname(None)
        if name != timezone(offset).tzname(None):
            out["n"] = name
    else:
        raise SerializationError(
            f"{_NAME} cannot serialize a datetime with tzinfo of type {type_name(tp)}: only "
            "zoneinfo.ZoneInfo and datetime.timezone round-trip exactly; convert it with "
            "dt.astimezone(ZoneInfo(...))"
        )


def _encode_datetime(value: datetime) -> Any:
    tz = value.tzinfo
    if tz is None:
        out: dict[str, Any] = {_TAG: "dt", "v": value.isoformat()}
    else:
        out = {_TAG: "dt", "v": value.replace(tzinfo=None).isoformat()}
        _put_tz(out, tz)
    if value.fold:
        out["f"] = 1
    return out


def _encode_time(value: time) -> Any:
    out: dict[str, Any] = {_TAG: "time", "v": value.replace(tzinfo=None).isoformat()}
    if value.tzinfo is not None:
        _put_tz(out, value.tzinfo)
    if value.fold:
        out["f"] = 1
    return out


def _b64(value: bytes | bytearray) -> str:
    return base64.b64encode(value).decode("ascii")


_PATH_TYPES: dict[str, type[pathlib.PurePath]] = {
    cls.__name__: cls
    for cls in (
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    )
}


def _path_encoder(name: str) -> _Encoder:
    return lambda v: {_TAG: "path", "c": name, "v": str(v)}


# Types whose encoding holds no other value (containers are added per serializer, since they
# encode their items with that serializer's registry).
LEAF_ENCODERS: dict[type, _Encoder] = {
    float: _encode_float,
    bytes: lambda v: {_TAG: "b", "v": _b64(v)},
    bytearray: lambda v: {_TAG: "ba", "v": _b64(v)},
    datetime: _encode_datetime,
    date: lambda v: {_TAG: "date", "v": v.isoformat()},
    time: _encode_time,
    timedelta: lambda v: {_TAG: "td", "v": [v.days, v.seconds, v.microseconds]},
    uuid.UUID: lambda v: {_TAG: "uuid", "v": str(v)},
    Decimal: lambda v: {_TAG: "dec", "v": str(v)},  # str keeps NaN, sNaN, -0, exponent
    ZoneInfo: lambda v: {_TAG: "zi", "v": _zone_key(v)},
    **{cls: _path_encoder(name) for name, cls in _PATH_TYPES.items()},
}


def _get_tz(d: dict[str, Any]) -> tzinfo | None:
    key = d.get("z")
    if key is not None:
        return zone_from_key(key)
    offset = d.get("o")
    if offset is None:
        return None
    delta = timedelta(microseconds=offset)
    name = d.get("n")
    return timezone(delta) if name is None else timezone(delta, name)


def _decode_datetime(d: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(d["v"])
    tz = _get_tz(d)
    fold = d.get("f", 0)
    if tz is None and not fold:
        return value
    return value.replace(tzinfo=tz, fold=fold)


def _decode_time(d: dict[str, Any]) -> time:
    return time.fromisoformat(d["v"]).replace(tzinfo=_get_tz(d), fold=d.get("f", 0))


def _decode_float(d: dict[str, Any]) -> float:
    text = d["v"]
    if text not in ("nan", "inf", "-inf"):
        raise SerializationError(f"{_NAME}: malformed non-finite float {text!r}")
    return float(text)


def _decode_path(d: dict[str, Any]) -> pathlib.PurePath:
    cls = _PATH_TYPES.get(d.get("c"))  # type: ignore[arg-type]
    if cls is None:
        raise SerializationError(f"{_NAME}: unknown path type {d.get('c')!r}")
    return cls(d["v"])


LEAF_DECODERS: dict[str, _Decoder] = {
    "map": lambda d: dict(d["v"]),
    "tuple": lambda d: tuple(d["v"]),
    "set": lambda d: set(d["v"]),
    "fset": lambda d: frozenset(d["v"]),
    "float": _decode_float,
    "b": lambda d: base64.b64decode(d["v"], validate=True),
    "ba": lambda d: bytearray(base64.b64decode(d["v"], validate=True)),
    "dt": _decode_datetime,
    "date": lambda d: date.fromisoformat(d["v"]),
    "time": _decode_time,
    "td": lambda d: timedelta(*d["v"]),
    "uuid": lambda d: uuid.UUID(d["v"]),
    "dec": lambda d: Decimal(d["v"]),
    "path": _decode_path,
    "zi": lambda d: zone_from_key(d["v"]),
}
