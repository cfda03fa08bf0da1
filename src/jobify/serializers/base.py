"""The ``Serializer`` protocol and the helpers every format module shares.

A serializer turns a task's argument mapping into bytes for storage and back. Every failure,
whichever library raised it, surfaces as :class:`~jobify.exceptions.SerializationError` so that
callers (the argument codec, the storage restore path) need to handle exactly one error type.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol, runtime_checkable

from jobify.exceptions import SerializationError

__all__ = ["Serializer", "decode_error", "encode_error", "type_name"]


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
