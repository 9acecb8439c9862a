"""How figures look in the UI: fixed width friendly, '-' for not measured.

Durations are written by :func:`lambdascope.tui.figures.duration` alone, so a figure reads the
same on every screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdascope.query import QueryError, StoreUnavailableError


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


def share(part: int, whole: int) -> str:
    """``7.5%`` of ``whole``; ``<0.1%`` rather than a misleading ``0.0%`` for a rare few."""
    if whole <= 0:
        return "-"
    value = 100 * part / whole
    if part and value < 0.1:
        return "<0.1%"
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def ago(then: datetime | None, now: datetime) -> str:
    """``just now``, ``45s ago``, ``2m ago``, ``3h ago``, ``2d ago``."""
    if then is None:
        return "-"
    seconds = int((now - then).total_seconds())
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
