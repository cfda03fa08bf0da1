"""``CBORSerializer``: CBOR (RFC 8949) through the optional ``cbor2`` package."""

from __future__ import annotations

from jobify.serializers.base import LibrarySerializer, import_extra

__all__ = ["CBORSerializer"]


class CBORSerializer(LibrarySerializer):
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

    __slots__ = ()

    def __init__(self) -> None:
        """Import cbor2 now (not at ``import jobify.serializers``), so a missing extra is
        reported where the serializer is chosen."""
        cbor2 = import_extra("cbor2", "cbor", "CBORSerializer")
        self._dumps = cbor2.dumps
        self._loads = cbor2.loads
