"""Read model of one function over a window: its figures over time (concurrency included, when
a CloudWatch metric stream reports it), its configuration as observed, its cold starts by
initialization type, memory used per execution environment, the extension's own cost, and its
recent invocations.

The SQL lives in :mod:`lambdascope.analyzers.function_view_sql`; the ``*_row`` and
:func:`series_points` functions are pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdascope.analyzers import function_view_sql, sql, throttles
from lambdascope.analyzers._format import finite as _finite
from lambdascope.analyzers.fleet import FunctionSummary, Invocation, fleet_summary
from lambdascope.analyzers.invocation_view import invocations_page
from lambdascope.analyzers.throttles import ConcurrencyLimits
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = [
    "EnvironmentMemory",
    "ExtensionFigures",
    "FunctionOverview",
    "InitFigures",
    "SeriesPoint",
    "VersionSeen",
    "bucket_seconds",
    "environment_row",
    "function_overview",
    "recent_invocations",
    "series_points",
]

#: A chart has at most this many points: a day's window is drawn in 12-minute buckets.
MAX_POINTS = 120
RECENT_INVOCATIONS = 50
#: The memory per environment lists at most this many environments, the fullest first.
TOP_ENVIRONMENTS = 10


def _quantile(values: Any, index: int) -> float | None:
    values = list(values or [])
    return _finite(values[index]) if index < len(values) else None


def bucket_seconds(window: Window, max_points: int = MAX_POINTS) -> int:
    """Whole minutes per chart point, so the window fits in ``max_points`` points."""
    seconds = (window.end - window.start).total_seconds()
    minutes = max(1, math.ceil(seconds / 60 / max_points))
    return 60 * minutes


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket of the function's charts; None where nothing was measured."""

    bucket: datetime
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    #: None when no CloudWatch metric stream reports this function's throttles.
    throttles: float | None = None
    #: The highest ConcurrentExecutions of the bucket; None without a metric stream.
    concurrency: float | None = None
    p50_duration_ms: float | None = None
    p99_duration_ms: float | None = None
    p50_init_duration_ms: float | None = None
    max_init_duration_ms: float | None = None
    max_memory_used_mb: int | None = None
    memory_size_mb: int | None = None


def _bucket_start(value: datetime, bucket_s: int) -> datetime:
    # toStartOfInterval counts buckets from the epoch: do the same.
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % bucket_s, UTC)


def _key(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def series_points(
    rows: Sequence[Mapping[str, Any]],
    throttle_rows: Sequence[Mapping[str, Any]],
    window: Window,
    bucket_s: int,
    concurrency_rows: Sequence[Mapping[str, Any]] = (),
) -> list[SeriesPoint]:
    """Pure: every bucket of the window in order (empty ones included, so a chart's x axis is
    time), from rows of :data:`FUNCTION_SERIES`, :data:`FUNCTION_THROTTLES` and
    :data:`FUNCTION_CONCURRENCY`."""
    by_bucket = {_key(r["bucket"]): r for r in rows}
    throttles = {_key(r["bucket"]): float(r["throttles"]) for r in throttle_rows}
    measured = bool(throttle_rows)
    concurrency = {_key(r["bucket"]): _finite(r["concurrency"]) for r in concurrency_rows}
    # CloudWatch publishes no point for a minute in which nothing ran: with a stream, 0.
    concurrency_measured = bool(concurrency_rows)
    points = []
    bucket = _bucket_start(window.start, bucket_s)
    step = timedelta(seconds=bucket_s)
    while bucket < window.end:
        row = by_bucket.get(bucket)
        throttled = throttles.get(bucket, 0.0) if measured else None
        running = (concurrency.get(bucket) or 0.0) if concurrency_measured else None
        if row is None:
            points.append(SeriesPoint(bucket, throttles=throttled, concurrency=running))
        else:
            used = row["max_memory_used_mb"]
            size = row["memory_size_mb"]
            points.append(
                SeriesPoint(
                    bucket,
                    invocations=int(row["invocations"]),
                    errors=int(row["errors"]),
                    timeouts=int(row["timeouts"]),
                    cold_starts=int(row["cold_starts"]),
                    throttles=throttled,
                    concurrency=running,
                    p50_duration_ms=_quantile(row["duration_quantiles_ms"], 0),
                    p99_duration_ms=_quantile(row["duration_quantiles_ms"], 2),
                    p50_init_duration_ms=_quantile(row["init_quantiles_ms"], 0),
                    max_init_duration_ms=_finite(row["max_init_duration_ms"]),
                    # A minute of only unreported invocations has no memory figure (0).
                    max_memory_used_mb=int(used) if used else None,
                    memory_size_mb=int(size) if size else None,
                )
            )
        bucket += step
    return points


@dataclass(frozen=True)
class VersionSeen:
    """A version of the function as its invocations showed it in the window."""

    function_version: str
    invocations: int
    memory_size_mb: int | None
    timeout_ms: float | None
    #: The smallest timeout seen, when it changed within the window.
    min_timeout_ms: float | None
    architectures: list[str]
    regions: list[str]
    last_seen: datetime | None


def version_row(row: Mapping[str, Any]) -> VersionSeen:
    """Pure: a row of :data:`FUNCTION_VERSIONS`."""
    size = row["memory_size_mb"]
    return VersionSeen(
        function_version=row["function_version"],
        invocations=int(row["invocations"]),
        memory_size_mb=int(size) if size else None,
        timeout_ms=_finite(row["max_timeout_ms"]),
        min_timeout_ms=_finite(row["min_timeout_ms"]),
        architectures=sorted(a for a in row["architectures"] if a),
        regions=sorted(r for r in row["regions"] if r),
        last_seen=row["last_seen"],
    )


@dataclass(frozen=True)
class InitFigures:
    """Initialisations of one type and phase in the window."""

    initialization_type: str
    phase: str
    inits: int
    failed: int
    p50_init_duration_ms: float | None
    p99_init_duration_ms: float | None
    max_init_duration_ms: float | None
    runtime_versions: list[str]


def init_row(row: Mapping[str, Any]) -> InitFigures:
    """Pure: a row of :data:`FUNCTION_INITS`."""
    return InitFigures(
        initialization_type=row["initialization_type"] or "on-demand",
        phase=row["phase"],
        inits=int(row["inits"]),
        failed=int(row["failed"]),
        p50_init_duration_ms=_quantile(row["init_quantiles_ms"], 0),
        p99_init_duration_ms=_quantile(row["init_quantiles_ms"], 1),
        max_init_duration_ms=_finite(row["max_init_duration_ms"]),
        runtime_versions=list(row["runtime_versions"]),
    )


@dataclass(frozen=True)
class ExtensionFigures:
    """What observing the function cost it (the extension's own figures, extension_stats)."""

    environments: int
    startup_ms_p95: float | None
    post_runtime_ms_p95: float | None
    peak_rss_mb: float | None
    events_dropped: int
    silent_environments: int


def extension_row(row: Mapping[str, Any], summary: FunctionSummary | None) -> ExtensionFigures:
    """Pure: a row of :data:`sql.EXTENSION_OVERHEAD` with the fleet row's delivery figures."""
    return ExtensionFigures(
        environments=int(row["environments"]),
        startup_ms_p95=_finite(row["startup_ms_p95"]),
        post_runtime_ms_p95=_finite(row["post_runtime_ms_p95"]),
        peak_rss_mb=_finite(row["peak_rss_mb_max"]),
        events_dropped=summary.events_dropped if summary else 0,
        silent_environments=summary.silent_environments if summary else 0,
    )


@dataclass(frozen=True)
class EnvironmentMemory:
    """One execution environment of the window: the most memory one of its invocations used
    (Lambda's REPORT "Max Memory Used") against its configured size. In a Lambda Managed
    Instances environment requests run at once and memory is the environment's, shared by
    up to ``max_in_flight`` of them."""

    environment_id: str
    max_memory_used_mb: int | None
    memory_size_mb: int | None
    invocations: int
    #: The start of its first and of its last invocation in the window.
    first_start: datetime
    last_start: datetime
    #: The most requests in flight at once (from overlapping start and end times); 1 on
    #: demand, up to PerExecutionEnvironmentMaxConcurrency in Managed Instances.
    max_in_flight: int = 1

    @property
    def used_share(self) -> float | None:
        """Max memory used as a share of the configured size (0.55 for 55%)."""
        if self.max_memory_used_mb is None or not self.memory_size_mb:
            return None
        return self.max_memory_used_mb / self.memory_size_mb


def environment_row(row: Mapping[str, Any]) -> EnvironmentMemory:
    """Pure: a row of :data:`FUNCTION_ENVIRONMENTS`."""
    used, size = row["max_used_mb"], row["size_mb"]
    return EnvironmentMemory(
        environment_id=row["environment_id"],
        # Only unreported invocations: no memory figure (NULL, or 0 from an older report).
        max_memory_used_mb=int(used) if used else None,
        memory_size_mb=int(size) if size else None,
        invocations=int(row["invocations"]),
        first_start=_key(row["first_start"]),
        last_start=_key(row["last_start"]),
        max_in_flight=max(1, int(row.get("max_in_flight") or 1)),
    )


@dataclass(frozen=True)
class FunctionOverview:
    function_name: str
    window: Window
    bucket_s: int
    #: The whole window's figures (the fleet table's row); None when it was not invoked.
    summary: FunctionSummary | None
    series: list[SeriesPoint] = field(default_factory=list)
    versions: list[VersionSeen] = field(default_factory=list)
    inits: list[InitFigures] = field(default_factory=list)
    #: None when the extension sent no figures of its own in the window.
    extension: ExtensionFigures | None = None
    #: From the analysis settings (``[concurrency.reserved]``); None when they do not say.
    reserved_concurrency: int | None = None
    #: The fullest environments first, at most :data:`TOP_ENVIRONMENTS` of them.
    environments: list[EnvironmentMemory] = field(default_factory=list)
    #: Every environment that ran an invocation in the window.
    environment_count: int = 0

    @property
    def throttles_measured(self) -> bool:
        return any(p.throttles is not None for p in self.series)

    @property
    def throttles(self) -> float | None:
        if not self.throttles_measured:
            return None
        return sum(p.throttles or 0.0 for p in self.series)

    @property
    def concurrency_measured(self) -> bool:
        return any(p.concurrency is not None for p in self.series)

    @property
    def peak_concurrency(self) -> float | None:
        """The highest concurrency of the window; None without a metric stream."""
        if not self.concurrency_measured:
            return None
        return max(p.concurrency or 0.0 for p in self.series)

    @property
    def memory_size_mb(self) -> int | None:
        """The newest configured memory size seen."""
        sizes = [v.memory_size_mb for v in self.versions if v.memory_size_mb]
        return sizes[0] if sizes else None

    @property
    def max_memory_used_mb(self) -> int | None:
        used = [p.max_memory_used_mb for p in self.series if p.max_memory_used_mb]
        return max(used) if used else None

    @property
    def runtime_versions(self) -> list[str]:
        return sorted({v for i in self.inits for v in i.runtime_versions})


def function_overview(
    client: QueryClient,
    function_name: str,
    window: Window,
    *,
    limits: ConcurrencyLimits | None = None,
    top_environments: int = TOP_ENVIRONMENTS,
) -> FunctionOverview:
    """The function's charts, configuration, cold starts, memory per environment and extension
    cost over ``window``. ``limits`` default to the analysis settings in force (the throttles
    detector's), which say the function's reserved concurrency."""
    limits = limits or throttles.LIMITS
    bucket_s = bucket_seconds(window)
    params = window.parameters(function_name)
    summaries = fleet_summary(
        client, since=window.end - window.start, function_name=function_name, now=window.end
    )
    summary = next((s for s in summaries if s.function_name == function_name), None)
    series_params = {**params, "bucket_s": bucket_s}
    rows = client.query(function_view_sql.FUNCTION_SERIES, series_params).dicts()
    throttle_rows = client.query(
        function_view_sql.FUNCTION_THROTTLES, {**series_params, "metric_name": "Throttles"}
    ).dicts()
    concurrency_rows = client.query(
        function_view_sql.FUNCTION_CONCURRENCY,
        {**series_params, "metric_name": "ConcurrentExecutions"},
    ).dicts()
    versions = client.query(function_view_sql.FUNCTION_VERSIONS, params).dicts()
    inits = client.query(function_view_sql.FUNCTION_INITS, params).dicts()
    overhead = [
        r
        for r in client.query(sql.EXTENSION_OVERHEAD, params).dicts()
        if r["function_name"] == function_name
    ]
    environments = client.query(
        function_view_sql.FUNCTION_ENVIRONMENTS, {**params, "limit": top_environments}
    ).dicts()
    return FunctionOverview(
        function_name=function_name,
        window=window,
        bucket_s=bucket_s,
        summary=summary,
        series=series_points(rows, throttle_rows, window, bucket_s, concurrency_rows),
        versions=[version_row(r) for r in versions],
        inits=[init_row(r) for r in inits],
        extension=extension_row(overhead[0], summary) if overhead else None,
        reserved_concurrency=limits.reserved.get(function_name),
        environments=[environment_row(r) for r in environments],
        environment_count=int(environments[0]["environments"]) if environments else 0,
    )


def recent_invocations(
    client: QueryClient, function_name: str, window: Window, *, limit: int = RECENT_INVOCATIONS
) -> list[Invocation]:
    """The function's newest invocations in the window, newest first."""
    return invocations_page(client, function_name, window, limit=limit).invocations
