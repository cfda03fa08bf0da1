"""ArgumentCodec, argument_hints and PydanticConverter."""

from __future__ import annotations

import inspect
import socket
import sys
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pydantic
import pytest
from serializer_samples import Level, Point, assert_same

import jobify.typeadapter
from jobify._arguments import ArgumentCodec, argument_hints
from jobify.exceptions import MissingDependencyError, SerializationError
from jobify.serializers import ExtendedJSONSerializer, JSONSerializer, MsgpackSerializer
from jobify.typeadapter import Dumper, Loader, PydanticConverter


class Address(pydantic.BaseModel):
    city: str
    zip_code: str


class User(pydantic.BaseModel):
    id: UUID
    name: str
    created: datetime
    addresses: list[Address] = []


def send_mail(
    user: User, to: list[Address], *extra: Address, retries: int = 3, **meta: int
) -> None:
    pass


def untyped(a, b=1):  # type: ignore[no-untyped-def]
    pass


def make_user() -> User:
    return User(
        id=uuid4(),
        name="ann",
        created=datetime(2024, 5, 1, 12, tzinfo=UTC),
        addresses=[Address(city="Oslo", zip_code="0150")],
    )


class CountingSerializer(ExtendedJSONSerializer):
    def __init__(self) -> None:
        super().__init__()
        self.dumps = 0

    def dumpb(self, obj: Any) -> bytes:
        self.dumps += 1
        return super().dumpb(obj)


# ------------------------------------------------------------------------------------------
# Without a dumper/loader (the default: ExtendedJSONSerializer)
# ------------------------------------------------------------------------------------------


def test_roundtrip_default() -> None:
    codec = ArgumentCodec(ExtendedJSONSerializer())
    arguments = {"x": 1, "args": (Point(1, 2.0), Level.HIGH), "kwargs": {"k": {1, 2}}}
    data = codec.encode("t", arguments, {})
    assert_same(arguments, codec.decode("t", data, {}))


def test_happy_path_is_one_serializer_call() -> None:
    serializer = CountingSerializer()
    codec = ArgumentCodec(serializer)
    codec.encode("t", {"a": 1, "b": 2, "c": 3}, {})
    assert serializer.dumps == 1


def test_error_names_task_argument_and_type() -> None:
    serializer = CountingSerializer()
    codec = ArgumentCodec(serializer)
    with socket.socket() as sock, pytest.raises(SerializationError) as info:
        codec.encode("send_mail", {"to": "a@b.c", "conn": sock, "n": 1}, {})
    message = str(info.value)
    assert message.startswith(
        "cannot serialize argument 'conn' (socket) of task 'send_mail' with "
        "CountingSerializer: ExtendedJSONSerializer cannot serialize a value of type socket.socket"
    )
    assert message.endswith("pass a serializable value, or mark the task durable=False")
    assert isinstance(info.value.__cause__, SerializationError)
    # one failed call for the whole mapping, then one per argument up to the culprit
    assert serializer.dumps == 1 + 2


def test_culprit_inside_a_container_names_the_outer_argument() -> None:
    codec = ArgumentCodec(ExtendedJSONSerializer())
    with pytest.raises(SerializationError, match=r"argument 'items' \(list\).*object"):
        codec.encode("t", {"ok": 1, "items": [1, object()]}, {})


def test_no_single_culprit() -> None:
    class PickyAboutPairs(ExtendedJSONSerializer):
        def dumpb(self, obj: Any) -> bytes:
            if len(obj) > 1:
                raise SerializationError("too many")
            return super().dumpb(obj)

    with pytest.raises(SerializationError, match=r"the arguments of task 't'.*too many"):
        ArgumentCodec(PickyAboutPairs()).encode("t", {"a": 1, "b": 2}, {})


def test_decode_garbage_names_task() -> None:
    codec = ArgumentCodec(ExtendedJSONSerializer())
    with pytest.raises(SerializationError, match="arguments of task 'report'"):
        codec.decode("report", b"\x00garbage", {})
    with pytest.raises(SerializationError, match="expected a mapping"):
        codec.decode("report", b"[1, 2]", {})


def test_decode_names_the_undecodable_argument() -> None:
    codec = ArgumentCodec(ExtendedJSONSerializer())
    data = b'{"a":1,"b":{"$t":"dc","$c":"gone_module:Thing"}}'
    with pytest.raises(SerializationError, match=r"argument 'b' of task 'report'.*gone_module"):
        codec.decode("report", data, {})


def test_decode_with_a_non_json_serializer() -> None:
    codec = ArgumentCodec(MsgpackSerializer())
    assert codec.decode("t", codec.encode("t", {"b": b"\x00"}, {}), {}) == {"b": b"\x00"}
    with pytest.raises(SerializationError, match="the arguments of task 't'"):
        codec.decode("t", b"\xc1", {})


# ------------------------------------------------------------------------------------------
# argument_hints
# ------------------------------------------------------------------------------------------


def test_argument_hints_wrap_var_parameters() -> None:
    hints = argument_hints(send_mail)
    assert hints == {
        "user": User,
        "to": list[Address],
        "extra": tuple[Address, ...],
        "retries": int,
        "meta": dict[str, int],
    }
    assert argument_hints(untyped) == {}


def test_argument_hints_survive_unresolvable_annotations() -> None:
    def f(a: int, b: DoesNotExist) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    f.__annotations__["a"] = int  # evaluated; "b" stays an unresolvable string
    assert argument_hints(f) == {"a": int}


# ------------------------------------------------------------------------------------------
# PydanticConverter
# ------------------------------------------------------------------------------------------


def bind(func: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    bound = inspect.signature(func).bind(*args, **kwargs)
    return dict(bound.arguments)


def test_pydantic_models_roundtrip_through_json() -> None:
    conv = PydanticConverter()
    assert isinstance(conv, Dumper)
    assert isinstance(conv, Loader)
    codec = ArgumentCodec(JSONSerializer(), dumper=conv, loader=conv)
    hints = argument_hints(send_mail)
    user = make_user()
    arguments = bind(
        send_mail,
        user,
        [Address(city="A", zip_code="1"), Address(city="B", zip_code="2")],
        Address(city="C", zip_code="3"),
        retries=5,
        priority=1,
    )
    data = codec.encode("send_mail", arguments, hints)
    decoded = codec.decode("send_mail", data, hints)
    assert decoded == arguments
    assert type(decoded["user"]) is User
    assert type(decoded["user"].addresses[0]) is Address
    assert type(decoded["to"][1]) is Address
    assert type(decoded["extra"]) is tuple
    assert decoded["meta"] == {"priority": 1}
    # what is stored is plain JSON
    assert b'"city":"A"' in data


def test_pydantic_without_hints_passes_values_through() -> None:
    conv = PydanticConverter()
    codec = ArgumentCodec(JSONSerializer(), dumper=conv, loader=conv)
    arguments = {"a": [1, "x"], "b": {"k": None}}
    assert codec.decode("t", codec.encode("t", arguments, {}), {}) == arguments
    assert conv.dump(5, Any) == 5
    assert conv.load("5", inspect.Parameter.empty) == "5"


def test_pydantic_adapters_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    import pydantic

    built: list[Any] = []
    real = pydantic.TypeAdapter

    def counting(hint: Any) -> Any:
        built.append(hint)
        return real(hint)

    monkeypatch.setattr(pydantic, "TypeAdapter", counting)
    conv = PydanticConverter()
    value = [Address(city="Oslo", zip_code="0150")]
    for _ in range(3):
        assert conv.load(conv.dump(value, list[Address]), list[Address]) == value
    assert built == [list[Address]]  # one adapter per hint, built once


def test_pydantic_value_not_matching_hint_fails_at_encode() -> None:
    conv = PydanticConverter()
    codec = ArgumentCodec(JSONSerializer(), dumper=conv, loader=conv)
    with pytest.raises(SerializationError, match=r"argument 'user' \(str\) of task 't'"):
        codec.encode("t", {"user": "not a user"}, {"user": User})


def test_pydantic_unknown_type_is_left_to_the_serializer() -> None:
    conv = PydanticConverter()
    codec = ArgumentCodec(JSONSerializer(), dumper=conv, loader=conv)
    with (
        socket.socket() as sock,
        pytest.raises(
            SerializationError, match=r"argument 'conn' \(socket\) of task 't' with JSONSerializer"
        ),
    ):
        codec.encode("t", {"conn": sock}, {"conn": socket.socket})


def test_pydantic_load_failure_names_argument() -> None:
    conv = PydanticConverter()
    codec = ArgumentCodec(JSONSerializer(), dumper=conv, loader=conv)
    with pytest.raises(SerializationError, match="argument 'user' of task 't'"):
        codec.decode("t", b'{"user": {"name": 1}}', {"user": User})


def test_pydantic_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)
    with pytest.raises(MissingDependencyError, match=r"jobify\[pydantic\]"):
        PydanticConverter()


def test_typeadapter_public_names() -> None:
    assert sorted(jobify.typeadapter.__all__) == ["Dumper", "Loader", "PydanticConverter"]
