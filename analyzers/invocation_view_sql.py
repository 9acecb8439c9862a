"""SQL of the invocation list and of one invocation (:mod:`lambdascope.analyzers.invocation_view`).

Parameters: ``since``/``until`` (``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``function_name``,
``request_id``, ``start`` (an invocation's start, to bound its logs and spans by time),
``limit``/``offset`` (a page) and the filters of :data:`INVOCATIONS_PAGE`.
"""

from __future__ import annotations

from lambdascope.analyzers.sql import INVOCATION_COLUMNS as _COLUMNS
from lambdascope.analyzers.sql import WINDOW_INVOCATIONS as _WINDOW

#: One page of a function's invocations in the window, with the number of rows the filters
#: match (``total``, counted before the page is cut). Filters, each off at its neutral value:
#: ``status`` (``''`` any; ``'failed'`` error, failure or timeout; else that status),
#: ``cold_only`` (1: cold starts only), ``function_version`` (``''`` any), ``min_duration_ms``
#: (0: any) and ``log_text`` (``''`` any; else requests with a log line containing it, case
#: ignored). ``order``: ``'newest'``, ``'slowest'`` or ``'failed'`` (failed first, newest
#: first within each).
INVOCATIONS_PAGE = (
    """
SELECT"""
    + _COLUMNS
    + """,
    count() OVER () AS total
FROM"""
    + _WINDOW
    + """
WHERE ({status:String} = ''
        OR status = {status:String}
        OR ({status:String} = 'failed' AND status IN ('error', 'failure', 'timeout')))
    AND ({cold_only:UInt8} = 0 OR cold_start = 1)
    AND ({function_version:String} = '' OR function_version = {function_version:String})
    AND ({min_duration_ms:Float64} = 0 OR duration_ms >= {min_duration_ms:Float64})
    AND ({log_text:String} = '' OR request_id IN (
        SELECT request_id FROM logs
        WHERE function_name = {function_name:String}
            AND timestamp >= {since:DateTime64(3, 'UTC')} - INTERVAL 1 MINUTE
            AND timestamp < {until:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
            AND request_id != ''
            AND positionCaseInsensitive(message, {log_text:String}) > 0))
ORDER BY
    if({order:String} = 'failed', status IN ('error', 'failure', 'timeout'), 0) DESC,
    if({order:String} = 'slowest', coalesce(duration_ms, 0), 0) DESC,
    start_time DESC,
    request_id DESC
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
"""
)

#: One invocation, with what the collector knows about its completeness and its runtime /
#: post-runtime split (the report's duration includes the extensions' post-runtime time, the
#: runtimeDone's does not).
INVOCATION = (
    """
SELECT"""
    + _COLUMNS
    + """,
    end_time,
    has_start,
    has_runtime_done,
    has_report,
    has_invoke,
    runtime_done_duration_ms,
    restore_duration_ms,
    architecture,
    region,
    trace_id,
    last_received_at
FROM"""
    + _WINDOW
    + """
WHERE request_id = {request_id:String}
LIMIT 1
"""
)

#: The initialisations of one execution environment (its cold start, an init retried inside
#: the first invocation, a SnapStart restore), oldest first.
ENVIRONMENT_INITS = """
SELECT
    phase,
    initialization_type,
    start_time,
    init_duration_ms,
    runtime_init_ms,
    extensions_after_runtime_ms,
    proactive,
    status,
    error_type,
    runtime_version
FROM cold_starts
WHERE function_name = {function_name:String}
    AND environment_id = {environment_id:String}
ORDER BY start_time, phase
LIMIT 10
"""

#: The lambdascope extension's own figures from one execution environment over the window
#: (``extension_stats``, one row per flush). The store keeps no /proc figures per request (the
#: extension's per-invocation samples are not stored), so these are the environment's, not the
#: request's: its extension process's peak resident memory (VmHWM, the most it held since it
#: started), its start-up and its CPU time since it started, as of its newest flush in the
#: window. Always one row; ``flushes`` = 0 when the environment sent none.
ENVIRONMENT_EXTENSION = """
SELECT
    count() AS flushes,
    max(peak_rss_mb) AS peak_rss_mb,
    max(startup_ms) AS startup_ms,
    max(cpu_ms) AS cpu_ms
FROM extension_stats
WHERE function_name = {function_name:String}
    AND environment_id = {environment_id:String}
    AND time >= {since:DateTime64(3, 'UTC')}
    AND time < {until:DateTime64(3, 'UTC')}
"""

#: The OpenTelemetry spans of one request (``RequestId``, from ``faas.invocation_id``), in
#: start order. The time bounds (a minute before the start, Lambda's 15-minute maximum and a
#: minute after) let the store prune by partition.
REQUEST_SPANS = """
SELECT
    Timestamp AS start_time,
    Duration / 1000000 AS duration_ms,
    SpanName AS name,
    SpanKind AS kind,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    StatusCode AS status_code,
    StatusMessage AS status_message
FROM otel_traces
WHERE RequestId = {request_id:String}
    AND ({function_name:String} = '' OR FunctionName = {function_name:String})
    AND Timestamp >= {start:DateTime64(3, 'UTC')} - INTERVAL 1 MINUTE
    AND Timestamp < {start:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
ORDER BY Timestamp, SpanId
LIMIT {limit:UInt32}
"""
