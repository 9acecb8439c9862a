"""How figures look in the UI: fixed width friendly, '-' for not measured."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from lambdascope.query import QueryError, StoreUnavailableError


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def clock(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def span(value: timedelta) -> str:
    """``1h``, ``15m``, ``90s``, ``2d``: how ``--since`` was written."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def error_text(exc: QueryError) -> str:
    if isinstance(exc, StoreUnavailableError):
        return f"Collector unreachable. {exc}"
    return f"The store could not answer: {exc}"


def figures(numbers: Mapping[str, float]) -> str:
    """``timeouts 3 · invocations 40 · timeout share 7.5%``: a finding's numbers, briefly."""
    parts = []
    for name, value in numbers.items():
        label = name.replace("_", " ")
        if value != value:  # NaN: not measured
            text = "-"
        elif name.endswith(("_share", "_rate")):
            text = f"{value * 100:.1f}%"
        elif float(value).is_integer():
            text = f"{int(value):,}"
        else:
            text = f"{value:,.1f}"
        parts.append(f"{label} {text}")
    return " · ".join(parts)
