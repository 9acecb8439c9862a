"""Figures for people: durations in ms or s with sensible precision, memory in MB with its
share of the configured size, Lambda's names spelled out. ``-`` means not measured."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

# The analyzers' report writes durations the same way: one definition for both.
from lambdascope.analyzers.names import NOT_MEASURED, duration

#: Lambda's initialization types and statuses, as people say them.
INITIALIZATION_TYPES = {
    "on-demand": "on-demand",
    "provisioned-concurrency": "provisioned concurrency",
    "snap-start": "SnapStart",
    "": "on-demand",
}
STATUSES = {
    "success": "ok",
    "error": "error",
    "failure": "failure",
    "timeout": "timed out",
    "unknown": "no report",
}


#: Eight heights, lowest first; a bucket without a measurement is a space.
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """``▁▁▂█▂ ▁``: one block per value, scaled from zero to the largest, so a flat series
    reads flat (a min-to-max scale would blow up a few ms of jitter into full-height spikes);
    ``None`` (not measured) is a space."""
    top = max((v for v in values if v is not None), default=0.0)
    last = len(SPARK_BLOCKS) - 1
    blocks = []
    for value in values:
        if value is None:
            blocks.append(" ")
        elif top <= 0:
            blocks.append(SPARK_BLOCKS[0])
        else:
            blocks.append(SPARK_BLOCKS[min(last, max(0, round(value / top * last)))])
    return "".join(blocks)


def money(usd: float | None) -> str:
    """``$0.42``, ``<$0.01``, ``$1,234``: cents while they matter, whole dollars beyond."""
    if usd is None:
        return NOT_MEASURED
    if usd == 0:
        return "$0.00"
    if usd < 0.01:
        return "<$0.01"
    if usd < 1000:
        return f"${usd:,.2f}"
    return f"${usd:,.0f}"


def delay(value: timedelta) -> str:
    return duration(value.total_seconds() * 1000)


def megabytes(mb: float | None) -> str:
    if mb is None:
        return NOT_MEASURED
    if mb >= 10240 or float(mb).is_integer():
        return f"{mb:,.0f} MB"
    return f"{mb:,.1f} MB"


def share(part: float | None, whole: float | None) -> str:
    """``55%``: ``part`` of ``whole``."""
    if part is None or not whole:
        return NOT_MEASURED
    return f"{part * 100 / whole:.0f}%"


def memory(used_mb: float | None, size_mb: float | None) -> str:
    """``71 of 128 MB (55%)``."""
    if used_mb is None:
        return NOT_MEASURED if size_mb is None else f"- of {megabytes(size_mb)}"
    if not size_mb:
        return megabytes(used_mb)
    return f"{used_mb:,.0f} of {megabytes(size_mb)} ({share(used_mb, size_mb)})"


def count(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:,.0f}"


def status(value: str) -> str:
    return STATUSES.get(value, value)


def initialization_type(value: str) -> str:
    return INITIALIZATION_TYPES.get(value, value)


def version(value: str) -> str:
    return value or "$LATEST"
