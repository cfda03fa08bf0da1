"""ExtendedJSONSerializer (and UnsafePickleSerializer, which must handle the same values)."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import pathlib
import socket
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serializer_samples import (
    TAG,
    Box,
    Color,
    Derived,
    FrozenBox,
    Level,
    Mode,
    Movie,
    Outer,
    Pair,
    Perm,
    Point,
    SlotBox,
    assert_same,
    extended_values,
)

from jobify.exceptions import SerializationError
from jobify.serializers import ExtendedJSONSerializer, Serializer, UnsafePickleSerializer

S = ExtendedJSONSerializer()


def roundtrip(value: Any) -> Any:
    data = S.dumpb(value)
    assert isinstance(data, bytes)
    return S.loadb(data)


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"non-standard JSON constant {name} in the output")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extended_values)
def test_roundtrip_property(value: Any) -> None:
    data = S.dumpb(value)
    # The output is strict JSON: no NaN/Infinity literals, ASCII only.
    json.loads(data, parse_constant=_reject_constant)
    assert data.isascii()
    assert_same(value, S.loadb(data))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extended_values)
def test_pickle_roundtrip_property(value: Any) -> None:
    p = UnsafePickleSerializer()
    assert_same(value, p.loadb(p.dumpb(value)))


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, "x", None, True, {"c": []}]},
        [],
        {},
        "",
        0,
        -0.0,
        "naïve ☃ \ud800",  # non-ASCII and a lone surrogate
    ],
)
def test_plain_json_takes_the_fast_path(value: Any) -> None:
    data = S.dumpb(value)
    assert TAG.encode() not in data
    assert data == json.dumps(value, separators=(",", ":")).encode()
    assert_same(value, S.loadb(data))


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1: "a"},
        {(1, 2): "a", frozenset({3}): "b"},
        {TAG: "dt", "v": "2020-01-01T00:00:00"},  # looks tagged, is user data
        {"x": {TAG: "uuid"}},
        [{TAG: None}],
        Level.LOW,
        Mode.READ,
        Perm.R | Perm.X,
        Color.GREEN,
        {"nan": math.nan, "inf": math.inf, "ninf": -math.inf},
        b"\x00\xff",
        bytearray(b"ab"),
        {1, 2},
        frozenset({"a"}),
        timedelta(days=-3, seconds=5, microseconds=7),
        uuid.UUID(int=42),
        Decimal("NaN"),
        Decimal("-sNaN"),
        Decimal("-Infinity"),
        Decimal("-0.000"),
        Decimal("1E+30"),
        pathlib.PurePosixPath("/a/b"),
        pathlib.PureWindowsPath(r"C:\x\y"),
        pathlib.Path("rel/x"),
        date(1, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime(2021, 11, 7, 1, 30, fold=1),  # naive with fold
        datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        datetime(2021, 3, 14, 2, 30, tzinfo=ZoneInfo("America/New_York")),  # imaginary
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30), "IST")),
        datetime(2020, 1, 1, tzinfo=timezone(-timedelta(hours=23, microseconds=1))),
        time(23, 59, 59, 1, tzinfo=ZoneInfo("Europe/Paris"), fold=1),
        time(1, tzinfo=timezone(timedelta(hours=-2))),
        Point(1, 2.5),
        Derived(21),
        FrozenBox(FrozenBox((1, "a"))),
        SlotBox([1, {2: 3}], "s"),
        Pair(Pair(1, 2), [Point(0, 0.0)]),
        Outer(Point(1, 1.0), [Point(2, 2.0)], datetime(2020, 1, 1), frozenset({"t"})),
        Movie(title="Heat", year=1995),
        {"args": (1, Box({"k": (Level.HIGH,)})), "kwargs": {"when": date(2020, 2, 29)}},
    ],
    ids=repr,
)
def test_examples_roundtrip_exactly(value: Any) -> None:
    assert_same(value, roundtrip(value))


def test_typeddict_stays_a_plain_dict() -> None:
    movie = Movie(title="Heat", year=1995)
    assert S.dumpb(movie) == b'{"title":"Heat","year":1995}'
    assert type(roundtrip(movie)) is dict


def test_derived_field_is_restored_and_post_init_ran() -> None:
    restored = roundtrip(Derived(4))
    assert restored == Derived(4)
    assert restored.doubled == 8


def test_dataclass_missing_field_with_default_is_filled_on_decode() -> None:
    # A field added (with a default) after a job was stored: the stored job still decodes.
    data = b'{"$t":"dc","$c":"serializer_samples:SlotBox","value":1}'
    assert S.loadb(data) == SlotBox(1, "slot")


def test_is_a_serializer() -> None:
    assert isinstance(S, Serializer)
    assert isinstance(UnsafePickleSerializer(), Serializer)
    assert "unsafe" in (UnsafePickleSerializer.__doc__ or "").lower()
    assert "arbitrary code" in (UnsafePickleSerializer.__doc__ or "")


# ------------------------------------------------------------------------------------------
# Refusals at encode time
# ------------------------------------------------------------------------------------------


class OddZone(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "ODD"


def test_unserializable_values_name_their_type() -> None:
    with socket.socket() as sock, pytest.raises(SerializationError, match=r"socket\.socket"):
        S.dumpb({"conn": sock})
    with pytest.raises(SerializationError, match="function"):
        S.dumpb([lambda: 1])
    with pytest.raises(SerializationError, match="type object"):
        S.dumpb(object())
    with pytest.raises(SerializationError, match="OrderedDict"):
        S.dumpb(collections.OrderedDict(a=1))
    with pytest.raises(SerializationError, match="OddZone"):
        S.dumpb(datetime(2020, 1, 1, tzinfo=OddZone()))


def test_local_dataclass_is_refused_with_advice() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match="module level"):
        S.dumpb(Local(1))


def test_cycles_are_an_error_not_a_crash() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(SerializationError, match="cycle"):
        S.dumpb(cyclic)
    cyclic_tuple: list[Any] = [()]
    cyclic_tuple.append((cyclic_tuple,))
    with pytest.raises(SerializationError, match="cycle"):
        S.dumpb(cyclic_tuple)


def test_serialization_error_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        S.dumpb(object())


# ------------------------------------------------------------------------------------------
# Refusals at decode time
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00",
        b"{",
        b'{"a": 1} trailing',
        b'{"$t":"nope","v":1}',
        b'{"$t":"float","v":"1.5"}',
        b'{"$t":"map","v":[[[1],2]]}',  # a list key
        b'{"$t":"dt","v":"yesterday"}',
        b'{"$t":"b","v":"***"}',
        b'{"$t":"path","c":"Evil","v":"x"}',
        b'{"$t":"dt","v":"2020-01-01T00:00:00","z":"Not/AZone"}',
        b'{"$t":"dc","$c":"serializer_samples:Point","nope":1}',
        b'{"$t":"dc","$c":7}',
        b'{"$t":"dc","$c":"no-colon"}',
    ],
)
def test_garbage_is_a_serialization_error(data: bytes) -> None:
    with pytest.raises(SerializationError):
        S.loadb(data)


def test_unknown_class_is_named() -> None:
    with pytest.raises(SerializationError, match="no_such_module_xyz:Gone"):
        S.loadb(b'{"$t":"dc","$c":"no_such_module_xyz:Gone"}')
    with pytest.raises(SerializationError, match="serializer_samples:Renamed"):
        S.loadb(b'{"$t":"enum","$c":"serializer_samples:Renamed","v":1}')


def test_only_dataclasses_namedtuples_and_enums_are_constructed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    import os

    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    for kind in ("dc", "nt", "enum", "pyd"):
        with pytest.raises(SerializationError, match="not registered"):
            S.loadb(f'{{"$t":"{kind}","$c":"os:system","v":{{"command":"true"}}}}'.encode())
    with pytest.raises(SerializationError, match="not registered"):
        S.loadb(b'{"$t":"dc","$c":"builtins:dict"}')
    assert calls == []


def test_class_kind_must_match_the_tag() -> None:
    with pytest.raises(SerializationError, match="Enum"):
        ExtendedJSONSerializer([Point]).loadb(
            b'{"$t":"enum","$c":"serializer_samples:Point","v":1}'
        )


@given(st.binary(max_size=40))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    with contextlib.suppress(SerializationError):
        S.loadb(data)
