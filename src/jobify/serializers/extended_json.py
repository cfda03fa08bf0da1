"""``ExtendedJSONSerializer``: JSON that round-trips Python types exactly (the app's default).

The wire format is ordinary, strict JSON. Values JSON cannot express are written as *tagged*
objects, ``{"$t": <kind>, "v": <payload>, ...}``; for example ``(1, 2)`` becomes
``{"$t":"tuple","v":[1,2]}`` and a zoned datetime ``{"$t":"dt","v":"2024-05-01T09:00:00",
"z":"Europe/Oslo"}``. A dataclass keeps its fields next to the tag and its class reference
(see :mod:`jobify.serializers.classref`): ``{"$t":"dc","$c":"shop:Item","sku":"A1","qty":2}``;
no field name can clash with ``$t``/``$c``, since field names are identifiers. A user dict that
itself has a ``"$t"`` key (or a key that is not a string) is written as the tagged kind ``map``,
a list of ``[key, value]`` pairs, so user data can never be mistaken for a tag.

Speed: most task arguments are plain JSON already. :func:`_is_plain` checks that with a walk
that allocates nothing, and such payloads go straight to the C encoder. On the way back, bytes
that do not contain ``"$t"`` at all cannot hold a tagged value and are decoded without the
per-object hook.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from jobify.exceptions import SerializationError
from jobify.serializers.base import decode_error, encode_error, type_name
from jobify.serializers.classref import (
    DATACLASS,
    ENUM,
    NAMEDTUPLE,
    class_kind,
    class_ref,
    resolve_class,
)

__all__ = ["ExtendedJSONSerializer"]

_NAME = "ExtendedJSONSerializer"
_TAG = "$t"
# The encoder writes ASCII only, so every tagged object contains exactly these bytes.
_TAG_BYTES = b'"$t"'

_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))
_PLAIN_DECODER = json.JSONDecoder()


# --------------------------------------------------------------------------------------------
# The fast path
# --------------------------------------------------------------------------------------------


def _is_plain(obj: Any) -> bool:
    """True if ``obj`` is JSON that needs no tags: exact ``str``/``int``/``float``/``bool``/
    ``None``, ``list``, and ``dict`` with exact ``str`` keys other than the tag key.

    Exact type checks on purpose: ``json`` would silently write a tuple as a list, an
    ``IntEnum`` as an int, or an int key as a string, and those must take the tagged path.
    Non-finite floats pass here and are caught by the encoder's ``allow_nan=False``.
    """
    tp = type(obj)
    if tp is dict:
        if _TAG in obj:
            return False
        for key, value in obj.items():
            if type(key) is not str:
                return False
            vt = type(value)
            # Scalars inline: most values are scalars, and a call per value would double the
            # cost of the walk.
            if vt is str or vt is int or vt is float or vt is bool or value is None:
                continue
            if not _is_plain(value):
                return False
        return True
    if tp is list:
        for value in obj:
            vt = type(value)
            if vt is str or vt is int or vt is float or vt is bool or value is None:
                continue
            if not _is_plain(value):
                return False
        return True
    return tp is str or tp is int or tp is float or tp is bool or obj is None


_CLASS = "$c"  # the class reference of a tagged dataclass/NamedTuple/Enum


# --------------------------------------------------------------------------------------------
# Encoding (Python -> JSON-ready data)
# --------------------------------------------------------------------------------------------

_Encoder = Callable[[Any], Any]
_ENCODERS: dict[type, _Encoder] = {}


def _encode(obj: Any) -> Any:
    """``obj`` as JSON-ready data, tagging what JSON cannot express."""
    tp = type(obj)
    if tp is str or tp is int or tp is bool or obj is None:
        return obj
    encoder = _ENCODERS.get(tp)
    if encoder is None:
        encoder = _encoder_for(tp)
    return encoder(obj)


def _encoder_for(tp: type) -> _Encoder:
    """Build (and cache) the encoder for a class-referenced type, or refuse the type."""
    kind = class_kind(tp)
    if kind is None:
        raise SerializationError(
            f"{_NAME} cannot serialize a value of type {type_name(tp)}: unsupported type "
            "(supported: JSON values, dataclasses, NamedTuple, Enum, datetime/date/time/"
            "timedelta, UUID, Decimal, set/frozenset/tuple, bytes, Path)"
        )
    ref = class_ref(tp, kind)
    encoder: _Encoder
    if kind == ENUM:

        def encoder(obj: Any) -> Any:
            return {_TAG: ENUM, _CLASS: ref, "v": _encode(obj.value)}

    elif kind == DATACLASS:
        names = tuple(f.name for f in dataclasses.fields(tp))
        # Fields are written next to the tag, not in a nested object: one object less to
        # build and to pass through the decoder's hook. The reserved keys start with "$",
        # which no field name (an identifier) can.
        if any(not n.isidentifier() for n in names):
            raise SerializationError(
                f"{_NAME} cannot serialize {type_name(tp)}: a field name is not an identifier"
            )

        def encoder(obj: Any) -> Any:
            out = {_TAG: DATACLASS, _CLASS: ref}
            for name in names:
                value = getattr(obj, name)
                vt = type(value)
                # Inline the commonest scalars: a call per field is most of the cost.
                if vt is str or vt is int or vt is bool or value is None:
                    out[name] = value
                else:
                    out[name] = _encode(value)
            return out

    else:

        def encoder(obj: Any) -> Any:
            return {_TAG: NAMEDTUPLE, _CLASS: ref, "v": [_encode(v) for v in obj]}

    _ENCODERS[tp] = encoder
    return encoder


def _encode_float(value: float) -> Any:
    if value - value == 0.0:  # finite (inf - inf and nan - nan are nan)
        return value
    return {_TAG: "float", "v": repr(value)}  # 'nan', 'inf' or '-inf'


def _encode_dict(value: dict[Any, Any]) -> Any:
    if _TAG not in value and all(type(k) is str for k in value):
        return {k: _encode(v) for k, v in value.items()}
    # Non-str keys, or a user key that collides with the tag: pairs keep both exact.
    return {_TAG: "map", "v": [[_encode(k), _encode(v)] for k, v in value.items()]}


def _put_tz(out: dict[str, Any], tz: tzinfo) -> None:
    """Record ``tz`` in a tagged datetime/time: a ZoneInfo by key, a fixed offset by offset."""
    tp = type(tz)
    if tp is ZoneInfo:
        key = tz.key  # type: ignore[attr-defined]
        if key is None:  # ZoneInfo.from_file(): nothing to look it up by later
            raise SerializationError(
                f"{_NAME} cannot serialize a ZoneInfo without a key (made by from_file())"
            )
        out["z"] = key
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

_ENCODERS.update(
    {
        float: _encode_float,
        list: lambda v: [_encode(x) for x in v],
        dict: _encode_dict,
        tuple: lambda v: {_TAG: "tuple", "v": [_encode(x) for x in v]},
        set: lambda v: {_TAG: "set", "v": [_encode(x) for x in v]},
        frozenset: lambda v: {_TAG: "fset", "v": [_encode(x) for x in v]},
        bytes: lambda v: {_TAG: "b", "v": _b64(v)},
        bytearray: lambda v: {_TAG: "ba", "v": _b64(v)},
        datetime: _encode_datetime,
        date: lambda v: {_TAG: "date", "v": v.isoformat()},
        time: _encode_time,
        timedelta: lambda v: {_TAG: "td", "v": [v.days, v.seconds, v.microseconds]},
        uuid.UUID: lambda v: {_TAG: "uuid", "v": str(v)},
        Decimal: lambda v: {_TAG: "dec", "v": str(v)},  # str keeps NaN, sNaN, -0, exponent
    }
)


def _path_encoder(name: str) -> _Encoder:
    return lambda v: {_TAG: "path", "c": name, "v": str(v)}


for _name, _cls in _PATH_TYPES.items():
    _ENCODERS[_cls] = _path_encoder(_name)


# --------------------------------------------------------------------------------------------
# Decoding (JSON objects -> Python), bottom-up through json's object_hook
# --------------------------------------------------------------------------------------------


def _get_tz(d: dict[str, Any]) -> tzinfo | None:
    key = d.get("z")
    if key is not None:
        return ZoneInfo(key)
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


# class reference -> (dataclass, names of its init=False fields). Fields with init=False are not
# constructor arguments, so they are restored with object.__setattr__ (which also works for
# frozen and slotted dataclasses).
_DATACLASS_ENTRIES: dict[str, tuple[Any, tuple[str, ...]]] = {}


def _decode_dataclass(d: dict[str, Any]) -> Any:
    # ``d`` is a fresh object from the parser: once the reserved keys are removed, it is the
    # field mapping itself.
    del d[_TAG]
    ref = d.pop(_CLASS, None)
    entry = _DATACLASS_ENTRIES.get(ref) if type(ref) is str else None
    if entry is None:
        cls = resolve_class(ref, DATACLASS)
        entry = (cls, tuple(f.name for f in dataclasses.fields(cls) if not f.init))
        _DATACLASS_ENTRIES[ref] = entry
    cls, other_names = entry
    if not other_names:
        return cls(**d)
    obj = cls(**{k: v for k, v in d.items() if k not in other_names})
    for name in other_names:
        if name in d:
            object.__setattr__(obj, name, d[name])
    return obj


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


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
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
    DATACLASS: _decode_dataclass,
    NAMEDTUPLE: lambda d: resolve_class(d.get(_CLASS), NAMEDTUPLE)._make(d["v"]),
    ENUM: lambda d: resolve_class(d.get(_CLASS), ENUM)(d["v"]),
}


def _object_hook(d: dict[str, Any]) -> Any:
    kind = d.get(_TAG)
    if kind is None:
        return d
    decoder = _DECODERS.get(kind)  # an unhashable kind raises TypeError: a decode error
    if decoder is None:
        raise SerializationError(f"{_NAME}: unknown tag {kind!r}")
    return decoder(d)


_TAGGED_DECODER = json.JSONDecoder(object_hook=_object_hook)


# --------------------------------------------------------------------------------------------
# The serializer
# --------------------------------------------------------------------------------------------


class ExtendedJSONSerializer:
    """JSON that round-trips Python values exactly, type and value: the app's default.

    Supported, nested in any way:

    * JSON values: ``str``, ``int``, ``bool``, ``None``, ``list``, ``dict``; dicts with
      non-str keys (int, tuple, frozenset, ... any supported hashable value) and dicts that
      contain the tag key ``"$t"`` are kept exactly;
    * ``float``, including ``NaN`` and ``±Infinity`` (tagged, so the output stays strict JSON);
    * ``tuple``, ``set``, ``frozenset``, ``bytes``, ``bytearray``;
    * ``datetime``, ``date``, ``time``: naive stays naive; a ``ZoneInfo`` keeps its key, a
      ``datetime.timezone`` keeps its offset (and a custom name); ``fold`` is kept. Other
      ``tzinfo`` classes (pytz, dateutil) are refused, since they cannot be rebuilt exactly;
    * ``timedelta``, ``UUID``, ``Decimal`` (also ``NaN``, ``sNaN``, ``Infinity``, ``-0``);
    * ``PurePosixPath``, ``PureWindowsPath``, ``PosixPath``, ``WindowsPath`` (the concrete
      class is kept);
    * dataclasses (also frozen, slotted, nested), ``NamedTuple``, ``Enum`` (also ``IntEnum``,
      ``StrEnum``, ``Flag``); TypedDicts are plain dicts at runtime and stay dicts.

    Classes are stored by ``module:qualname`` and must be importable under that name, so
    classes defined inside functions are refused when encoding. (A class defined in a script
    run as ``python app.py`` is stored as ``__main__:Name``; it is found again only if the
    restoring process runs the same script as ``__main__``. Put argument classes in a module.)

    Decoding a class reference imports its module if it is not imported yet (a tampered
    store can thus import an installed module, as with pickle), then checks that the object
    found *is* a dataclass, NamedTuple or Enum class and refuses anything else: no other
    callable is ever called, so a tampered store cannot make decoding call arbitrary
    functions. What is called: a dataclass's constructor with its stored ``init`` fields (so
    ``__post_init__`` runs; ``init=False`` fields are then set directly), a NamedTuple's
    ``_make``, an Enum's value lookup. An unknown or moved class raises
    :class:`~jobify.exceptions.SerializationError` naming it.

    Other subclasses of builtin types (``OrderedDict``, ``defaultdict``, a ``str`` subclass)
    are refused rather than silently stored as their base type.
    """

    __slots__ = ()

    def dumpb(self, obj: Any) -> bytes:
        """Encode ``obj`` as JSON bytes (ASCII)."""
        try:
            if _is_plain(obj):
                try:
                    return _ENCODER.encode(obj).encode()
                except ValueError:
                    pass  # a NaN/infinite float: take the tagging path below
            return _ENCODER.encode(_encode(obj)).encode()
        except SerializationError:
            raise
        except RecursionError as exc:
            raise SerializationError(
                f"{_NAME} cannot serialize a value of type {type_name(type(obj))}: it is "
                "nested too deeply or contains a reference cycle"
            ) from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise encode_error(_NAME, obj, exc) from exc

    def loadb(self, data: bytes) -> Any:
        """Decode bytes written by :meth:`dumpb`."""
        try:
            if _TAG_BYTES not in data:
                return _PLAIN_DECODER.decode(data.decode())
            return _TAGGED_DECODER.decode(data.decode())
        except SerializationError:
            raise
        except Exception as exc:  # anything wrong with foreign bytes is a decode error
            raise decode_error(_NAME, exc) from exc

    def __repr__(self) -> str:
        return "ExtendedJSONSerializer()"
