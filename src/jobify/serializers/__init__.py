"""Serializers: how task arguments become bytes in storage and come back.

Every serializer implements :class:`Serializer` and raises
:class:`~jobify.exceptions.SerializationError` on any failure. The optional formats (orjson,
msgpack, CBOR) import their library when constructed, not here, so importing this package never
needs the extras.
"""

from __future__ import annotations

from jobify.serializers.base import Serializer
from jobify.serializers.cbor import CBORSerializer
from jobify.serializers.extended_json import ExtendedJSONSerializer
from jobify.serializers.json import JSONSerializer
from jobify.serializers.msgpack import MsgpackSerializer
from jobify.serializers.orjson import OrjsonSerializer
from jobify.serializers.pickle import UnsafePickleSerializer

__all__ = [
    "CBORSerializer",
    "ExtendedJSONSerializer",
    "JSONSerializer",
    "MsgpackSerializer",
    "OrjsonSerializer",
    "Serializer",
    "UnsafePickleSerializer",
]
