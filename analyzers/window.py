"""The time window a detector looks at, and how it is bound as query parameters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Window", "ch_time"]


def ch_time(value: datetime) -> str:
    """``'YYYY-MM-DD HH:MM:SS.fff'`` in UTC: the text a ``DateTime64(3, 'UTC')`` parameter binds.

    Both query transports accept it; an ISO string with ``T`` and ``+00:00`` (what JSON would
    carry for a ``datetime``) is refused by ClickHouse's parameter parser.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, now: datetime | None, since: timedelta) -> Window:
        """The window of length ``since`` that ends at ``now`` (wall clock when None)."""
        if since <= timedelta(0):
            raise ValueError(f"since must be a positive duration, got {since}")
        end = now or datetime.now(UTC)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        return cls(start=end - since, end=end)

    def parameters(self, function_name: str | None = None) -> dict[str, Any]:
        return {
            "since": ch_time(self.start),
            "until": ch_time(self.end),
            "function_name": function_name or "",
        }
