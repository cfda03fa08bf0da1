"""``UnsafePickleSerializer``: pickle, for trusted stores only."""

from __future__ import annotations

import pickle
from typing import Any

from jobify.serializers.base import decode_error, encode_error

__all__ = ["UnsafePickleSerializer"]


class UnsafePickleSerializer:
    """Arguments as :mod:`pickle` data: round-trips almost any picklable object.

    **Unsafe, hence opt-in only.** Unpickling can execute arbitrary code: a pickle stream names
    callables that are imported and called while loading. Anyone who can write to the job store
    (the SQLite file, the PostgreSQL table, a backup being restored) can therefore run any code
    in every process that restores jobs from it. Use it only when the store is as trusted as
    your code; prefer :class:`~jobify.serializers.ExtendedJSONSerializer`, which imports nothing
    and only rebuilds the classes in its registry.

    Pickle also ties stored jobs to your code's layout: renaming or moving a class makes old
    records undecodable (reported as :class:`~jobify.exceptions.SerializationError`).
    """

    __slots__ = ("protocol",)

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        """``protocol`` is the pickle protocol used for writing (reading accepts any)."""
        self.protocol = protocol

    def dumpb(self, obj: Any) -> bytes:
        """Pickle ``obj``."""
        try:
            return pickle.dumps(obj, protocol=self.protocol)
        # pickle reports unpicklable objects as PicklingError, TypeError or AttributeError
        # (local classes/lambdas), depending on where it gives up.
        except Exception as exc:
            raise encode_error("UnsafePickleSerializer", obj, exc) from exc

    def loadb(self, data: bytes) -> Any:
        """Unpickle ``data``; see the class docstring for why this is unsafe."""
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise decode_error("UnsafePickleSerializer", exc) from exc

    def __repr__(self) -> str:
        return f"UnsafePickleSerializer(protocol={self.protocol})"
