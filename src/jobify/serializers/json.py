"""``JSONSerializer``: strict, interoperable JSON through the standard library."""

from __future__ import annotations

import json
from typing import Any

from jobify.serializers.base import decode_error, encode_error

__all__ = ["JSONSerializer"]


class JSONSerializer:
    """Plain JSON: ``dict`` (str keys), ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``.

    This is what the app uses when a ``dumper``/``loader`` (e.g.
    :class:`~jobify.typeadapter.PydanticConverter`) turns arguments into plain data first.

    What round-trips, and what does not:

    * tuples are written as JSON arrays and come back as lists;
    * dict keys of type ``int``/``float``/``bool``/``None`` are turned into strings by JSON
      itself (``{1: "a"}`` comes back as ``{"1": "a"}``); other key types are an error;
    * subclasses of ``str``/``int``/``float`` (e.g. ``IntEnum``, ``StrEnum`` members) are written
      as their plain value and come back as the plain base type;
    * ``NaN`` and ``±Infinity`` are rejected with
      :class:`~jobify.exceptions.SerializationError`, because they are not valid JSON and other
      readers of the store (e.g. PostgreSQL ``jsonb``) reject them;
    * everything else (``bytes``, ``datetime``, dataclasses, ...) raises
      :class:`~jobify.exceptions.SerializationError`; use
      :class:`~jobify.serializers.ExtendedJSONSerializer` or a ``dumper`` for those.

    The output is ASCII-only (non-ASCII text is ``\\u``-escaped), so even strings with lone
    surrogates round-trip.
    """

    __slots__ = ()

    # One encoder/decoder for all calls: ``json.dumps`` with non-default options builds a new
    # ``JSONEncoder`` per call, which costs more than encoding a small payload.
    _encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    _decoder = json.JSONDecoder()

    def dumpb(self, obj: Any) -> bytes:
        """Encode ``obj`` as compact JSON bytes."""
        try:
            return self._encoder.encode(obj).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise encode_error("JSONSerializer", obj, exc) from exc

    def loadb(self, data: bytes) -> Any:
        """Decode JSON bytes."""
        try:
            return self._decoder.decode(data.decode())
        except Exception as exc:  # anything wrong with foreign bytes is a decode error
            raise decode_error("JSONSerializer", exc) from exc

    def __repr__(self) -> str:
        return "JSONSerializer()"
