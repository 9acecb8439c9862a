"""What the report shows, as plain data, and the pure functions that build it from rows.

Nothing here reads the store: :mod:`.data` runs the queries and hands the rows to these
functions, so each can be tested with a list of dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdascope.analyzers._format import finite as _finite
from lambdascope.analyzers.cost import CostRow
from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.fleet import FunctionSummary, LogLine
from lambdascope.analyzers.window import Window

__all__ = [
    "BUCKET_MINUTES",
    "MAX_POINTS",
    "EnvironmentMemory",
    "ExtensionCost",
    "FunctionSeries",
    "InitPhases",
    "ReportData",
    "bucket_seconds",
    "bucket_starts",
    "function_series",
    "init_kind",
    "top_functions",
]

#: A time chart has at most this many points: enough to see a spike, few enough to read.
MAX_POINTS = 120
#: Bucket sizes a reader recognises (minutes), never finer than CloudWatch's minute.
BUCKET_MINUTES = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440)


def bucket_seconds(window: Window, max_points: int = MAX_POINTS) -> int:
    """The smallest round bucket that draws ``window`` in at most ``max_points`` points:
    1 h in 1-minute buckets, 24 h in 15-minute ones, 7 days in 2-hour ones."""
    minutes = max(1.0, (window.end - window.start).total_seconds() / 60)
    for size in BUCKET_MINUTES:
        if math.ceil(minutes / size) <= max_points:
            return size * 60
    days = math.ceil(minutes / max_points / 1440)
    return days * 1440 * 60


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bucket_starts(window: Window, bucket_s: int) -> list[datetime]:
    """Every bucket that overlaps ``window``, oldest first, counted from the epoch as
    ClickHouse's ``toStartOfInterval`` counts them (so query rows land on these keys)."""
    epoch = int(_utc(window.start).timestamp())
    bucket = datetime.fromtimestamp(epoch - epoch % bucket_s, UTC)
    out = []
    while bucket < _utc(window.end):
        out.append(bucket)
        bucket += timedelta(seconds=bucket_s)
    return out


def _quantile(values: Any, index: int) -> float | None:
    values = list(values or [])
    return _finite(values[index]) if index < len(values) else None


@dataclass
class FunctionSeries:
    """One function (or the fleet) per bucket. Lines hold None where nothing was measured, so
    a chart shows a gap there rather than a line drawn across it."""

    name: str
    buckets: list[datetime]
    invocations: list[int]
    errors: list[int]
    timeouts: list[int]
    cold_starts: list[int]
    p50_ms: list[float | None]
    p90_ms: list[float | None]
    p99_ms: list[float | None]
    #: From the CloudWatch metric stream; None everywhere when it sends none for the function.
    throttles: list[float | None]
    concurrency: list[float | None]
    #: The longest configured timeout seen; None when no INVOKE event said it.
    timeout_ms: float | None = None

    @property
    def total_invocations(self) -> int:
        return sum(self.invocations)

    @property
    def cold_start_rate(self) -> list[float | None]:
        """Cold starts per invocation in each bucket; None for a bucket without invocations."""
        return [
            c / n if n else None for c, n in zip(self.cold_starts, self.invocations, strict=True)
        ]

    @property
    def succeeded(self) -> list[int]:
        return [
            max(0, n - e - t)
            for n, e, t in zip(self.invocations, self.errors, self.timeouts, strict=True)
        ]


def _empty(name: str, buckets: list[datetime]) -> FunctionSeries:
    n = len(buckets)
    return FunctionSeries(
        name=name,
        buckets=buckets,
        invocations=[0] * n,
        errors=[0] * n,
        timeouts=[0] * n,
        cold_starts=[0] * n,
        p50_ms=[None] * n,
        p90_ms=[None] * n,
        p99_ms=[None] * n,
        throttles=[None] * n,
        concurrency=[None] * n,
    )


def function_series(
    rows: Sequence[Mapping[str, Any]],
    metric_rows: Sequence[Mapping[str, Any]],
    buckets: list[datetime],
) -> dict[str, FunctionSeries]:
    """Pure: each function's series from :data:`.sql.SERIES` and :data:`.sql.METRIC_SERIES`
    rows, every bucket present (empty ones too, so the x axis is time). The account's
    concurrency, when the stream sends it, is the series named ``''``."""
    index = {b: i for i, b in enumerate(buckets)}
    out: dict[str, FunctionSeries] = {}
    for r in rows:
        i = index.get(_utc(r["bucket"]))
        if i is None:
            continue
        s = out.setdefault(str(r["function_name"]), _empty(str(r["function_name"]), buckets))
        s.invocations[i] = int(r["invocations"])
        s.errors[i] = int(r["errors"])
        s.timeouts[i] = int(r["timeouts"])
        s.cold_starts[i] = int(r["cold_starts"])
        s.p50_ms[i] = _quantile(r["duration_quantiles_ms"], 0)
        s.p90_ms[i] = _quantile(r["duration_quantiles_ms"], 1)
        s.p99_ms[i] = _quantile(r["duration_quantiles_ms"], 2)
        timeout = _finite(r.get("timeout_ms"))
        if timeout and (s.timeout_ms is None or timeout > s.timeout_ms):
            s.timeout_ms = timeout
    streamed: dict[str, list[Mapping[str, Any]]] = {}
    for r in metric_rows:
        streamed.setdefault(str(r["function_name"]), []).append(r)
    for name, points in streamed.items():
        s = out.setdefault(name, _empty(name, buckets))
        # With a stream, a bucket without a point had nothing to report: 0, not unknown.
        s.throttles = [0.0] * len(buckets)
        has_concurrency = any(p["has_concurrency"] for p in points)
        if has_concurrency:
            s.concurrency = [0.0] * len(buckets)
        for p in points:
            i = index.get(_utc(p["bucket"]))
            if i is None:
                continue
            s.throttles[i] = float(p["throttles"] or 0)
            if has_concurrency:
                s.concurrency[i] = float(p["concurrency"] or 0)
    return out


def fleet_series(series: Mapping[str, FunctionSeries], buckets: list[datetime]) -> FunctionSeries:
    """Pure: the fleet as one series: counts summed; concurrency the account's when the stream
    sends it, else the sum of each function's peak (an upper bound); no duration quantiles
    (quantiles of different functions do not add up)."""
    fleet = _empty("fleet", buckets)
    functions = [s for name, s in series.items() if name]
    for s in functions:
        for i in range(len(buckets)):
            fleet.invocations[i] += s.invocations[i]
            fleet.errors[i] += s.errors[i]
            fleet.timeouts[i] += s.timeouts[i]
            fleet.cold_starts[i] += s.cold_starts[i]
    fleet.throttles = _sum_known([s.throttles for s in functions], len(buckets))
    account = series.get("")
    if account is not None and any(c is not None for c in account.concurrency):
        fleet.concurrency = list(account.concurrency)
    else:
        fleet.concurrency = _sum_known([s.concurrency for s in functions], len(buckets))
    return fleet


def _sum_known(columns: Sequence[list[float | None]], n: int) -> list[float | None]:
    known = [c for c in columns if any(v is not None for v in c)]
    if not known:
        return [None] * n
    return [sum(c[i] or 0.0 for c in known) for i in range(n)]


def top_functions(summaries: Sequence[FunctionSummary], limit: int) -> tuple[list[str], list[str]]:
    """Pure: the ``limit`` most invoked functions (then by name) and the ones left out."""
    ranked = sorted(summaries, key=lambda s: (-s.invocations, s.function_name))
    names = [s.function_name for s in ranked]
    return names[:limit], names[limit:]


#: What kind of initialization an init was, as the histogram groups them.
ON_DEMAND = "on-demand (users waited)"
PROACTIVE = "on-demand, ahead of demand"
PROVISIONED = "provisioned concurrency"
SNAPSTART = "SnapStart restore"
INIT_KINDS = (ON_DEMAND, PROACTIVE, PROVISIONED, SNAPSTART)


def init_kind(row: Mapping[str, Any]) -> str:
    """Pure: which of :data:`INIT_KINDS` a :data:`.sql.INITS` row is. A restore is SnapStart's
    whatever its type says; an on-demand init Lambda ran ahead of its first request
    (``proactive``) kept no user waiting."""
    if row["phase"] == "restore" or row["initialization_type"] == "snap-start":
        return SNAPSTART
    if row["initialization_type"] == "provisioned-concurrency":
        return PROVISIONED
    if row["proactive"]:
        return PROACTIVE
    return ON_DEMAND


@dataclass(frozen=True)
class InitPhases:
    """Where a function's median felt init went (the cold-start detector's figures)."""

    label: str
    cold_starts: int
    extensions_before_runtime_ms: float | None
    #: The runtime and the function's code outside the handler; when the runtime's start is
    #: unknown, everything until the runtime was ready (extensions starting included).
    runtime_and_function_ms: float | None
    extensions_after_runtime_ms: float | None


def init_phases(row: Mapping[str, Any], label: str) -> InitPhases:
    """Pure: a row of :data:`lambdascope.analyzers.sql.COLD_STARTS`."""
    split = int(row.get("inits_with_runtime_start") or 0) > 0
    return InitPhases(
        label=label,
        cold_starts=int(row["cold_starts"]),
        extensions_before_runtime_ms=(
            _finite(row["extensions_before_runtime_p50_ms"]) if split else None
        ),
        runtime_and_function_ms=_finite(
            row["runtime_and_function_p50_ms"] if split else row["runtime_init_p50_ms"]
        ),
        extensions_after_runtime_ms=_finite(row["extensions_after_runtime_p50_ms"]),
    )


@dataclass
class EnvironmentMemory:
    """One execution environment: Max Memory Used of its invocations against its size."""

    function_name: str
    environment_id: str
    memory_size_mb: int | None
    max_memory_used_mb: int | None
    invocations: int
    times: list[datetime] = field(default_factory=list)
    used_mb: list[float] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    #: MB per warm invocation, from this environment's memory_leak finding.
    leak_mb_per_invocation: float | None = None
    invocations_left: float | None = None

    @property
    def label(self) -> str:
        return f"{self.function_name} {self.environment_id[:8]}"


def environments(
    rows: Sequence[Mapping[str, Any]],
    points: Sequence[Mapping[str, Any]],
    leaks: Sequence[Finding] = (),
) -> list[EnvironmentMemory]:
    """Pure: :data:`.sql.ENVIRONMENTS` rows with their :data:`.sql.ENVIRONMENT_MEMORY` points
    in time order, each leaking environment carrying its finding's slope."""
    out = {
        str(r["environment_id"]): EnvironmentMemory(
            function_name=str(r["function_name"]),
            environment_id=str(r["environment_id"]),
            memory_size_mb=int(r["size_mb"]) if r["size_mb"] else None,
            max_memory_used_mb=int(r["max_used_mb"]) if r["max_used_mb"] else None,
            invocations=int(r["invocations"]),
        )
        for r in rows
    }
    for p in sorted(points, key=lambda p: (p["environment_id"], _utc(p["start_time"]))):
        env = out.get(str(p["environment_id"]))
        if env is not None:
            env.times.append(_utc(p["start_time"]))
            env.used_mb.append(float(p["max_memory_used_mb"]))
            env.request_ids.append(str(p["request_id"]))
    for finding in leaks:
        evidence = set(finding.evidence_request_ids)
        for env in out.values():
            if env.leak_mb_per_invocation is None and evidence & set(env.request_ids):
                env.leak_mb_per_invocation = finding.numbers.get("slope_mb_per_invocation")
                env.invocations_left = _finite(finding.numbers.get("invocations_left"))
                break
    return list(out.values())


@dataclass(frozen=True)
class ExtensionCost:
    """What observing a function cost it: the lambdascope extension's own figures."""

    function_name: str
    environments: int
    startup_ms_p95: float | None
    post_runtime_ms_p95: float | None
    peak_rss_mb: float | None


def extension_cost(row: Mapping[str, Any]) -> ExtensionCost:
    """Pure: a row of :data:`lambdascope.analyzers.sql.EXTENSION_OVERHEAD`."""
    return ExtensionCost(
        function_name=str(row["function_name"]),
        environments=int(row["environments"] or 0),
        startup_ms_p95=_finite(row["startup_ms_p95"]),
        post_runtime_ms_p95=_finite(row["post_runtime_ms_p95"]) if row["invocations"] else None,
        peak_rss_mb=_finite(row["peak_rss_mb_max"]),
    )


@dataclass
class ReportData:
    """Everything the report shows, read once."""

    window: Window
    function_name: str | None
    generated_at: datetime
    bucket_s: int
    buckets: list[datetime]
    summaries: list[FunctionSummary]
    #: The functions drawn one trace each (the most invoked), and the ones left out.
    charted: list[str]
    left_out: list[str]
    series: dict[str, FunctionSeries]
    #: The subject's series: the function's, or the fleet's sum.
    total: FunctionSeries
    reserved_concurrency: int | None = None
    #: Init durations (ms) by :data:`INIT_KINDS`.
    inits: dict[str, list[float]] = field(default_factory=dict)
    phases: list[InitPhases] = field(default_factory=list)
    environments: list[EnvironmentMemory] = field(default_factory=list)
    environment_count: int = 0
    costs: list[CostRow] = field(default_factory=list)
    extension: list[ExtensionCost] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: The last log lines of the first evidence requests, by request id.
    log_excerpts: dict[str, list[LogLine]] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.function_name or "the whole fleet"

    def count(self, name: str) -> int | None:
        """A header count over the window: ``invocations``, ``errors``, ``timeouts``,
        ``cold_starts`` or ``throttles`` (None when no metric stream says)."""
        if name == "throttles":
            known = [s.throttles for s in self.summaries if s.throttles is not None]
            return sum(known) if known else None
        return sum(int(getattr(s, name)) for s in self.summaries)
