"""``OrjsonSerializer``: fast JSON through the optional ``orjson`` package."""

from __future__ import annotations

from jobify.serializers.base import LibrarySerializer, import_extra

__all__ = ["OrjsonSerializer"]


class OrjsonSerializer(LibrarySerializer):
    """JSON via `orjson <https://github.com/ijl/orjson>`_ (extra: ``pip install 'jobify[orjson]'``).

    What round-trips: ``dict`` with str keys, ``list``, ``str``, ``int`` (64-bit range; larger
    integers are an error), finite ``float``, ``bool``, ``None``. Note what orjson does to the
    rest, which is why this is best paired with a ``dumper``/``loader``:

    * tuples come back as lists; non-str dict keys are an error;
    * ``NaN``/``±Infinity`` are written as ``null`` by orjson (silently: they come back as
      ``None``);
    * dataclasses, ``datetime``/``date``/``time``, ``UUID`` and ``Enum`` are *written* natively
      (as objects, RFC 3339 strings, strings, values) but *read back* as that plain data, not as
      the original types;
    * anything else (``bytes``, ``Decimal``, sets, ...) raises
      :class:`~jobify.exceptions.SerializationError`.

    Constructing it without orjson installed raises
    :class:`~jobify.exceptions.MissingDependencyError`.
    """

    __slots__ = ()

    def __init__(self) -> None:
        """Import orjson now (not at ``import jobify.serializers``), so a missing extra is
        reported where the serializer is chosen."""
        orjson = import_extra("orjson", "orjson", "OrjsonSerializer")
        self._dumps = orjson.dumps
        self._loads = orjson.loads
