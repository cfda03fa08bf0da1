"""Sample types, hypothesis strategies and an exact comparison shared by the serializer tests.

The classes live at module level because ExtendedJSONSerializer stores classes by import path.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib
from datetime import datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

TAG = "$t"


@dataclasses.dataclass
class Box:
    value: Any


@dataclasses.dataclass(frozen=True)
class FrozenBox:
    value: Any


@dataclasses.dataclass(slots=True)
class SlotBox:
    value: Any
    label: str = "slot"


@dataclasses.dataclass
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Derived:
    """Has an ``init=False`` field computed in ``__post_init__``."""

    base: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.doubled = self.base * 2


@dataclasses.dataclass
class Outer:
    inner: Point
    points: list[Point]
    when: datetime
    tags: frozenset[str] = frozenset()


class Pair(NamedTuple):
    left: Any
    right: Any


class Color(enum.Enum):
    RED = "red"
    GREEN = (0, 255, 0)  # a tuple value: Enum values are encoded recursively


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    READ = "r"
    WRITE = "w"


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


class Movie(TypedDict):
    title: str
    year: int


ZONE_KEYS = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]

# --------------------------------------------------------------------------------------------
# Exact comparison: equal values AND identical types, recursively
# --------------------------------------------------------------------------------------------


def _same_tz(a: tzinfo | None, b: tzinfo | None) -> bool:
    if a is None or b is None:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, ZoneInfo) and isinstance(b, ZoneInfo):
        return a.key == b.key
    return a.utcoffset(None) == b.utcoffset(None) and a.tzname(None) == b.tzname(None)


def assert_same(a: Any, b: Any, path: str = "value") -> None:
    """Assert that ``b`` is an exact copy of ``a``: same types everywhere, equal values (NaNs
    compared by spelling, datetimes by wall time + tzinfo + fold)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, float):
        assert repr(a) == repr(b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, Decimal):
        assert str(a) == str(b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, datetime | time):
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None), f"{path}: {a!r} != {b!r}"
        assert a.fold == b.fold, f"{path}: fold {a.fold} != {b.fold}"
        assert _same_tz(a.tzinfo, b.tzinfo), f"{path}: {a.tzinfo!r} != {b.tzinfo!r}"
    elif isinstance(a, enum.Enum):
        assert a is b, f"{path}: {a!r} is not {b!r}"
    elif dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            assert_same(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert len(a) == len(b), f"{path}: {len(a)} keys != {len(b)}"
        b_keys = {k: k for k in b}
        for k, v in a.items():
            assert k in b_keys, f"{path}: key {k!r} missing"
            assert_same(k, b_keys[k], f"{path} key {k!r}")
            assert_same(v, b[k], f"{path}[{k!r}]")
    elif isinstance(a, set | frozenset):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        b_items = {x: x for x in b}
        for x in a:
            assert x in b_items, f"{path}: item {x!r} missing"
            assert_same(x, b_items[x], f"{path} item {x!r}")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

zones = st.sampled_from(ZONE_KEYS).map(ZoneInfo)
# datetime.timezone needs |offset| < 24h; sometimes with a custom name.
fixed_offsets = st.builds(
    lambda minutes, micros, name: (
        timezone(timedelta(minutes=minutes, microseconds=micros), name)
        if name
        else timezone(timedelta(minutes=minutes, microseconds=micros))
    ),
    st.integers(-23 * 60, 23 * 60),
    st.sampled_from([0, 0, 0, 1, 999_999]),
    st.sampled_from(["", "", "CUSTOM"]),
)
any_tz = st.one_of(st.none(), zones, fixed_offsets)


def _with_fold(value: Any, fold: bool) -> Any:
    return value.replace(fold=1) if fold else value


datetimes = st.builds(_with_fold, st.datetimes(timezones=any_tz), st.booleans())
times = st.builds(_with_fold, st.times(timezones=any_tz), st.booleans())
decimals = st.decimals(allow_nan=True, allow_infinity=True)
finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
path_parts = st.lists(st.text("abcXYZ._-", min_size=1, max_size=5), min_size=1, max_size=3)
paths = st.builds(
    lambda cls, parts: cls(*parts),
    st.sampled_from([pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.Path]),
    path_parts,
)
enums = st.sampled_from([*Color, *Level, *Mode, *Perm, Perm.R | Perm.W])

# Values usable as dict keys and set items; NaNs are left out because a NaN key cannot be
# looked up again (it is not equal to itself), which is about sets, not about serialization.
hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.just(TAG),
    st.binary(max_size=8),
    st.dates(),
    st.uuids(),
    finite_decimals,
    st.timedeltas(),
    enums,
    paths,
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(inner, max_size=3),
        st.builds(FrozenBox, inner),
        st.builds(Pair, inner, inner),
    ),
    max_leaves=6,
)

leaves = st.one_of(
    hashable_leaves,
    st.floats(),  # NaN and infinities included
    st.binary(max_size=8).map(bytearray),
    datetimes,
    times,
    decimals,
    st.builds(Point, st.integers(), st.floats(allow_nan=False)),
    st.builds(Derived, st.integers()),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
        st.dictionaries(hashables, children, max_size=4),
        # plain dicts that contain the tag key, shaped like a tagged value
        st.builds(lambda v, kind: {TAG: kind, "v": v}, children, st.sampled_from(["dt", "dc"])),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(Box, children),
        st.builds(FrozenBox, children),
        st.builds(SlotBox, children, st.text(max_size=4)),
        st.builds(Pair, children, children),
        st.builds(
            Outer,
            st.builds(Point, st.integers(), st.floats(allow_nan=False)),
            st.lists(st.builds(Point, st.integers(), st.floats(allow_nan=False)), max_size=3),
            datetimes,
            st.frozensets(st.text(max_size=3), max_size=3),
        ),
    )


extended_values = st.recursive(leaves, _containers, max_leaves=25)
