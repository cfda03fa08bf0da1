"""``MsgpackSerializer``: MessagePack through the optional ``msgpack`` package."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from jobify.exceptions import MissingDependencyError
from jobify.serializers.base import decode_error, encode_error

__all__ = ["MsgpackSerializer"]


class MsgpackSerializer:
    """MessagePack via `msgpack <https://msgpack.org>`_ (extra: ``pip install 'jobify[msgpack]'``).

    What round-trips: ``dict``, ``list``, ``str``, ``bytes`` (kept apart from ``str``:
    ``use_bin_type=True`` when writing, ``raw=False`` when reading), ``int`` (from -2**63 to
    2**64-1), ``float`` (including ``NaN``/``±Infinity``), ``bool``, ``None``. The choices made:

    * ``use_list=True``: arrays come back as lists, so tuples come back as lists. The other
      choice would turn *every* list into a tuple, and lists are the common case.
    * ``strict_map_key=False``: dict keys of type ``int``/``float``/``bool``/``None``/``bytes``
      round-trip (msgpack's default only accepts str/bytes keys when reading). Tuple keys do
      *not*: they are read back as lists, which cannot be dict keys, so decoding fails.
    * ``datetime=True`` / ``timestamp=3``: *aware* ``datetime`` values are written as the
      MessagePack timestamp extension and come back as the same instant with ``tzinfo=UTC``
      (the original zone is not kept); naive datetimes are an error.
    * anything else (dataclasses, ``Decimal``, ``UUID``, sets, ...) raises
      :class:`~jobify.exceptions.SerializationError`.

    Constructing it without msgpack installed raises
    :class:`~jobify.exceptions.MissingDependencyError`.
    """

    __slots__ = ("_dumps", "_loads")

    def __init__(self) -> None:
        """Import msgpack now (not at ``import jobify.serializers``), so a missing extra is
        reported where the serializer is chosen."""
        try:
            import msgpack
        except ImportError as exc:
            raise MissingDependencyError("msgpack", "msgpack", "MsgpackSerializer") from exc
        self._dumps: Callable[[Any], bytes] = partial(
            msgpack.packb, use_bin_type=True, datetime=True
        )
        self._loads: Callable[[bytes], Any] = partial(
            msgpack.unpackb, raw=False, use_list=True, strict_map_key=False, timestamp=3
        )

    def dumpb(self, obj: Any) -> bytes:
        """Encode ``obj`` as MessagePack bytes."""
        try:
            return self._dumps(obj)
        # msgpack reports an unsupported type as TypeError, a too-large int as OverflowError
        # and a naive datetime as ValueError.
        except Exception as exc:
            raise encode_error("MsgpackSerializer", obj, exc) from exc

    def loadb(self, data: bytes) -> Any:
        """Decode MessagePack bytes."""
        try:
            return self._loads(data)
        except Exception as exc:
            raise decode_error("MsgpackSerializer", exc) from exc

    def __repr__(self) -> str:
        return "MsgpackSerializer()"
