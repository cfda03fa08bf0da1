"""``ArgumentCodec``: a task's bound arguments to bytes for storage, and back.

The scheduler core binds a call against the task's signature and hands the codec a mapping of
parameter name to value (a tuple for ``*args``, a dict for ``**kwargs``). The codec applies the
optional :class:`~jobify.typeadapter.Dumper`/:class:`~jobify.typeadapter.Loader` per argument,
guided by the parameter's type hint, and the :class:`~jobify.serializers.Serializer` to the
whole mapping. Its errors say which task and which argument failed, because the serializer
alone only knows that *some* value somewhere could not be written.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

from jobify.exceptions import SerializationError
from jobify.serializers.base import Serializer
from jobify.typeadapter import Dumper, Loader

__all__ = ["ArgumentCodec", "argument_hints", "register_task_types", "return_hint"]

_EMPTY = inspect.Parameter.empty


def argument_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The hints mapping :class:`ArgumentCodec` expects for ``func``'s parameters.

    String annotations are resolved (``from __future__ import annotations`` is common); the hint
    of ``*args: T`` is ``tuple[T, ...]`` and of ``**kwargs: T`` is ``dict[str, T]``, because the
    codec sees those parameters as one tuple and one dict. Unannotated parameters, and
    annotations that cannot be resolved, are left out (no hint).
    """
    try:
        resolved = typing.get_type_hints(func, include_extras=True)
    except Exception:
        # An unresolvable forward reference must not make the task unusable; keep the
        # annotations that are already objects and drop the unresolved strings.
        resolved = {
            k: v
            for k, v in inspect.get_annotations(func).items()
            if not isinstance(v, str | typing.ForwardRef)
        }
    hints: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        if name not in resolved:
            continue
        hint = resolved[name]
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            hint = tuple[hint, ...]  # type: ignore[valid-type]
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            hint = dict[str, hint]  # type: ignore[valid-type]
        hints[name] = hint
    return hints


def return_hint(func: Callable[..., Any]) -> Any:
    """The resolved return annotation of ``func`` (None when there is none or it cannot be
    resolved)."""
    try:
        return typing.get_type_hints(func, include_extras=True).get("return")
    except Exception:  # an unresolvable annotation: no hint
        return None


def register_task_types(serializer: Serializer, func: Callable[..., Any]) -> None:
    """Tell a serializer that keeps a registry of rebuildable classes (``register_hints``,
    as :class:`~jobify.serializers.ExtendedJSONSerializer` does) the classes ``func``'s
    parameter and return annotations name: the values its jobs store and return."""
    register = getattr(serializer, "register_hints", None)
    if register is None:
        return
    try:
        hints = [*argument_hints(func).values(), return_hint(func)]
    except (TypeError, ValueError):  # a callable without an inspectable signature: no hints
        return
    register(hints)


class ArgumentCodec:
    """Encodes and decodes the arguments of one app's jobs.

    ``encode`` is ``serializer.dumpb({name: dumper.dump(value, hint), ...})`` (without a dumper,
    the values as they are) and ``decode`` its inverse, with ``loader.load(data, hint)`` per
    argument. A parameter missing from ``hints`` gets ``inspect.Parameter.empty`` as its hint.

    Every failure is a :class:`~jobify.exceptions.SerializationError` naming the task and, where
    it can be found, the argument and its type. The happy path is a single serializer call; only
    after it fails are the arguments tried one by one to find the culprit.
    """

    __slots__ = ("_dumpb", "_loadb", "_serializer_name", "dumper", "loader", "serializer")

    def __init__(
        self,
        serializer: Serializer,
        dumper: Dumper | None = None,
        loader: Loader | None = None,
    ) -> None:
        """Use ``serializer`` for the argument mapping, ``dumper``/``loader`` per argument."""
        self.serializer = serializer
        self.dumper = dumper
        self.loader = loader
        # Bound once: encode/decode run for every durable job.
        self._dumpb = serializer.dumpb
        self._loadb = serializer.loadb
        self._serializer_name = type(serializer).__name__

    def encode(
        self, task_name: str, arguments: Mapping[str, Any], hints: Mapping[str, Any]
    ) -> bytes:
        """The arguments of a ``task_name`` job as bytes."""
        dumper = self.dumper
        payload: dict[str, Any]
        if dumper is None:
            payload = arguments if type(arguments) is dict else dict(arguments)
        else:
            payload = {}
            for name, value in arguments.items():
                try:
                    payload[name] = dumper.dump(value, hints.get(name, _EMPTY))
                except Exception as exc:
                    raise self._argument_error(task_name, name, value, exc) from exc
        try:
            return self._dumpb(payload)
        except Exception as exc:
            culprit = self._find_culprit(task_name, arguments, payload)
            if culprit is None:
                raise SerializationError(
                    f"cannot serialize the arguments of task {task_name!r} with "
                    f"{self._serializer_name}: {exc}; pass serializable values, or mark the "
                    "task durable=False"
                ) from exc
            raise culprit from culprit.__cause__

    def _find_culprit(
        self, task_name: str, arguments: Mapping[str, Any], payload: dict[str, Any]
    ) -> SerializationError | None:
        """The error for the first argument that fails on its own, or None if each one
        serializes alone (then only the combination fails; nothing to point at)."""
        for name, value in payload.items():
            try:
                self._dumpb({name: value})
            except Exception as exc:
                error = self._argument_error(task_name, name, arguments.get(name, value), exc)
                error.__cause__ = exc
                return error
        return None

    def _argument_error(
        self, task_name: str, name: str, value: Any, exc: BaseException
    ) -> SerializationError:
        return SerializationError(
            f"cannot serialize argument {name!r} ({type(value).__qualname__}) of task "
            f"{task_name!r} with {self._serializer_name}: {exc}; pass a serializable value, "
            "or mark the task durable=False"
        )

    def decode(self, task_name: str, data: bytes, hints: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of a ``task_name`` job from bytes written by :meth:`encode`."""
        try:
            raw = self._loadb(data)
        except Exception as exc:
            name = self._find_undecodable(data)
            where = f"argument {name!r}" if name is not None else "the arguments"
            raise SerializationError(
                f"cannot decode {where} of task {task_name!r} with {self._serializer_name}: {exc}"
            ) from exc
        if type(raw) is not dict:
            raise SerializationError(
                f"cannot decode the arguments of task {task_name!r} with "
                f"{self._serializer_name}: expected a mapping of argument names, got "
                f"{type(raw).__qualname__}"
            )
        loader = self.loader
        if loader is None:
            return raw
        loaded: dict[str, Any] = {}
        for name, value in raw.items():
            try:
                loaded[name] = loader.load(value, hints.get(name, _EMPTY))
            except Exception as exc:
                raise SerializationError(
                    f"cannot decode argument {name!r} of task {task_name!r}: {exc}"
                ) from exc
        return loaded

    def _find_undecodable(self, data: bytes) -> str | None:
        """Best effort, for the error message only: when the stored bytes are a JSON object (the
        JSON serializers), decode each argument on its own to find the one that fails."""
        try:
            document = json.loads(data)
        except Exception:
            return None  # not JSON (msgpack, CBOR, pickle) or not even valid: cannot split it
        if type(document) is not dict:
            return None
        for name, value in document.items():
            try:
                self._loadb(json.dumps({name: value}).encode())
            except Exception:
                return str(name)
        return None

    def __repr__(self) -> str:
        return (
            f"ArgumentCodec(serializer={self.serializer!r}, dumper={self.dumper!r}, "
            f"loader={self.loader!r})"
        )
