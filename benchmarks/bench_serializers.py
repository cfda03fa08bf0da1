"""Serializer benchmark: dumps + loads of a dataclass-heavy argument set, per serializer.

The payload is what a realistic task call binds: ~10 arguments, among them dataclasses nested
in dataclasses, lists of dataclasses, aware datetimes, UUIDs and Decimals. Serializers measure
it three ways, and the table says which:

* ``native``: the serializer is given the payload as is and must restore it exactly
  (ExtendedJSON, pickle);
* ``codec+pydantic``: through ``ArgumentCodec(serializer, PydanticConverter())`` with the task's
  type hints, i.e. the path an app with ``dumper``/``loader`` takes; types are restored;
* ``plain data``: the payload converted beforehand (not timed) to JSON-ready plain data
  (``dataclasses.asdict`` plus datetime/UUID/Decimal as strings); only the serializer is timed
  and types are *not* restored. This is the floor a format can reach.

Also timed: the codec hot path for ``{"x": 1}`` and the plain-JSON fast path against
``json.dumps``/``json.loads``. Each figure is the median of 5 runs. No target: exits 0 unless a
round trip gives back a different value.

Run: ``python benchmarks/bench_serializers.py``
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

try:
    import jobify  # noqa: F401
except ImportError:  # run from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from jobify._arguments import ArgumentCodec, argument_hints
from jobify.serializers import (
    CBORSerializer,
    ExtendedJSONSerializer,
    JSONSerializer,
    MsgpackSerializer,
    OrjsonSerializer,
    Serializer,
    UnsafePickleSerializer,
)
from jobify.typeadapter import PydanticConverter

RUNS = 5
NS = UUID("12345678-1234-5678-1234-567812345678")


@dataclasses.dataclass
class Address:
    street: str
    city: str
    postcode: str
    country: str = "NO"


@dataclasses.dataclass
class Customer:
    id: UUID
    name: str
    email: str
    address: Address
    created: datetime
    vip: bool = False


@dataclasses.dataclass
class LineItem:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclasses.dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclasses.dataclass
class Order:
    id: UUID
    customer: Customer
    items: list[LineItem]
    total: Money
    placed_at: datetime
    ship_by: date


def process_order(
    order: Order,
    customer: Customer,
    items: list[LineItem],
    discount: Money,
    deadline: datetime,
    retry_after: timedelta,
    notify: list[str],
    request_id: UUID,
    attempt: int,
    options: dict[str, str],
) -> None:
    """The task whose arguments are benchmarked (its hints drive the pydantic path)."""


def make_arguments() -> dict[str, Any]:
    oslo = ZoneInfo("Europe/Oslo")
    customer = Customer(
        id=uuid5(NS, "c1"),
        name="Kari Nordmann",
        email="kari@example.no",
        address=Address("Storgata 1", "Oslo", "0155"),
        created=datetime(2023, 3, 4, 10, 30, tzinfo=oslo),
        vip=True,
    )
    items = [LineItem(f"SKU-{i:04d}", i % 5 + 1, Decimal(f"{i * 3 + 0.99:.2f}")) for i in range(12)]
    order = Order(
        id=uuid5(NS, "o1"),
        customer=customer,
        items=items,
        total=Money(sum((it.unit_price * it.quantity for it in items), Decimal(0)), "NOK"),
        placed_at=datetime(2024, 5, 17, 8, 0, 0, 123456, tzinfo=UTC),
        ship_by=date(2024, 5, 21),
    )
    return {
        "order": order,
        "customer": customer,
        "items": items[:4],
        "discount": Money(Decimal("49.50"), "NOK"),
        "deadline": datetime(2024, 5, 20, 23, 59, tzinfo=oslo),
        "retry_after": timedelta(minutes=5),
        "notify": ["ops@example.no", "sales@example.no"],
        "request_id": uuid5(NS, "r1"),
        "attempt": 1,
        "options": {"priority": "high", "channel": "email"},
    }


def to_plain(value: Any) -> Any:
    """JSON-ready plain data: what a user would hand a plain format without a dumper."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID | Decimal):
        return str(value)
    return value


class Case:
    """One measured operation: a label, the call to time, and the bytes it produces."""

    def __init__(self, label: list[str], func: Callable[[], object], size: int, number: int):
        self.label = label
        self.func = func
        self.size = size
        self.number = number
        self.samples: list[float] = []

    def run_once(self) -> None:
        func, number = self.func, self.number
        start = time.perf_counter()
        for _ in range(number):
            func()
        self.samples.append((time.perf_counter() - start) / number * 1e6)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples)


def measure(cases: list[Case]) -> None:
    """RUNS rounds over all cases, interleaved: the machine's background load then spreads
    over every case instead of skewing whichever ran during a busy moment."""
    for case in cases:
        case.func()  # warm caches (class references, pydantic adapters)
    for _ in range(RUNS):
        for case in cases:
            case.run_once()


def serializer_case(serializer: Serializer, payload: Any, mode: str, number: int) -> Case:
    data = serializer.dumpb(payload)
    if serializer.loadb(data) != payload:
        raise SystemExit(f"{type(serializer).__name__}: round trip changed the payload")
    return Case(
        [type(serializer).__name__, mode],
        lambda: serializer.loadb(serializer.dumpb(payload)),
        len(data),
        number,
    )


def codec_case(serializer: Serializer, arguments: dict[str, Any], number: int) -> Case:
    converter = PydanticConverter()
    codec = ArgumentCodec(serializer, dumper=converter, loader=converter)
    hints = argument_hints(process_order)
    data = codec.encode("process_order", arguments, hints)
    if codec.decode("process_order", data, hints) != arguments:
        raise SystemExit(f"{type(serializer).__name__}+pydantic: round trip changed the payload")
    return Case(
        [type(serializer).__name__, "codec+pydantic"],
        lambda: codec.decode(
            "process_order", codec.encode("process_order", arguments, hints), hints
        ),
        len(data),
        number,
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    arguments = make_arguments()
    assert set(arguments) == set(inspect.signature(process_order).parameters)
    plain = to_plain(arguments)
    n = 1000
    cases = [
        serializer_case(ExtendedJSONSerializer(), arguments, "native", n),
        serializer_case(UnsafePickleSerializer(), arguments, "native", n),
        codec_case(JSONSerializer(), arguments, n),
        codec_case(OrjsonSerializer(), arguments, n),
        codec_case(MsgpackSerializer(), arguments, n),
        codec_case(CBORSerializer(), arguments, n),
        serializer_case(JSONSerializer(), plain, "plain data", n),
        serializer_case(OrjsonSerializer(), plain, "plain data", n),
        serializer_case(MsgpackSerializer(), plain, "plain data", n),
        serializer_case(CBORSerializer(), plain, "plain data", n),
        serializer_case(ExtendedJSONSerializer(), plain, "plain data", n),
    ]

    ext = ExtendedJSONSerializer()
    codec = ArgumentCodec(ext)
    small: dict[str, Any] = {"x": 1}
    small_data = codec.encode("t", small, {})
    medium = {
        "user_id": 42,
        "email": "a@example.org",
        "tags": ["a", "b", "c"],
        "flags": {"retry": True, "dry_run": False},
        "scores": [1.5, 2.25, 3.0] * 10,
    }
    medium_data = ext.dumpb(medium)
    m = 20_000
    hot = [
        Case(
            ["ArgumentCodec(ExtendedJSON).encode({'x': 1})"],
            lambda: codec.encode("t", small, {}),
            len(small_data),
            m,
        ),
        Case(
            ["ArgumentCodec(ExtendedJSON).decode({'x': 1})"],
            lambda: codec.decode("t", small_data, {}),
            len(small_data),
            m,
        ),
        Case(
            ["ExtendedJSONSerializer.dumpb(plain 5-key dict)"],
            lambda: ext.dumpb(medium),
            len(medium_data),
            m,
        ),
        Case(
            ["json.dumps(same dict).encode()"],
            lambda: json.dumps(medium).encode(),
            len(medium_data),
            m,
        ),
        Case(
            ["ExtendedJSONSerializer.loadb(same dict)"],
            lambda: ext.loadb(medium_data),
            len(medium_data),
            m,
        ),
        Case(["json.loads(same bytes)"], lambda: json.loads(medium_data), len(medium_data), m),
    ]
    measure(cases + hot)

    print(
        "dumps+loads of a 10-argument, dataclass-heavy payload "
        f"(median of {RUNS} interleaved runs; 'plain data' rows do not restore types)\n"
    )
    rows = [[*c.label, f"{c.median_us:,.1f}", f"{c.size:,}"] for c in cases]
    print(table(["serializer", "mode", "µs / round trip", "bytes"], rows))
    print("\nhot path, and the plain-JSON fast path against the json module\n")
    print(
        table(
            ["operation", "µs", "bytes"],
            [[*c.label, f"{c.median_us:.2f}", f"{c.size}"] for c in hot],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
