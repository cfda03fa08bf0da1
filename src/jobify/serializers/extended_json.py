"""``ExtendedJSONSerializer``: JSON that round-trips Python types exactly (the app's default).

The wire format is ordinary, strict JSON. Values JSON cannot express are written as *tagged*
objects, ``{"$t": <kind>, "v": <payload>, ...}``; for example ``(1, 2)`` becomes
``{"$t":"tuple","v":[1,2]}`` and a zoned datetime ``{"$t":"dt","v":"2024-05-01T09:00:00",
"z":"Europe/Oslo"}``. A dataclass keeps its fields next to the tag and its class reference
(see :mod:`jobify.serializers.classref`): ``{"$t":"dc","$c":"shop:Item","sku":"A1","qty":2}``;
a class is rebuilt only if it is in the serializer's registry (decoding never imports);
no field name can clash with ``$t``/``$c``, since field names are identifiers. A user dict that
itself has a ``"$t"`` key (or a key that is not a string) is written as the tagged kind ``map``,
a list of ``[key, value]`` pairs, so user data can never be mistaken for a tag.

Speed: most task arguments are plain JSON already. :func:`_is_plain` checks that with a walk
that allocates nothing, and such payloads go straight to the C encoder. On the way back, bytes
that do not contain ``"$t"`` at all cannot hold a tagged value and are decoded without the
per-object hook.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from jobify.exceptions import SerializationError
from jobify.serializers._tags import LEAF_DECODERS, LEAF_ENCODERS
from jobify.serializers.base import decode_error, encode_error, type_name
from jobify.serializers.classref import (
    DATACLASS,
    ENUM,
    MODEL,
    NAMEDTUPLE,
    TypeRegistry,
    class_kind,
    class_ref,
)

__all__ = ["ExtendedJSONSerializer"]

_NAME = "ExtendedJSONSerializer"
_TAG = "$t"
# The encoder writes ASCII only, so every tagged object contains exactly these bytes.
_TAG_BYTES = b'"$t"'

log = logging.getLogger("jobify.serializers")

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


# --------------------------------------------------------------------------------------------
# Encoding (Python -> JSON-ready data)
# --------------------------------------------------------------------------------------------

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[dict[str, Any]], Any]
_CLASS = "$c"  # the class reference of a tagged dataclass/NamedTuple/Enum/model


def _make_encode(registry: TypeRegistry) -> _Encoder:
    """The recursive encoder of one serializer: built-in types, plus the classes of its
    registry (a class first met while encoding is registered: it is the program's own)."""
    encoders: dict[type, _Encoder] = dict(LEAF_ENCODERS)

    def encode(obj: Any) -> Any:
        """``obj`` as JSON-ready data, tagging what JSON cannot express."""
        tp = type(obj)
        if tp is str or tp is int or tp is bool or obj is None:
            return obj
        encoder = encoders.get(tp)
        if encoder is None:
            encoder = encoders[tp] = class_encoder(tp)
        return encoder(obj)

    def encode_dict(value: dict[Any, Any]) -> Any:
        if _TAG not in value and all(type(k) is str for k in value):
            return {k: encode(v) for k, v in value.items()}
        # Non-str keys, or a user key that collides with the tag: pairs keep both exact.
        return {_TAG: "map", "v": [[encode(k), encode(v)] for k, v in value.items()]}

    def class_encoder(tp: type) -> _Encoder:
        kind = class_kind(tp)
        if kind is None:
            raise SerializationError(
                f"{_NAME} cannot serialize a value of type {type_name(tp)}: unsupported type "
                "(supported: JSON values, dataclasses, NamedTuple, Enum, pydantic models, "
                "datetime/date/time/timedelta, ZoneInfo, UUID, Decimal, set/frozenset/tuple, "
                "bytes, Path)"
            )
        ref = class_ref(tp)
        if registry.classes.get(ref, (None, None))[1] is not tp:
            registry.add(tp, kind)
            log.warning(
                "%s: %s is stored in a job but was not registered; a process that does not "
                "register it (another worker, or this app after a restart) cannot restore "
                "the job. Name it in the task's annotations, or pass it to "
                "ExtendedJSONSerializer(types=[...])",
                _NAME,
                ref,
            )
        return _class_encoder(tp, kind, ref, encode)

    encoders.update(
        {
            list: lambda v: [encode(x) for x in v],
            dict: encode_dict,
            tuple: lambda v: {_TAG: "tuple", "v": [encode(x) for x in v]},
            set: lambda v: {_TAG: "set", "v": [encode(x) for x in v]},
            frozenset: lambda v: {_TAG: "fset", "v": [encode(x) for x in v]},
        }
    )
    return encode


def _class_encoder(tp: type, kind: str, ref: str, encode: _Encoder) -> _Encoder:
    encoder: _Encoder
    if kind == ENUM:

        def encoder(obj: Any) -> Any:
            return {_TAG: ENUM, _CLASS: ref, "v": encode(obj.value)}

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
                    out[name] = encode(value)
            return out

    elif kind == MODEL:
        # A model writes itself as JSON data and validates it back: its own schema decides.
        def encoder(obj: Any) -> Any:
            return {_TAG: MODEL, _CLASS: ref, "v": encode(obj.model_dump(mode="json"))}

    else:

        def encoder(obj: Any) -> Any:
            return {_TAG: NAMEDTUPLE, _CLASS: ref, "v": [encode(v) for v in obj]}

    return encoder


# --------------------------------------------------------------------------------------------
# Decoding (JSON objects -> Python), bottom-up through json's object_hook
# --------------------------------------------------------------------------------------------


def _make_hook(registry: TypeRegistry) -> _Decoder:
    """The object hook of one serializer: built-in tags, and the classes of its registry
    (only those: a class reference is looked up, never imported)."""
    resolve = registry.resolve
    # class reference -> (dataclass, names of its init=False fields). Fields with init=False
    # are not constructor arguments, so they are restored with object.__setattr__ (which
    # also works for frozen and slotted dataclasses).
    dataclass_entries: dict[str, tuple[Any, tuple[str, ...]]] = {}

    def decode_dataclass(d: dict[str, Any]) -> Any:
        # ``d`` is a fresh object from the parser: once the reserved keys are removed, it is
        # the field mapping itself.
        del d[_TAG]
        ref = d.pop(_CLASS, None)
        entry = dataclass_entries.get(ref) if type(ref) is str else None
        if entry is None:
            cls = resolve(ref, DATACLASS)
            entry = (cls, tuple(f.name for f in dataclasses.fields(cls) if not f.init))
            dataclass_entries[ref] = entry
        cls, other_names = entry
        if not other_names:
            return cls(**d)
        obj = cls(**{k: v for k, v in d.items() if k not in other_names})
        for name in other_names:
            if name in d:
                object.__setattr__(obj, name, d[name])
        return obj

    decoders: dict[str, _Decoder] = {
        **LEAF_DECODERS,
        DATACLASS: decode_dataclass,
        NAMEDTUPLE: lambda d: resolve(d.get(_CLASS), NAMEDTUPLE)._make(d["v"]),
        ENUM: lambda d: resolve(d.get(_CLASS), ENUM)(d["v"]),
        MODEL: lambda d: resolve(d.get(_CLASS), MODEL).model_validate(d["v"]),
    }

    def hook(d: dict[str, Any]) -> Any:
        kind = d.get(_TAG)
        if kind is None:
            return d
        decoder = decoders.get(kind)  # an unhashable kind raises TypeError: a decode error
        if decoder is None:
            raise SerializationError(f"{_NAME}: unknown tag {kind!r:.40}")
        return decoder(d)

    return hook


# --------------------------------------------------------------------------------------------
# The serializer
# --------------------------------------------------------------------------------------------


class ExtendedJSONSerializer:
    """JSON that round-trips Python values exactly, type and value: the app's default.

    ``types`` is the registry's start: the dataclasses, NamedTuples, Enums and pydantic
    models it may rebuild (the classes in their fields are registered too). The app adds the
    types named in its tasks' annotations (:meth:`register_hints`), so most programs never
    list a type by hand.

    Supported, nested in any way:

    * JSON values: ``str``, ``int``, ``bool``, ``None``, ``list``, ``dict``; dicts with
      non-str keys (int, tuple, frozenset, ... any supported hashable value) and dicts that
      contain the tag key ``"$t"`` are kept exactly;
    * ``float``, including ``NaN`` and ``±Infinity`` (tagged, so the output stays strict JSON);
    * ``tuple``, ``set``, ``frozenset``, ``bytes``, ``bytearray``;
    * ``datetime``, ``date``, ``time``: naive stays naive; a ``ZoneInfo`` keeps its key, a
      ``datetime.timezone`` keeps its offset (and a custom name); ``fold`` is kept. Other
      ``tzinfo`` classes (pytz, dateutil) are refused, since they cannot be rebuilt exactly;
    * ``ZoneInfo`` (by key), ``timedelta``, ``UUID``, ``Decimal`` (also ``NaN``, ``sNaN``,
      ``Infinity``, ``-0``);
    * ``PurePosixPath``, ``PureWindowsPath``, ``PosixPath``, ``WindowsPath`` (the concrete
      class is kept);
    * registered dataclasses (also frozen, slotted, nested), ``NamedTuple``, ``Enum`` (also
      ``IntEnum``, ``StrEnum``, ``Flag``) and pydantic models (written with
      ``model_dump(mode="json")``, read with ``model_validate``); TypedDicts are plain dicts
      at runtime and stay dicts.

    Classes are stored by ``module:qualname``, so classes defined inside functions are
    refused when encoding. **Decoding never imports a module**: a stored class reference is
    looked up in the registry, and a reference that is not there is a
    :class:`~jobify.exceptions.SerializationError` naming it (the job is then shown as
    unrestorable, and left in storage). What decoding calls is limited to registered
    classes: a dataclass's constructor with its stored ``init`` fields (so ``__post_init__``
    runs; ``init=False`` fields are then set directly), a NamedTuple's ``_make``, an Enum's
    value lookup, a model's ``model_validate``. A class met while *encoding* is registered
    on the spot (the value is the program's own), with a warning: another process decodes
    it only if it registers it too.

    Other subclasses of builtin types (``OrderedDict``, ``defaultdict``, a ``str`` subclass)
    are refused rather than silently stored as their base type.
    """

    __slots__ = ("_decoder", "_encode", "_registry")

    def __init__(self, types: Iterable[type] = ()) -> None:
        """Rebuild the classes in ``types`` (and those in their fields) when decoding."""
        self._registry = TypeRegistry()
        self._registry.add_types(list(types))
        self._encode = _make_encode(self._registry)
        self._decoder = json.JSONDecoder(object_hook=_make_hook(self._registry))

    @property
    def registry(self) -> Mapping[str, type]:
        """The classes this serializer rebuilds, by stored reference (``"module:qualname"``);
        read-only: add with the constructor's ``types`` or :meth:`register_hints`."""
        return MappingProxyType(self._registry.public)

    def register_hints(self, hints: Iterable[Any] | Mapping[str, Any]) -> None:
        """Register every dataclass, NamedTuple, Enum or pydantic model named in ``hints``
        (type annotations, or a mapping of them such as ``typing.get_type_hints(func)``),
        however nested: ``list[Point]``, ``dict[str, Point]``, ``Point | None``,
        ``Annotated[Point, ...]``, the fields of a registered class. Other hints are ignored."""
        self._registry.add_hints(hints)

    def dumpb(self, obj: Any) -> bytes:
        """Encode ``obj`` as JSON bytes (ASCII)."""
        try:
            if _is_plain(obj):
                try:
                    return _ENCODER.encode(obj).encode()
                except ValueError:
                    pass  # a NaN/infinite float: take the tagging path below
            return _ENCODER.encode(self._encode(obj)).encode()
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
            return self._decoder.decode(data.decode())
        except SerializationError:
            raise
        except Exception as exc:  # anything wrong with foreign bytes is a decode error
            raise decode_error(_NAME, exc) from exc

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._registry.public))
        return f"ExtendedJSONSerializer(types=[{names}])" if names else "ExtendedJSONSerializer()"
