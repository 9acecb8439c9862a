"""Read models of a function's invocation list (paged, filtered) and of one invocation: its
figures, its initialisation, its spans, its log and how completely it arrived.

The SQL lives in :mod:`lambdascope.analyzers.invocation_view_sql`; the ``*_row`` functions
turn its rows into dataclasses and are pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from lambdascope.analyzers import invocation_view_sql as sql
from lambdascope.analyzers.fleet import (
    Invocation,
    LogLine,
    invocation_row,
    request_logs,
    with_platform_lines,
)
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient

__all__ = [
    "FAILED_STATUSES",
    "EnvironmentExtension",
    "InitPhase",
    "InvocationDetail",
    "InvocationFilters",
    "InvocationPage",
    "InvocationView",
    "Span",
    "environment_extension_row",
    "invocation_view",
    "invocations_page",
    "last_line_before_deadline",
]

PAGE_SIZE = 50
MAX_SPANS = 200
#: A report that reached the collector this long after the invocation ended came late (a
#: frozen environment delivers it with its next invocation, or at shutdown).
LATE_AFTER = timedelta(minutes=1)
FAILED_STATUSES = ("error", "failure", "timeout")

Order = Literal["newest", "slowest", "failed"]


@dataclass(frozen=True)
class InvocationFilters:
    """What the invocation list shows; every field at its default filters nothing."""

    #: ``''`` any, ``'failed'`` (error, failure or timeout), or one status.
    status: str = ""
    cold_only: bool = False
    function_version: str = ""
    min_duration_ms: float = 0.0
    #: Requests with a log line containing this text (case ignored).
    log_text: str = ""
    order: Order = "newest"

    def parameters(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "cold_only": int(self.cold_only),
            "function_version": self.function_version,
            "min_duration_ms": float(self.min_duration_ms),
            "log_text": self.log_text,
            "order": self.order,
        }

    def describe(self) -> str:
        """``failed · cold starts · version 7 · ≥ 500 ms · logs contain "payments"``."""
        parts = []
        if self.status:
            parts.append(self.status)
        if self.cold_only:
            parts.append("cold starts")
        if self.function_version:
            parts.append(f"version {self.function_version}")
        if self.min_duration_ms:
            parts.append(f"≥ {self.min_duration_ms:g} ms")
        if self.log_text:
            parts.append(f'logs contain "{self.log_text}"')
        return " · ".join(parts)


@dataclass(frozen=True)
class InvocationPage:
    invocations: list[Invocation]
    #: Rows the filters match in the window, over every page.
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.invocations) < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0

    @property
    def number(self) -> int:
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))


def invocations_page(
    client: QueryClient,
    function_name: str,
    window: Window,
    filters: InvocationFilters = InvocationFilters(),
    *,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> InvocationPage:
    """One page of the function's invocations in the window, filtered and ordered server-side."""
    params = {
        **window.parameters(function_name),
        **filters.parameters(),
        "offset": max(0, offset),
        "limit": limit,
    }
    rows = client.query(sql.INVOCATIONS_PAGE, params).dicts()
    return page_of(rows, offset=max(0, offset), limit=limit)


def page_of(rows: Sequence[Mapping[str, Any]], *, offset: int, limit: int) -> InvocationPage:
    """Pure: a page from rows of :data:`sql.INVOCATIONS_PAGE`."""
    total = int(rows[0]["total"]) if rows else 0
    return InvocationPage([invocation_row(r) for r in rows], total, offset, limit)


@dataclass(frozen=True)
class InvocationDetail:
    """One invocation, with what only the detail view needs."""

    invocation: Invocation
    has_start: bool
    has_runtime_done: bool
    has_report: bool
    has_invoke: bool
    #: The runtime's own time (platform.runtimeDone); the report's duration adds the
    #: extensions' post-runtime time to it.
    runtime_duration_ms: float | None
    restore_duration_ms: float | None
    architecture: str
    region: str
    trace_id: str
    #: When the newest batch with one of its events was sent.
    last_received_at: datetime | None

    @property
    def post_runtime_ms(self) -> float | None:
        duration = self.invocation.duration_ms
        if not self.has_report or duration is None or self.runtime_duration_ms is None:
            return None
        return max(duration - self.runtime_duration_ms, 0.0)

    @property
    def deadline(self) -> datetime | None:
        """When Lambda would stop the request: start plus the configured timeout."""
        timeout = self.invocation.timeout_ms
        if timeout is None:
            return None
        return self.invocation.start_time + timedelta(milliseconds=timeout)

    @property
    def delivery_delay(self) -> timedelta | None:
        end = self.invocation.end_time
        if end is None or self.last_received_at is None:
            return None
        return max(self.last_received_at - end, timedelta(0))

    @property
    def late(self) -> bool:
        delay = self.delivery_delay
        return delay is not None and delay > LATE_AFTER

    @property
    def missing(self) -> list[str]:
        """The events that never reached the collector, in Lambda's names."""
        missing = []
        if not self.has_start:
            missing.append("platform.start")
        if not self.has_runtime_done:
            missing.append("platform.runtimeDone")
        if not self.has_report:
            missing.append("platform.report")
        return missing


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def detail_row(row: Mapping[str, Any]) -> InvocationDetail:
    """Pure: a row of :data:`sql.INVOCATION`."""
    return InvocationDetail(
        invocation=invocation_row(row),
        has_start=bool(row["has_start"]),
        has_runtime_done=bool(row["has_runtime_done"]),
        has_report=bool(row["has_report"]),
        has_invoke=bool(row["has_invoke"]),
        runtime_duration_ms=_float(row["runtime_done_duration_ms"]),
        restore_duration_ms=_float(row["restore_duration_ms"]),
        architecture=str(row["architecture"] or ""),
        region=str(row["region"] or ""),
        trace_id=str(row["trace_id"] or ""),
        last_received_at=row["last_received_at"],
    )


@dataclass(frozen=True)
class InitPhase:
    """One initialisation of the invocation's environment (``phase`` init, invoke, restore)."""

    phase: str
    initialization_type: str
    start_time: datetime
    init_duration_ms: float | None
    status: str
    error_type: str
    runtime_version: str
    #: Until initRuntimeDone: extensions registering, the runtime starting, the function's
    #: code outside the handler. None when the events to tell are missing.
    runtime_init_ms: float | None = None
    #: After initRuntimeDone, until every extension called its first `next`.
    extensions_after_runtime_ms: float | None = None

    #: Initialised ahead of demand (Lambda's proactive init): nobody waited for it.
    proactive: bool = False


def init_row(row: Mapping[str, Any]) -> InitPhase:
    """Pure: a row of :data:`sql.ENVIRONMENT_INITS`."""
    return InitPhase(
        phase=row["phase"],
        initialization_type=row["initialization_type"],
        start_time=row["start_time"],
        init_duration_ms=_float(row["init_duration_ms"]),
        status=row["status"],
        error_type=row["error_type"],
        runtime_version=row["runtime_version"],
        runtime_init_ms=_float(row.get("runtime_init_ms")),
        extensions_after_runtime_ms=_float(row.get("extensions_after_runtime_ms")),
        proactive=bool(row.get("proactive")),
    )


@dataclass(frozen=True)
class Span:
    start_time: datetime
    duration_ms: float
    name: str
    kind: str
    span_id: str
    parent_span_id: str
    status_code: str
    status_message: str

    @property
    def failed(self) -> bool:
        return self.status_code.upper() in ("ERROR", "STATUS_CODE_ERROR")


def span_row(row: Mapping[str, Any]) -> Span:
    """Pure: a row of :data:`sql.REQUEST_SPANS`."""
    return Span(
        start_time=row["start_time"],
        duration_ms=float(row["duration_ms"]),
        name=row["name"],
        kind=row["kind"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        status_code=row["status_code"],
        status_message=row["status_message"],
    )


@dataclass(frozen=True)
class EnvironmentExtension:
    """The lambdascope extension's figures from the request's execution environment over the
    window: the environment's, not the request's (the store has no /proc figures per request).
    """

    flushes: int
    #: The most resident memory the extension process held since it started (VmHWM).
    peak_rss_mb: float | None
    startup_ms: float | None
    #: CPU time of the extension process since it started, as of its newest flush.
    cpu_ms: float | None


def environment_extension_row(row: Mapping[str, Any]) -> EnvironmentExtension | None:
    """Pure: the row of :data:`sql.ENVIRONMENT_EXTENSION`; None when the environment sent no
    figures in the window."""
    if not int(row["flushes"]):
        return None
    return EnvironmentExtension(
        flushes=int(row["flushes"]),
        peak_rss_mb=_float(row["peak_rss_mb"]),
        startup_ms=_float(row["startup_ms"]),
        cpu_ms=_float(row["cpu_ms"]),
    )


@dataclass(frozen=True)
class InvocationView:
    detail: InvocationDetail
    #: The environment's initialisation, for a cold start; empty otherwise.
    inits: list[InitPhase] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    #: The request's log with START, END and REPORT.
    logs: list[LogLine] = field(default_factory=list)
    #: None when the environment sent no figures of the extension's own in the window.
    environment_extension: EnvironmentExtension | None = None

    @property
    def last_line_before_deadline(self) -> LogLine | None:
        return last_line_before_deadline(self.detail, self.logs)


def invocation_view(
    client: QueryClient, request_id: str, function_name: str, window: Window
) -> InvocationView | None:
    """Everything about one request of the window; None when the store has no such request."""
    params = {**window.parameters(function_name), "request_id": request_id}
    rows = client.query(sql.INVOCATION, params).dicts()
    if not rows:
        return None
    detail = detail_row(rows[0])
    invocation = detail.invocation
    inits: list[InitPhase] = []
    if invocation.cold_start or detail.restore_duration_ms is not None:
        init_params = {
            "function_name": invocation.function_name,
            "environment_id": invocation.environment_id,
        }
        found = [init_row(r) for r in client.query(sql.ENVIRONMENT_INITS, init_params).dicts()]
        # The environment's initialisations up to this request: a later one is another story.
        inits = [i for i in found if i.start_time <= invocation.start_time]
    span_params = {
        "request_id": request_id,
        "function_name": invocation.function_name,
        "start": ch_time(invocation.start_time),
        "limit": MAX_SPANS,
    }
    spans = [span_row(r) for r in client.query(sql.REQUEST_SPANS, span_params).dicts()]
    logs = with_platform_lines(invocation, request_logs(client, invocation))
    extension = None
    if invocation.environment_id:
        extension_params = {
            **window.parameters(invocation.function_name),
            "environment_id": invocation.environment_id,
        }
        extension = environment_extension_row(
            client.query(sql.ENVIRONMENT_EXTENSION, extension_params).dicts()[0]
        )
    return InvocationView(detail, inits, spans, logs, extension)


def _is_platform_verdict(line: LogLine) -> bool:
    """Lines Lambda writes about the request, not what the function said."""
    return line.stream == "platform" or "Task timed out after" in line.message


def last_line_before_deadline(detail: InvocationDetail, lines: Sequence[LogLine]) -> LogLine | None:
    """Pure: for a timed-out request, the last line the function wrote before its deadline:
    usually what it was waiting on when Lambda stopped it. None for other requests."""
    deadline = detail.deadline or detail.invocation.end_time
    if detail.invocation.status != "timeout" or deadline is None:
        return None
    before = [
        line for line in lines if not _is_platform_verdict(line) and line.timestamp <= deadline
    ]
    return before[-1] if before else None
