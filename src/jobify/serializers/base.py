"""The ``Serializer`` protocol and the helpers every format module shares.

A serializer turns a task's argument mapping into bytes for storage and back. Every failure,
whichever library raised it, surfaces as :class:`~jobify.exceptions.SerializationError` so that
callers (the argument codec, the storage restore path) need to handle exactly one error type.
"""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from jobify.exceptions import MissingDependencyError, SerializationError

__all__ = [
    "LibrarySerializer",
    "Serializer",
    "decode_error",
    "encode_error",
    "import_extra",
    "type_name",
]


@runtime_checkable
class Serializer(Protocol):
    """Turns Python objects into bytes and back.

    Implementations raise :class:`~jobify.exceptions.SerializationError` for every failure: an
    object of an unsupported type in :meth:`dumpb`, malformed or foreign bytes in :meth:`loadb`.
    """

    def dumpb(self, obj: Any) -> bytes:
        """Encode ``obj`` as bytes."""
        ...

    def loadb(self, data: bytes) -> Any:
        """Decode bytes produced by :meth:`dumpb` of the same serializer."""
        ...


def type_name(tp: type) -> str:
    """A readable name for ``tp``: ``int`` for builtins, ``module.QualName`` for the rest."""
    module = getattr(tp, "__module__", None)
    qualname = getattr(tp, "__qualname__", None) or getattr(tp, "__name__", repr(tp))
    if module in (None, builtins.__name__):
        return str(qualname)
    return f"{module}.{qualname}"


def encode_error(serializer: str, obj: object, exc: BaseException) -> SerializationError:
    """The error for an object that ``serializer`` cannot encode (the cause is chained by the
    caller with ``raise ... from exc``)."""
    return SerializationError(
        f"{serializer} cannot serialize a value of type {type_name(type(obj))}: {exc}"
    )


def decode_error(serializer: str, exc: BaseException) -> SerializationError:
    """The error for bytes that ``serializer`` cannot decode."""
    return SerializationError(
        f"{serializer} cannot decode the data ({type_name(type(exc))}: {exc}); "
        "it is corrupted or was written by a different serializer"
    )


def import_extra(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency, or raise MissingDependencyError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra, feature) from exc


class LibrarySerializer:
    """A serializer that is one ``dumps``/``loads`` pair of a third-party library.

    Subclasses import the library in ``__init__`` (so a missing extra is reported where the
    serializer is chosen, not at ``import jobify.serializers``) and set the two functions; the
    error mapping to :class:`~jobify.exceptions.SerializationError` lives here, once.
    """

    __slots__ = ("_dumps", "_loads")

    _dumps: Callable[[Any], bytes]
    _loads: Callable[[bytes], Any]

    def dumpb(self, obj: Any) -> bytes:
        """Encode ``obj``; every library error becomes a SerializationError naming the type."""
        try:
            return self._dumps(obj)
        except Exception as exc:  # TypeError/ValueError/OverflowError or the library's own
            raise encode_error(type(self).__name__, obj, exc) from exc

    def loadb(self, data: bytes) -> Any:
        """Decode bytes written by :meth:`dumpb`."""
        try:
            return self._loads(data)
        except Exception as exc:
            raise decode_error(type(self).__name__, exc) from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
