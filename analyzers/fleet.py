"""Read models for the TUI and reports: the fleet table, a finding's invocations, a request's log.

These return dataclasses so the UI never holds SQL (it lives in :mod:`lambdascope.analyzers.sql`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from lambdascope.analyzers import cost, sql
from lambdascope.analyzers._format import finite as _finite
from lambdascope.analyzers.completeness import delivery_parameters
from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient

__all__ = [
    "FunctionSummary",
    "Invocation",
    "LogLine",
    "finding_invocations",
    "fleet_summary",
    "invocations_by_request_ids",
    "request_log_view",
    "request_logs",
    "trend_buckets",
    "trends",
]

MAX_INVOCATIONS = 500
MAX_LOG_LINES = 2000
#: How many points a function's p99 trend has at most: enough to see a step or a spike, short
#: enough for a table cell.
TREND_BUCKETS = 20


@dataclass(frozen=True)
class FunctionSummary:
    function_name: str
    invocations: int
    errors: int
    timeouts: int
    cold_starts: int
    p50_duration_ms: float | None
    p99_duration_ms: float | None
    max_memory_pct: float | None
    last_seen: datetime | None
    #: Invocations that started but whose report never came (crashes, timeouts without a
    #: report, lost telemetry): counted in ``invocations``, without status or duration.
    unreported: int = 0
    #: Events the lambdascope extension dropped in the window (its buffer full, the collector
    #: unreachable at shutdown...), from its own figures; 0 without them.
    events_dropped: int = 0
    #: Environments that went silent without a final flush (analyzers/completeness.py).
    silent_environments: int = 0
    #: The slowest cold start's init in the window (the rollups keep each minute's maximum).
    max_init_ms: float | None = None
    #: The memory headroom: the p95 of Max Memory Used as a share of the memory size (%).
    memory_pct_p95: float | None = None
    #: The p95 init duration of the window's on-demand initializations (:data:`sql.FLEET_INIT_P95`);
    #: None without one.
    init_p95_ms: float | None = None
    #: Throttles in the window from the CloudWatch metric stream (:data:`sql.FLEET_THROTTLES`);
    #: None when the store has no metric-stream points for the function (unknown, not zero).
    throttles: int | None = None
    #: The p99 duration of each bucket of the window, oldest first (:func:`trend_buckets`);
    #: None where no report came in that bucket.
    p99_trend: tuple[float | None, ...] = ()
    #: What the window cost, estimated from the rollups with the price table in use
    #: (analyzers/cost.py); None when not estimated.
    cost_usd: float | None = None


@dataclass(frozen=True)
class Invocation:
    request_id: str
    function_name: str
    function_version: str
    environment_id: str
    start_time: datetime
    duration_ms: float | None
    billed_duration_ms: float | None
    status: str
    error_type: str
    init_duration_ms: float | None
    cold_start: bool
    max_memory_used_mb: int | None
    memory_size_mb: int | None
    timeout_ms: float | None

    @property
    def end_time(self) -> datetime | None:
        if self.duration_ms is None:
            return None
        return self.start_time + timedelta(milliseconds=self.duration_ms)


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    stream: str
    level: str
    message: str


def fleet_summary(
    client: QueryClient,
    *,
    since: timedelta,
    function_name: str | None = None,
    now: datetime | None = None,
    prices: cost.PriceTable | None = None,
) -> list[FunctionSummary]:
    """One row per function that was invoked in the window, sorted by name.

    Read from the per-minute rollups (never raw rows), so the window counts the whole minutes
    it overlaps, and the extension's own figures (``extension_stats``) for what it dropped.
    A third rollup read gives each function's p99 trend and estimated cost (``prices``, the
    price table in use by default); two more small reads give the on-demand init p95 (one row
    per initialization, not per invocation) and the metric stream's throttles. None of them
    waits for a detector, so the table still paints first.
    """
    window = Window.ending(now, since)
    rows = client.query(sql.FLEET, window.parameters(function_name)).dicts()
    delivery = client.query(
        sql.EXTENSION_DELIVERY, delivery_parameters(window, function_name)
    ).dicts()
    bucket_s, buckets = trend_buckets(window)
    trend_rows = client.query(
        sql.FLEET_TRENDS, {**window.parameters(function_name), "bucket_s": bucket_s}
    ).dicts()
    inits = {
        str(r["function_name"]): _finite(r["init_p95_ms"])
        for r in client.query(sql.FLEET_INIT_P95, window.parameters(function_name)).dicts()
    }
    throttled = {
        str(r["function_name"]): round(float(r["throttles"]))
        for r in client.query(sql.FLEET_THROTTLES, window.parameters(function_name)).dicts()
    }
    by_function = {str(r["function_name"]): r for r in delivery}
    p99 = trends(trend_rows, buckets)
    # cost.PRICES is read now, not imported: --settings replaces it after this module loads.
    costs = cost.estimated_costs(trend_rows, window, prices or cost.PRICES)
    return [
        replace(
            fleet_row(r, by_function.get(str(r["function_name"]))),
            p99_trend=p99.get(str(r["function_name"]), (None,) * buckets),
            cost_usd=costs.get(str(r["function_name"])),
            init_p95_ms=inits.get(str(r["function_name"])),
            throttles=throttled.get(str(r["function_name"])),
        )
        for r in rows
    ]


def trend_buckets(window: Window) -> tuple[int, int]:
    """Pure: the bucket size in seconds (whole minutes) and the number of buckets that cover
    the minutes a rollup read of ``window`` counts, at most :data:`TREND_BUCKETS`."""
    first = window.start.replace(second=0, microsecond=0)
    last = window.end.replace(second=0, microsecond=0)
    minutes = max(1, int((last - first).total_seconds() // 60) + (window.end != last))
    per_bucket = -(-minutes // TREND_BUCKETS)
    return per_bucket * 60, -(-minutes // per_bucket)


def trends(rows: Iterable[Mapping[str, Any]], buckets: int) -> dict[str, tuple[float | None, ...]]:
    """Pure: each function's p99 per bucket from :data:`sql.FLEET_TRENDS` rows, oldest first,
    None for a bucket without a measured duration."""
    out: dict[str, list[float | None]] = {}
    for r in rows:
        values = out.setdefault(str(r["function_name"]), [None] * buckets)
        bucket = int(r["bucket"])
        if 0 <= bucket < buckets:
            values[bucket] = _finite(r["p99_duration_ms"])
    return {name: tuple(values) for name, values in out.items()}


def fleet_row(row: Mapping[str, Any], delivery: Mapping[str, Any] | None = None) -> FunctionSummary:
    """Pure: a row of :data:`sql.FLEET`, with the function's row of
    :data:`sql.EXTENSION_DELIVERY` when the extension sent its figures."""
    delivery = delivery or {}
    quantiles = list(row.get("duration_quantiles_ms") or []) + [None, None]
    return FunctionSummary(
        function_name=row["function_name"],
        invocations=int(row["invocations"]),
        errors=int(row["errors"]),
        timeouts=int(row["timeouts"]),
        cold_starts=int(row["cold_starts"]),
        p50_duration_ms=_finite(quantiles[0]),
        p99_duration_ms=_finite(quantiles[1]),
        max_memory_pct=_finite(row["max_memory_pct"]),
        last_seen=row["last_seen"],
        unreported=int(row.get("unreported") or 0),
        events_dropped=int(delivery.get("events_dropped_total") or 0),
        silent_environments=int(delivery.get("silent_environments") or 0),
        max_init_ms=_finite(row.get("max_init_ms")),
        memory_pct_p95=_finite(row.get("memory_pct_p95")),  # NaN: not measured
    )


def invocations_by_request_ids(
    client: QueryClient,
    request_ids: Iterable[str],
    *,
    window: Window,
    function_name: str | None = None,
    limit: int = MAX_INVOCATIONS,
) -> list[Invocation]:
    """The invocations with these request ids in the window, oldest first."""
    ids = list(dict.fromkeys(request_ids))
    if not ids:
        return []
    params = {
        "since": ch_time(window.start),
        "until": ch_time(window.end),
        "function_name": function_name or "",
        "request_ids": ids,
        "limit": limit,
    }
    rows = client.query(sql.INVOCATIONS_BY_REQUEST_IDS, params).dicts()
    return [invocation_row(r) for r in rows]


def finding_invocations(
    client: QueryClient, finding: Finding, *, limit: int = MAX_INVOCATIONS
) -> list[Invocation]:
    """A finding's evidence as invocations, oldest first."""
    return invocations_by_request_ids(
        client,
        finding.evidence_request_ids,
        window=Window(finding.window_start, finding.window_end),
        function_name=finding.function_name,
        limit=limit,
    )


def invocation_row(row: Mapping[str, Any]) -> Invocation:
    return Invocation(
        request_id=row["request_id"],
        function_name=row["function_name"],
        function_version=row["function_version"],
        environment_id=row["environment_id"],
        start_time=row["start_time"],
        duration_ms=_finite(row["duration_ms"]),
        billed_duration_ms=_finite(row["billed_duration_ms"]),
        status=row["status"],
        error_type=row["error_type"],
        init_duration_ms=_finite(row["init_duration_ms"]),
        cold_start=bool(row["cold_start"]),
        max_memory_used_mb=row["max_memory_used_mb"],
        memory_size_mb=row["memory_size_mb"],
        timeout_ms=_finite(row["timeout_ms"]),
    )


def request_logs(
    client: QueryClient, invocation: Invocation, *, limit: int = MAX_LOG_LINES
) -> list[LogLine]:
    """The log lines attributed to this request, in time order, as stored."""
    params = {
        "request_id": invocation.request_id,
        "function_name": invocation.function_name,
        "start": ch_time(invocation.start_time),
        "limit": limit,
    }
    rows = client.query(sql.REQUEST_LOGS, params).dicts()
    return [
        LogLine(
            timestamp=r["timestamp"], stream=r["stream"], level=r["level"], message=r["message"]
        )
        for r in rows
    ]


def request_log_view(
    client: QueryClient, invocation: Invocation, *, limit: int = MAX_LOG_LINES
) -> list[LogLine]:
    """The request's log as Lambda would print it: START, its lines, END and REPORT.

    The platform lines are rebuilt from the invocation record when the store holds none, so
    the view is complete even though the Telemetry API sends events, not those lines.
    """
    return with_platform_lines(invocation, request_logs(client, invocation, limit=limit))


def with_platform_lines(invocation: Invocation, lines: Sequence[LogLine]) -> list[LogLine]:
    """Pure: add START/END/REPORT lines for ``invocation`` unless ``lines`` already has them."""
    rid = invocation.request_id
    have = {line.message.split(" ", 1)[0] for line in lines if rid in line.message}
    out = list(lines)
    if "START" not in have:
        start = LogLine(
            invocation.start_time,
            "platform",
            "",
            f"START RequestId: {rid} Version: {invocation.function_version}",
        )
        out.insert(0, start)
    end_time = invocation.end_time or (out[-1].timestamp if out else invocation.start_time)
    if "END" not in have and invocation.status != "unknown":
        out.append(LogLine(end_time, "platform", "", f"END RequestId: {rid}"))
    if "REPORT" not in have and invocation.duration_ms is not None:
        out.append(LogLine(end_time, "platform", "", report_line(invocation)))
    return out


def report_line(invocation: Invocation) -> str:
    """Lambda's REPORT line for an invocation (lambda-apis.md §6), tab-separated."""
    parts = [f"REPORT RequestId: {invocation.request_id}"]
    if invocation.duration_ms is not None:
        parts.append(f"Duration: {invocation.duration_ms:.2f} ms")
    if invocation.billed_duration_ms is not None:
        parts.append(f"Billed Duration: {invocation.billed_duration_ms:.0f} ms")
    if invocation.memory_size_mb is not None:
        parts.append(f"Memory Size: {invocation.memory_size_mb} MB")
    if invocation.max_memory_used_mb is not None:
        parts.append(f"Max Memory Used: {invocation.max_memory_used_mb} MB")
    if invocation.init_duration_ms is not None:
        parts.append(f"Init Duration: {invocation.init_duration_ms:.2f} ms")
    if invocation.status not in ("success", "unknown"):
        parts.append(f"Status: {invocation.status}")
        if invocation.error_type:
            parts.append(f"Error Type: {invocation.error_type}")
    return "\t".join(parts)
