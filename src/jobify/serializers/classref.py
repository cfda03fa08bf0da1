"""Class references: how ExtendedJSONSerializer stores a class and finds it again, safely.

A dataclass, NamedTuple or Enum is stored as ``"module:qualname"``. Encoding checks that the
reference imports back to the very same class, so a value that could never be restored is
refused when the job is scheduled, not when it is restored. Decoding imports the module if
needed and returns the object only if it is a class of the expected kind: this is the one place
that turns stored text into something callable, so it is kept small and strict.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from enum import Enum
from typing import Any

from jobify.exceptions import SerializationError
from jobify.serializers.base import type_name

__all__ = ["DATACLASS", "ENUM", "NAMEDTUPLE", "class_kind", "class_ref", "resolve_class"]

_NAME = "ExtendedJSONSerializer"

DATACLASS = "dc"
NAMEDTUPLE = "nt"
ENUM = "enum"
_KIND_NAMES = {DATACLASS: "dataclass", NAMEDTUPLE: "NamedTuple", ENUM: "Enum"}

# "module:qualname" -> (kind, class). Filled when a class is first encoded (after checking that
# the reference imports back to it) or first decoded (after checking its kind).
_CLASSES: dict[str, tuple[str, type]] = {}


def class_kind(obj: object) -> str | None:
    """Which reconstructible kind ``obj`` is, or None if it is none of them."""
    if not isinstance(obj, type):
        return None
    if issubclass(obj, Enum):
        return ENUM
    if dataclasses.is_dataclass(obj):
        return DATACLASS
    if issubclass(obj, tuple) and hasattr(obj, "_fields") and hasattr(obj, "_make"):
        return NAMEDTUPLE
    return None


def _import_ref(ref: str) -> object:
    """The object that ``"module:qualname"`` names (importing the module if needed)."""
    module_name, _, qualname = ref.partition(":")
    if not module_name or not qualname:
        raise SerializationError(f"{_NAME}: malformed class reference {ref!r}")
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise SerializationError(
                f"{_NAME}: unknown class {ref!r}: module {module_name!r} cannot be imported "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    found: object = module
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise SerializationError(
                f"{_NAME}: unknown class {ref!r}: {module_name!r} has no {qualname!r} "
                "(was it renamed or moved?)"
            ) from None
    return found


def class_ref(cls: type, kind: str) -> str:
    """The reference under which ``cls`` is stored; checks now, at encoding time, that it
    imports back to ``cls``, so a job that could never be restored is refused when scheduled."""
    qualname = cls.__qualname__
    ref = f"{cls.__module__}:{qualname}"
    if "<locals>" in qualname:
        raise SerializationError(
            f"{_NAME} cannot serialize {type_name(cls)}: the class is defined inside a "
            "function, and classes are stored by import path; define it at module level"
        )
    try:
        found = _import_ref(ref)
    except SerializationError as exc:
        raise SerializationError(
            f"{_NAME} cannot serialize {type_name(cls)}: it cannot be found again by import ({exc})"
        ) from exc
    if found is not cls:
        raise SerializationError(
            f"{_NAME} cannot serialize {type_name(cls)}: {ref!r} names a different object "
            "(the class was redefined or shadowed)"
        )
    _CLASSES[ref] = (kind, cls)
    return ref


def resolve_class(ref: object, kind: str) -> Any:
    """The class stored as ``ref``, which must be of ``kind``. Nothing else is ever returned,
    so decoding can only construct dataclasses, NamedTuples and Enums."""
    if type(ref) is not str:
        raise SerializationError(f"{_NAME}: malformed class reference {ref!r}")
    cached = _CLASSES.get(ref)
    if cached is None:
        found = _import_ref(ref)
        found_kind = class_kind(found)
        if found_kind is None:
            raise SerializationError(
                f"{_NAME}: {ref!r} is not a dataclass, NamedTuple or Enum; refusing to construct it"
            )
        assert isinstance(found, type)  # class_kind() only accepts classes
        cached = _CLASSES[ref] = (found_kind, found)
    found_kind, cls = cached
    if found_kind != kind:
        raise SerializationError(
            f"{_NAME}: {ref!r} was stored as a {_KIND_NAMES[kind]} but is a "
            f"{_KIND_NAMES[found_kind]} now"
        )
    return cls
