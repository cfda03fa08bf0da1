"""Type-adapter hooks: turn task arguments into plain data and back, guided by type hints.

A :class:`Dumper` runs on each argument before the serializer, a :class:`Loader` on each one
after it; both receive the parameter's type hint. With them, a plain-data serializer such as
:class:`~jobify.serializers.JSONSerializer` can carry rich types (pydantic models, dataclasses,
datetimes, ...): the hint says what to rebuild. :class:`PydanticConverter` implements both with
pydantic; anything with the same two methods (e.g. an adaptix retort wrapped in a small class)
works too.

A hint is ``inspect.Parameter.empty`` when the parameter is not annotated. For ``*args`` the
value is a tuple and the hint should describe the tuple (``tuple[int, ...]``), for ``**kwargs``
a dict (``dict[str, int]``); the app builds the hints that way from the task's annotations.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Protocol, runtime_checkable

from jobify.exceptions import MissingDependencyError, SerializationError

__all__ = ["Dumper", "Loader", "PydanticConverter"]


@runtime_checkable
class Dumper(Protocol):
    """Turns one argument into data the serializer can write."""

    def dump(self, value: Any, hint: Any) -> Any:
        """Return ``value`` as plain serializable data; ``hint`` is the parameter's type hint
        (``inspect.Parameter.empty`` when there is none)."""
        ...


@runtime_checkable
class Loader(Protocol):
    """Turns data read by the serializer back into one argument."""

    def load(self, data: Any, hint: Any) -> Any:
        """Return the argument rebuilt from ``data``; ``hint`` is the parameter's type hint
        (``inspect.Parameter.empty`` when there is none)."""
        ...


def _no_hint(hint: Any) -> bool:
    return hint is inspect.Parameter.empty or hint is Any or hint is object


class PydanticConverter:
    """A :class:`Dumper` and :class:`Loader` backed by ``pydantic.TypeAdapter``
    (extra: ``pip install 'jobify[pydantic]'``).

    ``dump`` is ``TypeAdapter(hint).dump_python(value, mode="json")`` (JSON-ready data, so it
    pairs with :class:`~jobify.serializers.JSONSerializer`) and ``load`` is
    ``TypeAdapter(hint).validate_python(data)``: a ``BaseModel``, ``list[Model]``,
    ``datetime`` or ``UUID`` argument comes back as itself. Adapters are built once per hint and
    cached.

    Rules:

    * no hint, ``Any`` or ``object``: the value passes through unchanged;
    * a hint pydantic cannot build a schema for (an arbitrary class such as ``socket.socket``):
      the value passes through unchanged too, and it is left to the serializer to accept or
      refuse it (so the error names the argument and type, not a pydantic schema problem);
    * a value that does not match its hint is an error at dump time (pydantic's serialization
      warnings are raised as errors), so a job that could not be restored is refused when it
      is scheduled. The codec reports it as :class:`~jobify.exceptions.SerializationError`.

    Constructing it without pydantic installed raises
    :class:`~jobify.exceptions.MissingDependencyError`.
    """

    __slots__ = ("_adapters", "_lock", "_type_adapter")

    def __init__(self) -> None:
        """Import pydantic now, so a missing extra is reported where the converter is made."""
        try:
            import pydantic
        except ImportError as exc:
            raise MissingDependencyError("pydantic", "pydantic", "PydanticConverter") from exc
        self._type_adapter: Any = pydantic.TypeAdapter
        # hint -> adapter, or None when pydantic cannot handle the hint (pass-through).
        self._adapters: dict[Any, Any] = {}
        # Jobs may be scheduled from threads (sync tasks run in a thread pool); building an
        # adapter twice is harmless, but keep the cache consistent.
        self._lock = threading.Lock()

    def _adapter(self, hint: Any) -> Any:
        try:
            return self._adapters[hint]
        except KeyError:
            pass
        except TypeError:  # an unhashable hint (e.g. Annotated with a dict): do not cache
            return self._build(hint)
        adapter = self._build(hint)
        with self._lock:
            self._adapters.setdefault(hint, adapter)
        return adapter

    def _build(self, hint: Any) -> Any:
        from pydantic.errors import PydanticSchemaGenerationError

        try:
            return self._type_adapter(hint)
        except PydanticSchemaGenerationError:
            return None

    def dump(self, value: Any, hint: Any) -> Any:
        """``value`` as JSON-ready data according to ``hint``."""
        if _no_hint(hint):
            return value
        adapter = self._adapter(hint)
        if adapter is None:
            return value
        try:
            return adapter.dump_python(value, mode="json", warnings="error")
        except Exception as exc:
            raise SerializationError(
                f"PydanticConverter cannot dump a value of type {type(value).__qualname__} "
                f"as {hint!r}: {exc}"
            ) from exc

    def load(self, data: Any, hint: Any) -> Any:
        """The value of type ``hint`` validated from ``data``."""
        if _no_hint(hint):
            return data
        adapter = self._adapter(hint)
        if adapter is None:
            return data
        try:
            return adapter.validate_python(data)
        except Exception as exc:
            raise SerializationError(
                f"PydanticConverter cannot load {hint!r} from the stored data: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return "PydanticConverter()"
