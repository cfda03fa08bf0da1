"""The classes an :class:`~jobify.serializers.ExtendedJSONSerializer` may rebuild.

A dataclass, NamedTuple, Enum or pydantic model is stored with its class reference,
``"module:qualname"``. Decoding turns a reference back into a class **only by looking it up
in the serializer's registry**: it never imports a module and never reads an attribute of
one, so a tampered job store cannot make a process import (and so run) code. The registry
holds what the program itself named: the classes given to the serializer, the types found in
the annotations of the app's tasks (walked once, when a task joins the app and again at
startup, through ``list[...]``, ``dict[...]``, ``Optional``, unions, ``Annotated`` and the
fields of the classes found), and the classes of values this process encoded itself.

Encoding checks that a reference imports back to the very same class, so a value that could
never be restored is refused when the job is scheduled, not when it is restored (the class's
module is the program's own code and already imported).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from jobify.exceptions import SerializationError
from jobify.serializers.base import type_name

__all__ = [
    "DATACLASS",
    "ENUM",
    "MODEL",
    "NAMEDTUPLE",
    "TypeRegistry",
    "class_kind",
    "class_ref",
]

_NAME = "ExtendedJSONSerializer"

DATACLASS = "dc"
NAMEDTUPLE = "nt"
ENUM = "enum"
MODEL = "pyd"
_KIND_NAMES = {DATACLASS: "dataclass", NAMEDTUPLE: "NamedTuple", ENUM: "Enum", MODEL: "model"}
KINDS_TEXT = "dataclasses, NamedTuples, Enums and pydantic models"


def _is_model(obj: type) -> bool:
    # Only when pydantic is already imported: a class cannot be a BaseModel otherwise, and
    # the check must not import pydantic for programs that do not use it.
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None) if pydantic is not None else None
    return base is not None and issubclass(obj, base) and obj is not base


def class_kind(obj: object) -> str | None:
    """Which rebuildable kind ``obj`` is, or None if it is none of them."""
    if not isinstance(obj, type):
        return None
    if issubclass(obj, Enum):
        return ENUM
    if dataclasses.is_dataclass(obj):
        return DATACLASS
    if issubclass(obj, tuple) and hasattr(obj, "_fields") and hasattr(obj, "_make"):
        return NAMEDTUPLE
    if _is_model(obj):
        return MODEL
    return None


def reference(cls: type) -> str:
    """The reference ``cls`` is stored under."""
    return f"{cls.__module__}:{cls.__qualname__}"


def class_ref(cls: type) -> str:
    """The reference under which ``cls`` is stored; checks now, at encoding time, that it
    names ``cls`` in its (already imported) module, so that a process that registers the
    same class can find it again."""
    qualname = cls.__qualname__
    ref = reference(cls)
    if "<locals>" in qualname:
        raise SerializationError(
            f"{_NAME} cannot serialize {type_name(cls)}: the class is defined inside a "
            "function, and classes are stored by import path; define it at module level"
        )
    found: object = sys.modules.get(cls.__module__)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not cls:
        raise SerializationError(
            f"{_NAME} cannot serialize {type_name(cls)}: {ref!r} does not name this class "
            "(it was redefined or shadowed, or its module is not imported under that name)"
        )
    return ref


def _field_hints(cls: type) -> Iterable[Any]:
    """The annotations of ``cls``'s fields, resolved in its module (no import)."""
    try:
        return typing.get_type_hints(cls).values()
    except Exception:  # an unresolvable forward reference: walk what is already an object
        annotations = getattr(cls, "__annotations__", {})
        return [v for v in annotations.values() if not isinstance(v, str | typing.ForwardRef)]


class TypeRegistry:
    """Reference -> class, for the classes one serializer may rebuild."""

    __slots__ = ("classes", "public")

    def __init__(self) -> None:
        self.classes: dict[str, tuple[str, type]] = {}
        """Reference -> (kind, class): what decoding consults."""
        self.public: dict[str, type] = {}
        """Reference -> class: what ``serializer.registry`` shows."""

    def add(self, cls: type, kind: str) -> None:
        ref = reference(cls)
        self.classes[ref] = (kind, cls)
        self.public[ref] = cls

    def add_types(self, types: Iterable[Any]) -> None:
        """Register classes the program names explicitly; anything else is a TypeError."""
        for cls in types:
            if class_kind(cls) is None:
                raise TypeError(
                    f"{_NAME} can only register {KINDS_TEXT}; got {cls!r} (other values are "
                    "stored as built-in JSON types and need no registration)"
                )
        self.add_hints(types)

    def add_hints(self, hints: Iterable[Any] | Mapping[str, Any]) -> None:
        """Register every rebuildable class named in ``hints`` (type annotations), however
        nested, and in the fields of those classes; other hints are ignored."""
        if isinstance(hints, Mapping):
            hints = hints.values()
        seen: dict[int, object] = {}  # id -> hint (kept alive, so ids are not reused)
        stack: list[Any] = list(hints)
        while stack:
            hint = stack.pop()
            if id(hint) in seen or isinstance(hint, str | typing.ForwardRef):
                continue
            seen[id(hint)] = hint
            stack.extend(self._inside(hint))

    def _inside(self, hint: Any) -> Iterable[Any]:
        """Register ``hint`` if it is a rebuildable class; return the hints it contains."""
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            return [type(v) for v in typing.get_args(hint) if isinstance(v, Enum)]
        if origin is typing.Annotated:
            return [hint.__origin__]  # the annotated type; the metadata is not a type hint
        if origin is not None:
            args = [a for a in typing.get_args(hint) if a is not Ellipsis]
            flat = [x for a in args for x in (a if isinstance(a, list) else [a])]  # Callable
            return [origin, *flat]
        if isinstance(hint, typing.TypeVar):
            return [hint.__bound__, *hint.__constraints__]
        supertype = getattr(hint, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            return [supertype]
        if not isinstance(hint, type):
            return ()
        kind = class_kind(hint)
        if kind is not None:
            self.add(hint, kind)
            return () if kind == ENUM else _field_hints(hint)
        if typing.is_typeddict(hint):
            return _field_hints(hint)
        return ()

    def resolve(self, ref: object, kind: str) -> Any:
        """The registered class stored as ``ref``, which must be of ``kind``; nothing is ever
        imported, and only a registered class can come back."""
        found = self.classes.get(ref) if type(ref) is str else None
        if found is None:
            if type(ref) is not str:
                raise SerializationError(f"{_NAME}: malformed class reference {ref!r:.80}")
            raise SerializationError(
                f"{_NAME}: class {ref!r:.200} is not registered, so it is not rebuilt "
                "(decoding never imports a module); register it: "
                "ExtendedJSONSerializer(types=[...]), or name it in a task's annotations"
            )
        found_kind, cls = found
        if found_kind != kind:
            raise SerializationError(
                f"{_NAME}: {ref!r} was stored as a {_KIND_NAMES.get(kind, kind)} but is a "
                f"{_KIND_NAMES[found_kind]} now"
            )
        return cls
