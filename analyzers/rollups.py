"""The detectors' screen: what the per-minute rollups say about a window, as bounds.

A detector first asks the rollups (``invocation_minutes``, a few hundred rows per function and
day) whether a function *could* produce its finding, and reads the window's raw invocation rows
only for the functions that could (``function_names`` in :mod:`sql`). On a healthy
fleet no function passes and no raw row is read. The screen must never hide a finding, so every
figure here bounds the exact one from the right side:

* counts and maxima (``*_max``, ``max_*``) come from the window widened to whole minutes plus
  a minute of margin on each side (an invocation whose start event is missing sits in its
  report's minute), and count a request whose runtimeDone and report came in different parts
  twice: upper bounds; timeouts known only from a "Task timed out" line, whose part sits in
  the minute it arrived, are counted up to 16 minutes past the window;
* ``min_timeout_ms`` is a minimum over the same widened window: a lower bound;
* ``invocations_min`` counts only the minutes certainly inside the window: a lower bound, so
  ``rate_max`` (a count over it) bounds a rate from above.

The exact figures, the evidence request ids and the thresholds' final word come from the raw
rows of the flagged functions, so findings are the same as without the screen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lambdascope.analyzers import sql
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient, QueryResult

__all__ = [
    "RawReads",
    "RecordingClient",
    "VersionScreen",
    "by_function",
    "flagged",
    "rate_max",
    "screen",
    "screen_parameters",
]

_MINUTE = timedelta(minutes=1)
#: How far an invocation's rollup minute may be from its start minute (see the module doc).
MARGIN = timedelta(minutes=1)
#: How late a part may come after its invocation's start: a "Task timed out" line alone is
#: placed when it arrived, up to Lambda's 15-minute limit later (collector EVENT_SLACK_MINUTES).
LATE = timedelta(minutes=16)


@dataclass(frozen=True)
class VersionScreen:
    """One function version's bounds over a window (a row of :data:`sql.SCREEN`)."""

    function_name: str
    function_version: str
    reported: int
    started: int
    invocations_min: int
    errors_max: int
    timeouts_max: int
    cold_starts_max: int
    oom_errors: int
    max_memory_used_pct: float | None
    max_duration_ms: float
    min_timeout_ms: float | None
    max_timeout_ms: float | None
    max_init_duration_ms: float | None
    billed_gb_seconds: float
    billed_seconds: float
    max_memory_size_mb: int | None
    #: Lower bounds (inner minutes): billed GB-s, the largest memory size, the peak used.
    billed_gb_seconds_min: float = 0.0
    memory_size_mb_min: int = 0
    peak_memory_used_mb_min: int = 0
    architectures: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    @property
    def invocations_max(self) -> int:
        """Every invocation has a start or a report part, usually both."""
        return self.reported + self.started


def _floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _ceil_minute(value: datetime) -> datetime:
    floor = _floor_minute(value)
    return floor if floor == value else floor + _MINUTE


def screen_parameters(window: Window, function_name: str | None = None) -> dict[str, Any]:
    """The bounds of :data:`sql.SCREEN` for ``window``."""
    return {
        "outer_since": ch_time(_floor_minute(window.start) - MARGIN),
        "outer_until": ch_time(_ceil_minute(window.end) + MARGIN),
        "inner_since": ch_time(_ceil_minute(window.start) + MARGIN),
        "inner_until": ch_time(_floor_minute(window.end) - MARGIN),
        "late_until": ch_time(_ceil_minute(window.end) + LATE),
        "function_name": function_name or "",
    }


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def screen_row(row: Mapping[str, Any]) -> VersionScreen:
    size = row["memory_size_mb_max"]
    return VersionScreen(
        function_name=str(row["function_name"]),
        function_version=str(row["function_version"]),
        reported=int(row["reported_parts"] or 0),
        started=int(row["started_parts"] or 0),
        invocations_min=int(row["invocations_min"] or 0),
        errors_max=int(row["errors_max"] or 0),
        timeouts_max=int(row["timeouts_max"] or 0),
        cold_starts_max=int(row["cold_starts_max"] or 0),
        oom_errors=int(row["oom_errors_max"] or 0),
        max_memory_used_pct=_float(row["max_memory_used_pct"]),
        max_duration_ms=_float(row["max_duration_ms"]) or 0.0,
        min_timeout_ms=_float(row["min_timeout_ms"]),
        max_timeout_ms=_float(row["max_timeout_ms"]),
        max_init_duration_ms=_float(row["max_init_duration_ms"]),
        billed_gb_seconds=_float(row["billed_gb_seconds_max"]) or 0.0,
        billed_seconds=_float(row["billed_seconds"]) or 0.0,
        max_memory_size_mb=None if size is None else int(size),
        billed_gb_seconds_min=_float(row["billed_gb_seconds_min"]) or 0.0,
        memory_size_mb_min=int(row["memory_size_mb_min"] or 0),
        peak_memory_used_mb_min=int(row["peak_memory_used_mb_min"] or 0),
        architectures=tuple(sorted(row["architecture_set"] or ())),
        regions=tuple(sorted(row["region_set"] or ())),
    )


def screen(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[VersionScreen]:
    """Every function version with rollup rows near the window."""
    rows = client.query(sql.SCREEN, screen_parameters(window, function_name)).dicts()
    return [screen_row(r) for r in rows]


def rate_max(count_max: int, invocations_min: int) -> float:
    """An upper bound of ``count / invocations`` from an upper bound of the count and a lower
    bound of the invocations (each counted invocation is an invocation, so the exact
    denominator is at least the exact count)."""
    if count_max <= 0:
        return 0.0
    return count_max / max(invocations_min, count_max)


def flagged(
    rows: Iterable[VersionScreen], could_find: Callable[[VersionScreen], bool]
) -> list[str]:
    """The functions (sorted) with a version for which ``could_find`` holds."""
    return sorted({r.function_name for r in rows if could_find(r)})


def by_function(rows: Sequence[VersionScreen]) -> dict[str, list[VersionScreen]]:
    out: dict[str, list[VersionScreen]] = {}
    for row in rows:
        out.setdefault(row.function_name, []).append(row)
    return out


@dataclass
class RawReads:
    """What a run read besides rollups: the functions whose raw invocation rows were read
    (``"*"`` for every function) and how many queries touched log lines or spans."""

    functions: set[str]
    log_queries: int = 0

    def describe(self) -> str:
        """``rollup only`` / ``rollup + raw for 3 fns`` / ``raw for all fns`` (+ log reads)."""
        if "*" in self.functions:
            text = "raw for all fns"
        elif self.functions:
            text = f"rollup + raw for {len(self.functions)} fns"
        else:
            text = "rollup only"
        if self.log_queries:
            text += f" (+{self.log_queries} log/span reads)"
        return text


class RecordingClient:
    """A :class:`QueryClient` that passes queries on and notes which read raw invocation rows
    (the ``invocations`` views) and for which functions: how tests and bench/store_scale.py
    check that a screened detector stays on the rollups."""

    def __init__(self, client: QueryClient) -> None:
        self._client = client
        self.reads = RawReads(set())

    def query(self, sql_text: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        params = dict(parameters or {})
        if "invocations_between(" in sql_text or "FROM invocations\n" in sql_text:
            names = params.get("function_names")
            if not names:
                names = [params["function_name"]] if params.get("function_name") else ["*"]
            self.reads.functions.update(str(n) for n in names)
        elif "FROM logs" in sql_text or "FROM otel_traces" in sql_text:
            self.reads.log_queries += 1
        return self._client.query(sql_text, parameters)
