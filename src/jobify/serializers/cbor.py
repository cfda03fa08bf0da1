"""``CBORSerializer``: CBOR (RFC 8949) through the optional ``cbor2`` package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobify.exceptions import MissingDependencyError
from jobify.serializers.base import decode_error, encode_error

__all__ = ["CBORSerializer"]


class CBORSerializer:
    """CBOR via cbor2 (extra: ``pip install 'jobify[cbor]'``).

    CBOR has more native types than JSON; cbor2 round-trips:

    * ``dict`` (keys of any supported hashable type, including tuples), ``list``, ``str``,
      ``bytes``, ``int`` of any size (bignum tags), ``float`` (including ``NaN``/``±Infinity``),
      ``bool``, ``None``;
    * finite ``Decimal`` (tag 4; ``NaN``/``Infinity`` decimals come back as *floats*),
      ``UUID`` (tag 37), ``date``;
    * aware ``datetime`` values (tag 0, RFC 3339 text): the same wall time and UTC offset
      come back, but as a fixed-offset ``datetime.timezone`` (a ``ZoneInfo`` key and ``fold``
      are lost); naive datetimes are an error (no default zone is assumed);
    * ``set`` (tag 258); a ``frozenset`` comes back as a ``set``.

    Not kept: tuples come back as lists (except as dict keys, where they stay tuples);
    ``time``, ``timedelta``, dataclasses, ``Enum`` and ``Path`` raise
    :class:`~jobify.exceptions.SerializationError`.

    Constructing it without cbor2 installed raises
    :class:`~jobify.exceptions.MissingDependencyError`.
    """

    __slots__ = ("_dumps", "_loads")

    def __init__(self) -> None:
        """Import cbor2 now (not at ``import jobify.serializers``), so a missing extra is
        reported where the serializer is chosen."""
        try:
            import cbor2
        except ImportError as exc:
            raise MissingDependencyError("cbor2", "cbor", "CBORSerializer") from exc
        self._dumps: Callable[[Any], bytes] = cbor2.dumps
        self._loads: Callable[[bytes], Any] = cbor2.loads

    def dumpb(self, obj: Any) -> bytes:
        """Encode ``obj`` as CBOR bytes."""
        try:
            return self._dumps(obj)
        except Exception as exc:  # cbor2.CBOREncodeError, or TypeError/ValueError from values
            raise encode_error("CBORSerializer", obj, exc) from exc

    def loadb(self, data: bytes) -> Any:
        """Decode CBOR bytes."""
        try:
            return self._loads(data)
        except Exception as exc:
            raise decode_error("CBORSerializer", exc) from exc

    def __repr__(self) -> str:
        return "CBORSerializer()"
