"""JSON, orjson, msgpack and CBOR serializers: what each round-trips, and their failures."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serializer_samples import assert_same

import jobify.serializers
from jobify.exceptions import MissingDependencyError, SerializationError
from jobify.serializers import (
    CBORSerializer,
    JSONSerializer,
    MsgpackSerializer,
    OrjsonSerializer,
    Serializer,
)

INT64 = st.integers(-(2**63), 2**63 - 1)


def json_like(ints: st.SearchStrategy[int], floats: st.SearchStrategy[float]) -> Any:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), ints, floats, st.text(max_size=10)),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=6), children, max_size=4),
        ),
        max_leaves=20,
    )


FINITE = st.floats(allow_nan=False, allow_infinity=False)


def test_public_names() -> None:
    assert sorted(jobify.serializers.__all__) == sorted(
        [
            "Serializer",
            "JSONSerializer",
            "ExtendedJSONSerializer",
            "UnsafePickleSerializer",
            "OrjsonSerializer",
            "MsgpackSerializer",
            "CBORSerializer",
        ]
    )


def test_importing_serializers_does_not_import_the_extras() -> None:
    code = (
        "import sys, jobify.serializers, jobify.typeadapter, jobify._arguments\n"
        "loaded = {'orjson', 'msgpack', 'cbor2', 'pydantic'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("factory", "module", "extra"),
    [
        (OrjsonSerializer, "orjson", "orjson"),
        (MsgpackSerializer, "msgpack", "msgpack"),
        (CBORSerializer, "cbor2", "cbor"),
    ],
)
def test_missing_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, factory: Any, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependencyError, match=rf"jobify\[{extra}\]") as info:
        factory()
    assert isinstance(info.value, ImportError)
    assert info.value.extra == extra


@pytest.mark.parametrize(
    "factory", [JSONSerializer, OrjsonSerializer, MsgpackSerializer, CBORSerializer]
)
def test_all_are_serializers(factory: Any) -> None:
    assert isinstance(factory(), Serializer)


# ------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------


@given(json_like(st.integers(), FINITE))
def test_json_roundtrip(value: Any) -> None:
    s = JSONSerializer()
    assert_same(value, s.loadb(s.dumpb(value)))


def test_json_documented_conversions() -> None:
    s = JSONSerializer()
    assert s.loadb(s.dumpb({"t": (1, 2)})) == {"t": [1, 2]}
    assert s.loadb(s.dumpb({1: "a"})) == {"1": "a"}


@pytest.mark.parametrize("value", [math.nan, math.inf, b"x", {1, 2}, datetime(2020, 1, 1)])
def test_json_refuses_non_json(value: Any) -> None:
    with pytest.raises(SerializationError, match=type(value).__name__):
        JSONSerializer().dumpb({"v": value})


# ------------------------------------------------------------------------------------------
# orjson
# ------------------------------------------------------------------------------------------


@given(json_like(INT64, FINITE))
def test_orjson_roundtrip(value: Any) -> None:
    s = OrjsonSerializer()
    assert_same(value, s.loadb(s.dumpb(value)))


def test_orjson_documented_conversions() -> None:
    s = OrjsonSerializer()
    assert s.loadb(s.dumpb((1, 2))) == [1, 2]
    assert s.loadb(s.dumpb([math.nan])) == [None]
    assert s.loadb(s.dumpb(datetime(2020, 1, 1, tzinfo=UTC))) == "2020-01-01T00:00:00+00:00"
    with pytest.raises(SerializationError, match="int"):
        s.dumpb(2**70)
    with pytest.raises(SerializationError, match="dict"):
        s.dumpb({1: 2})


# ------------------------------------------------------------------------------------------
# msgpack
# ------------------------------------------------------------------------------------------

msgpack_values = st.recursive(
    st.one_of(st.none(), st.booleans(), INT64, st.floats(), st.text(max_size=10), st.binary()),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), INT64, st.binary()), children, max_size=4),
    ),
    max_leaves=20,
)


@given(msgpack_values)
def test_msgpack_roundtrip(value: Any) -> None:
    s = MsgpackSerializer()
    assert_same(value, s.loadb(s.dumpb(value)))


def test_msgpack_documented_conversions() -> None:
    s = MsgpackSerializer()
    assert s.loadb(s.dumpb((1, 2))) == [1, 2]
    paris = datetime(2020, 6, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))
    back = s.loadb(s.dumpb(paris))
    assert back == paris
    assert back.tzinfo == UTC
    with pytest.raises(SerializationError):
        s.dumpb(datetime(2020, 1, 1))  # naive
    with pytest.raises(SerializationError, match="int"):
        s.dumpb(2**70)
    with pytest.raises(SerializationError):
        s.loadb(s.dumpb({(1, 2): 3}))  # tuple keys do not come back


# ------------------------------------------------------------------------------------------
# CBOR
# ------------------------------------------------------------------------------------------

cbor_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.uuids(),
    st.dates(),
    st.datetimes(
        timezones=st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    ).map(lambda d: d.replace(fold=0)),  # cbor2 does not keep fold
)
cbor_keys = st.one_of(st.text(max_size=6), st.integers(), st.binary(max_size=6), st.uuids())
cbor_values = st.recursive(
    cbor_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(cbor_keys, children, max_size=4),
        st.sets(cbor_keys, max_size=4),
    ),
    max_leaves=20,
)


@settings(deadline=None)
@given(cbor_values)
def test_cbor_roundtrip(value: Any) -> None:
    s = CBORSerializer()
    assert_same(value, s.loadb(s.dumpb(value)))


def test_cbor_documented_conversions() -> None:
    s = CBORSerializer()
    assert s.loadb(s.dumpb((1, 2))) == [1, 2]
    assert s.loadb(s.dumpb({(1, 2): "k"})) == {(1, 2): "k"}
    assert type(s.loadb(s.dumpb(frozenset({1})))) is set
    assert s.loadb(s.dumpb(date(2020, 2, 29))) == date(2020, 2, 29)
    assert s.loadb(s.dumpb(Decimal("-1.50"))) == Decimal("-1.50")
    assert math.isnan(s.loadb(s.dumpb(Decimal("NaN"))))  # comes back as a float NaN
    paris = datetime(2020, 6, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))
    back = s.loadb(s.dumpb(paris))
    assert back == paris
    assert back.utcoffset() == timedelta(hours=2)
    with pytest.raises(SerializationError):
        s.dumpb(datetime(2020, 1, 1))  # naive


# ------------------------------------------------------------------------------------------
# Failures common to all
# ------------------------------------------------------------------------------------------

ALL = [JSONSerializer, OrjsonSerializer, MsgpackSerializer, CBORSerializer]


@pytest.mark.parametrize("factory", ALL)
def test_unserializable_values(factory: Any) -> None:
    s = factory()
    with socket.socket() as sock, pytest.raises(SerializationError, match="socket"):
        s.dumpb(sock)
    with pytest.raises(SerializationError, match="function"):
        s.dumpb(lambda: 1)
    with pytest.raises(SerializationError, match="object"):
        s.dumpb(object())


GARBAGE = {
    JSONSerializer: [b"", b"{", b"\xff\xfe", b"[1,]"],
    OrjsonSerializer: [b"", b"{", b"\xff\xfe", b"[1,]"],
    MsgpackSerializer: [b"", b"\xc1", b"\x92\x01", b"\x01\x02"],
    CBORSerializer: [b"", b"\xff", b"\x82\x01", b"\x1c"],
}


@pytest.mark.parametrize(("factory", "data"), [(f, d) for f, ds in GARBAGE.items() for d in ds])
def test_garbage_bytes(factory: Any, data: bytes) -> None:
    with pytest.raises(SerializationError, match=factory.__name__):
        factory().loadb(data)
