"""``MsgpackSerializer``: MessagePack through the optional ``msgpack`` package."""

from __future__ import annotations

from functools import partial

from jobify.serializers.base import LibrarySerializer, import_extra

__all__ = ["MsgpackSerializer"]


class MsgpackSerializer(LibrarySerializer):
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

    __slots__ = ()

    def __init__(self) -> None:
        """Import msgpack now (not at ``import jobify.serializers``), so a missing extra is
        reported where the serializer is chosen."""
        msgpack = import_extra("msgpack", "msgpack", "MsgpackSerializer")
        self._dumps = partial(msgpack.packb, use_bin_type=True, datetime=True)
        self._loads = partial(
            msgpack.unpackb, raw=False, use_list=True, strict_map_key=False, timestamp=3
        )
