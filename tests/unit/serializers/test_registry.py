"""The registry of ExtendedJSONSerializer: what it may rebuild, and that decoding never imports.

A fresh serializer stands for another process: it knows only what it was told (its ``types``,
``register_hints``), never what some other instance happened to encode.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, NamedTuple, Optional, TypedDict, TypeVar
from zoneinfo import ZoneInfo

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from serializer_samples import Color, Outer, Pair, Point, assert_same, extended_values

from jobify.exceptions import SerializationError
from jobify.serializers import ExtendedJSONSerializer

T = TypeVar("T")


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


class Corner(NamedTuple):
    point: Point
    shade: Shade


@dataclasses.dataclass(frozen=True)
class Leaf:
    name: str


@dataclasses.dataclass
class Branch:
    leaves: list[Leaf]
    by_name: dict[str, Leaf]
    best: Optional[Leaf] = None  # noqa: UP045 (the typing.Optional spelling is walked too)


@dataclasses.dataclass
class Tree:
    trunk: Branch
    corner: Corner | None = None


@dataclasses.dataclass
class Holder(Generic[T]):
    item: T


class Address(pydantic.BaseModel):
    city: str
    zone: str = "UTC"


class Customer(pydantic.BaseModel):
    name: str
    address: Address
    tags: tuple[str, ...] = ()


class Order(TypedDict):
    customer: Customer
    shade: Shade


def test_nested_classes_are_registered_with_the_class_named() -> None:
    tree = Tree(
        Branch([Leaf("a")], {"b": Leaf("b")}, Leaf("c")),
        Corner(Point(1, 2.5), Shade.DARK),
    )
    data = ExtendedJSONSerializer().dumpb(tree)
    # Another process that names only Tree rebuilds everything inside it.
    other = ExtendedJSONSerializer([Tree])
    assert other.loadb(data) == tree
    assert set(other.registry) == {
        f"{__name__}:{name}" for name in ("Tree", "Branch", "Leaf", "Corner", "Shade")
    } | {"serializer_samples:Point"}


def test_register_hints_walks_every_shape_of_annotation() -> None:
    serializer = ExtendedJSONSerializer()
    serializer.register_hints(
        {
            "a": list[Leaf],
            "b": dict[str, Corner],
            "c": Optional[Color],  # noqa: UP045
            "d": Annotated[Holder[Shade], "metadata"],
            "e": Literal[Color.RED],
            "f": Order,
            "g": int | Pair,
            "h": "Unresolved",  # a string: skipped
            "return": tuple[Customer, ...],
        }
    )
    names = {ref.rpartition(":")[2] for ref in serializer.registry}
    assert names == {
        "Leaf", "Corner", "Point", "Shade", "Color", "Holder", "Customer", "Address", "Pair"
    }  # fmt: skip


def test_registered_types_round_trip() -> None:
    values: dict[str, Any] = {
        "customer": Customer(name="Ann", address=Address(city="Oslo"), tags=("vip",)),
        "zone": ZoneInfo("Europe/Oslo"),
        "zones": [ZoneInfo("UTC"), ZoneInfo("America/Argentina/Buenos_Aires")],
        "holder": Holder(Shade.LIGHT),
        "outer": Outer(Point(1, 2.0), [Point(3, 4.0)], __import__("datetime").datetime(2024, 1, 1)),
    }
    data = ExtendedJSONSerializer().dumpb(values)
    other = ExtendedJSONSerializer([Customer, Holder, Shade, Outer])
    back = other.loadb(data)
    assert back["customer"] == values["customer"]
    assert back["zone"] is ZoneInfo("Europe/Oslo")
    assert back["zones"] == values["zones"]
    assert back["holder"] == values["holder"] and back["outer"] == values["outer"]


def test_an_unregistered_class_is_refused_by_name() -> None:
    data = ExtendedJSONSerializer().dumpb({"leaf": Leaf("x")})
    with pytest.raises(SerializationError, match=rf"{__name__}:Leaf.*not registered"):
        ExtendedJSONSerializer().loadb(data)


def test_decoding_never_imports_what_the_data_names(tmp_path: Path) -> None:
    name = f"hostile_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "marker"
    (tmp_path / f"{name}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\nraise SystemExit(3)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        for kind in ("dc", "nt", "enum", "pyd"):
            data = f'{{"$t":"{kind}","$c":"{name}:Evil","v":[1]}}'.encode()
            with pytest.raises(SerializationError, match="not registered"):
                ExtendedJSONSerializer([Point]).loadb(data)
        for key in (name, f"../{name}", "/etc/passwd", "Europe/../../x", "No/Such_Zone"):
            for data in (
                f'{{"$t":"zi","v":"{key}"}}'.encode(),
                f'{{"$t":"dt","v":"2024-01-01T00:00:00","z":"{key}"}}'.encode(),
            ):
                with pytest.raises(SerializationError, match="time zone"):
                    ExtendedJSONSerializer().loadb(data)
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()
    assert name not in sys.modules


def test_the_registry_is_read_only_and_only_takes_rebuildable_classes() -> None:
    serializer = ExtendedJSONSerializer([Leaf])
    assert serializer.registry == {f"{__name__}:Leaf": Leaf}
    with pytest.raises(TypeError):
        serializer.registry["x"] = Leaf  # type: ignore[index]
    for bad in (int, dict, object(), "Leaf", Order):
        with pytest.raises(TypeError, match="can only register"):
            ExtendedJSONSerializer([bad])  # type: ignore[list-item]
    assert "Leaf" in repr(serializer)


def test_a_class_met_when_encoding_is_registered_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    serializer = ExtendedJSONSerializer()
    with caplog.at_level("WARNING", "jobify.serializers"):
        data = serializer.dumpb(Leaf("x"))
        serializer.dumpb(Leaf("y"))
    assert serializer.loadb(data) == Leaf("x")  # its own values: the program's own class
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and f"{__name__}:Leaf" in warned[0]
    quiet = ExtendedJSONSerializer([Leaf])
    with caplog.at_level("WARNING", "jobify.serializers"):
        quiet.dumpb(Leaf("z"))
    assert len(caplog.records) == 1  # registered up front: nothing to warn about


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extended_values)
def test_what_one_process_registers_another_rebuilds(value: Any) -> None:
    writer = ExtendedJSONSerializer()
    data = writer.dumpb(value)
    reader = ExtendedJSONSerializer(list(writer.registry.values()))
    assert_same(value, reader.loadb(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extended_values)
def test_an_empty_registry_decodes_or_names_the_class(value: Any) -> None:
    writer = ExtendedJSONSerializer()
    data = writer.dumpb(value)
    try:
        back = ExtendedJSONSerializer().loadb(data)
    except SerializationError as exc:
        assert writer.registry and "not registered" in str(exc)
        assert any(ref in str(exc) for ref in writer.registry)
    else:
        assert not writer.registry  # nothing to rebuild: built-in types only
        assert_same(value, back)
