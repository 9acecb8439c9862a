"""What a read returns, the interface every reader implements, and the JSON form of values."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["QueryClient", "QueryResult", "jsonable", "revive"]


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows and self.rows[0] else None


@runtime_checkable
class QueryClient(Protocol):
    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult: ...


def jsonable(value: Any) -> Any:
    """Turn one ClickHouse value into something ``json.dumps`` accepts, losslessly enough."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(
        value,
        uuid.UUID | decimal.Decimal | ipaddress.IPv4Address | ipaddress.IPv6Address,
    ):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def revive(value: Any, type_name: str) -> Any:
    """Inverse of :func:`jsonable` for the types that JSON cannot carry (DateTime, Date)."""
    if value is None:
        return None
    bare = type_name
    for wrapper in ("Nullable(", "LowCardinality("):
        while bare.startswith(wrapper):
            bare = bare[len(wrapper) : -1]
    if bare.startswith("DateTime") and isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if bare == "Date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value
