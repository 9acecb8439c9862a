"""Per-minute rollups of invocations (``invocation_minutes``) and the materialized views that
keep them from ``invocation_parts``, so fleet views and the detectors' screens never scan raw
rows; the backfill of an upgraded store.
"""

from __future__ import annotations

# Per-minute rollups per function version, kept by a materialized view from the report parts
# (one per reported invocation), so fleet views never scan raw rows. Invocations whose report
# never arrived are not counted here; `invocations` has them with status 'unknown'.
CREATE_INVOCATION_MINUTES = """
CREATE TABLE IF NOT EXISTS invocation_minutes (
    function_name LowCardinality(String),
    function_version LowCardinality(String),
    minute DateTime('UTC') CODEC(Delta, ZSTD(1)),
    invocations SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    timeouts SimpleAggregateFunction(sum, UInt64),
    cold_starts SimpleAggregateFunction(sum, UInt64),
    duration_ms_sum SimpleAggregateFunction(sum, Float64),
    billed_duration_ms_sum SimpleAggregateFunction(sum, Float64),
    max_duration_ms SimpleAggregateFunction(max, Float64),
    max_memory_used_mb SimpleAggregateFunction(max, UInt32),
    duration_ms_quantiles AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64),
    init_duration_ms_quantiles AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (function_name, function_version, minute)
TTL minute + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1
"""

CREATE_INVOCATION_MINUTES_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS invocation_minutes_mv TO invocation_minutes AS
SELECT
    function_name,
    function_version,
    toStartOfMinute(fromUnixTimestamp64Milli(
        toUnixTimestamp64Milli(assumeNotNull(report_time))
        - toInt64(round(coalesce(report_duration_ms, 0))), 'UTC')) AS minute,
    count() AS invocations,
    countIf(report_status IN ('error', 'failure')) AS errors,
    countIf(report_status = 'timeout') AS timeouts,
    countIf(report_init_duration_ms IS NOT NULL) AS cold_starts,
    sum(coalesce(report_duration_ms, 0)) AS duration_ms_sum,
    sum(coalesce(report_billed_duration_ms, 0)) AS billed_duration_ms_sum,
    max(coalesce(report_duration_ms, 0)) AS max_duration_ms,
    max(coalesce(report_max_memory_used_mb, 0)) AS max_memory_used_mb,
    quantilesStateIf(0.5, 0.9, 0.99)(
        coalesce(report_duration_ms, 0), report_duration_ms IS NOT NULL) AS duration_ms_quantiles,
    quantilesStateIf(0.5, 0.9, 0.99)(
        coalesce(report_init_duration_ms, 0), report_init_duration_ms IS NOT NULL)
        AS init_duration_ms_quantiles
FROM invocation_parts
WHERE has_report = 1 AND report_time IS NOT NULL
GROUP BY function_name, function_version, minute
"""

# The target of the invocation_parts materialized views keeps its own deduplication log: a
# retried insert invocation_parts drops is dropped here too, instead of being counted again
# (collector/store.py).
ALTER_INVOCATION_MINUTES_DEDUP = (
    "ALTER TABLE invocation_minutes MODIFY SETTING non_replicated_deduplication_window = "
    "{dedup_window}"
)

# Migration 8: what the fleet table and the detectors' screening need from the per-minute
# rollups besides the reported invocations, kept by a second materialized view over *every*
# part (invocation_minutes_mv sees only the report parts). A part may carry one event or
# several (the collector merges a request's events within a batch), so every figure counts by
# the part's own flags, never "one part = one event":
#
# * started: parts with has_start = 1. Per function over a window, started - invocations
#   (the reported ones) is the invocations whose report never came (crashes, timeouts, lost
#   telemetry); the fleet counts max(started, reported) invocations.
# * unreported_errors / unreported_timeouts: parts without the report whose runtimeDone said
#   error/failure or timeout (or, with no runtimeDone either, the "Task timed out" line).
#   A request whose report arrives in a later part is counted here *and* in errors/timeouts,
#   so errors + unreported_errors is an upper bound, which is what a screen needs.
# * oom_errors: parts whose report or runtimeDone names Runtime.OutOfMemory.
# * max_memory_used_pct, max_memory_size_mb, min/max_timeout_ms, max_unreported_duration_ms
#   (a runtimeDone duration without the report), max_init_duration_ms, billed_gb_seconds,
#   last_start_time (of platform.start events), and the architectures and regions reported
#   (so costs are priced from the rollups).
#
# Each part goes to the minute of the start it implies (its platform.start, else report time
# minus duration, else runtimeDone time minus duration, else when it arrived), so a merged
# part counts in its invocation's start minute.
ALTER_INVOCATION_MINUTES_ADD_EVENTS = """
ALTER TABLE invocation_minutes
    ADD COLUMN IF NOT EXISTS started SimpleAggregateFunction(sum, UInt64) DEFAULT 0,
    ADD COLUMN IF NOT EXISTS unreported_errors SimpleAggregateFunction(sum, UInt64) DEFAULT 0,
    ADD COLUMN IF NOT EXISTS unreported_timeouts SimpleAggregateFunction(sum, UInt64) DEFAULT 0,
    ADD COLUMN IF NOT EXISTS oom_errors SimpleAggregateFunction(sum, UInt64) DEFAULT 0,
    ADD COLUMN IF NOT EXISTS max_memory_used_pct SimpleAggregateFunction(max, Nullable(Float64)),
    ADD COLUMN IF NOT EXISTS max_memory_size_mb SimpleAggregateFunction(max, Nullable(UInt32)),
    ADD COLUMN IF NOT EXISTS min_timeout_ms SimpleAggregateFunction(min, Nullable(Float64)),
    ADD COLUMN IF NOT EXISTS max_timeout_ms SimpleAggregateFunction(max, Nullable(Float64)),
    ADD COLUMN IF NOT EXISTS max_unreported_duration_ms
        SimpleAggregateFunction(max, Nullable(Float64)),
    ADD COLUMN IF NOT EXISTS max_init_duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    ADD COLUMN IF NOT EXISTS billed_gb_seconds SimpleAggregateFunction(sum, Float64) DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_start_time
        SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))) CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS architectures
        SimpleAggregateFunction(groupUniqArrayArray, Array(String)) DEFAULT [],
    ADD COLUMN IF NOT EXISTS regions
        SimpleAggregateFunction(groupUniqArrayArray, Array(String)) DEFAULT []
"""

# The view runs on every insert into invocation_parts, and its cost there is almost all per
# insert, not per row (analysing and planning the SELECT, writing a part): about the same for
# 100 rows as for 3,000. So it reads the inserted columns directly (no subquery re-selecting
# every column), takes each part's start minute in whole milliseconds with one integer
# division (the same minute as toStartOfMinute of the start time), and filters with -If
# combinators instead of if(..., NULL) per figure.
_INVOCATION_MINUTES_EVENTS_SELECT = """
WITH coalesce(report_memory_size_mb, env_memory_size_mb) AS part_memory_size_mb
SELECT
    function_name,
    function_version,
    toDateTime(intDiv(coalesce(
        toUnixTimestamp64Milli(start_time),
        toUnixTimestamp64Milli(report_time) - toInt64(round(coalesce(report_duration_ms, 0))),
        toUnixTimestamp64Milli(runtime_done_time)
            - toInt64(round(coalesce(runtime_done_duration_ms, 0))),
        toUnixTimestamp64Milli(received_at),
        toUnixTimestamp64Milli(last_sent_at),
        toInt64(toUnixTimestamp(event_date, 'UTC')) * 1000
    ), 60000) * 60, 'UTC') AS minute,
    countIf(has_start = 1) AS started,
    countIf(has_report = 0 AND runtime_done_status IN ('error', 'failure')) AS unreported_errors,
    countIf(has_report = 0 AND (runtime_done_status = 'timeout'
        OR (runtime_done_status IS NULL AND timed_out_log = 1))) AS unreported_timeouts,
    countIf(coalesce(report_error_type, runtime_done_error_type, '') = 'Runtime.OutOfMemory')
        AS oom_errors,
    maxIf(report_max_memory_used_mb * 100.0 / part_memory_size_mb,
        has_report = 1 AND part_memory_size_mb > 0) AS max_memory_used_pct,
    max(part_memory_size_mb) AS max_memory_size_mb,
    min(timeout_ms) AS min_timeout_ms,
    max(timeout_ms) AS max_timeout_ms,
    maxIf(runtime_done_duration_ms, has_report = 0) AS max_unreported_duration_ms,
    max(report_init_duration_ms) AS max_init_duration_ms,
    sumIf(coalesce(report_billed_duration_ms, 0) / 1000 * coalesce(part_memory_size_mb, 0) / 1024,
        has_report = 1) AS billed_gb_seconds,
    maxIf(start_time, has_start = 1) AS last_start_time,
    groupUniqArrayIf(if(architecture = '', 'x86_64', toString(architecture)), has_report = 1)
        AS architectures,
    groupUniqArrayIf(toString(region), has_report = 1) AS regions
FROM invocation_parts
GROUP BY function_name, function_version, minute
"""

CREATE_INVOCATION_MINUTES_EVENTS_MV = (
    "\nCREATE MATERIALIZED VIEW IF NOT EXISTS invocation_minutes_events_mv TO invocation_minutes AS"
    + _INVOCATION_MINUTES_EVENTS_SELECT
)

_INVOCATION_MINUTES_EVENTS_COLUMNS = (
    "function_name, function_version, minute, started, unreported_errors, unreported_timeouts, "
    "oom_errors, max_memory_used_pct, max_memory_size_mb, min_timeout_ms, max_timeout_ms, "
    "max_unreported_duration_ms, max_init_duration_ms, billed_gb_seconds, last_start_time, "
    "architectures, regions"
)

#: A store upgraded from version 7 already holds parts the new view never saw: the same SELECT
#: over them fills the new columns once (collector/schema.py runs it just before creating the
#: view, and only on a store that had data, so nothing is counted twice by this collector).
BACKFILL_INVOCATION_MINUTES_EVENTS = (
    f"\nINSERT INTO invocation_minutes ({_INVOCATION_MINUTES_EVENTS_COLUMNS})"
    + _INVOCATION_MINUTES_EVENTS_SELECT
)

#: Whether the new columns already hold anything (another collector backfilled, or the view
#: has been running): then the backfill is skipped.
SELECT_EVENTS_ROLLUP_FILLED = "SELECT count() FROM invocation_minutes WHERE started > 0"

# Migration 12: the memory headroom per minute, the distribution of Max Memory Used as a
# share of the memory size over the reported invocations, so the fleet table shows a p95 and
# not only the peak. A view of its own: a materialized view's query cannot be changed in place.
ALTER_INVOCATION_MINUTES_ADD_MEMORY = """
ALTER TABLE invocation_minutes
    ADD COLUMN IF NOT EXISTS memory_used_pct_quantiles
        AggregateFunction(quantiles(0.5, 0.95), Float64)
"""

_INVOCATION_MINUTES_MEMORY_SELECT = """
WITH coalesce(report_memory_size_mb, env_memory_size_mb) AS part_memory_size_mb
SELECT
    function_name,
    function_version,
    toStartOfMinute(fromUnixTimestamp64Milli(
        toUnixTimestamp64Milli(assumeNotNull(report_time))
        - toInt64(round(coalesce(report_duration_ms, 0))), 'UTC')) AS minute,
    quantilesStateIf(0.5, 0.95)(
        coalesce(report_max_memory_used_mb, 0) * 100.0 / assumeNotNull(part_memory_size_mb),
        report_max_memory_used_mb IS NOT NULL AND part_memory_size_mb > 0)
        AS memory_used_pct_quantiles
FROM invocation_parts
WHERE has_report = 1 AND report_time IS NOT NULL
GROUP BY function_name, function_version, minute
"""

CREATE_INVOCATION_MINUTES_MEMORY_MV = (
    "\nCREATE MATERIALIZED VIEW IF NOT EXISTS invocation_minutes_memory_mv TO invocation_minutes AS"
    + _INVOCATION_MINUTES_MEMORY_SELECT
)

#: A store upgraded from version 11 fills the headroom of the minutes it already holds once.
BACKFILL_INVOCATION_MINUTES_MEMORY = (
    "\nINSERT INTO invocation_minutes "
    "(function_name, function_version, minute, memory_used_pct_quantiles)"
    + _INVOCATION_MINUTES_MEMORY_SELECT
)

#: Whether some minute already has a headroom (the view has been running): skip the backfill.
SELECT_MEMORY_ROLLUP_FILLED = (
    "SELECT count() FROM (SELECT function_name FROM invocation_minutes "
    "GROUP BY function_name, function_version, minute "
    "HAVING notEmpty(quantilesMerge(0.5, 0.95)(memory_used_pct_quantiles)) "
    "AND quantilesMerge(0.5, 0.95)(memory_used_pct_quantiles)[2] > 0 LIMIT 1)"
)

# Migration 15: the three views above as one. Each view costs a fixed time on every insert into
# invocation_parts whatever its rows (planning its SELECT, writing a part), so one view with all
# the figures costs about half what the three did on every ingest commit. The rows it writes are
# the ones the three wrote, merged per minute: each part becomes a "report" row (kind 1: report
# parts with a report time, in the minute of report time minus duration, the figures of
# invocation_minutes_mv and invocation_minutes_memory_mv) and an "events" row (kind 2: every
# part, in the minute of the start it implies, the figures of invocation_minutes_events_mv).
# Each figure aggregates its own kind and is left by the other what the separate view left it:
# 0, NULL (an -If over a Nullable argument with no row is NULL), an empty array or quantile
# state. The two maxima of the report rollup take 0 from the events rows rather than skip them,
# as the events view's row of the same minute held 0 there.
CREATE_INVOCATION_MINUTES_ROLLUP_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS invocation_minutes_rollup_mv TO invocation_minutes AS
WITH coalesce(report_memory_size_mb, env_memory_size_mb) AS part_memory_size_mb
SELECT
    function_name,
    function_version,
    if(kind = 1,
        toStartOfMinute(fromUnixTimestamp64Milli(
            toUnixTimestamp64Milli(assumeNotNull(report_time))
            - toInt64(round(coalesce(report_duration_ms, 0))), 'UTC')),
        toDateTime(intDiv(coalesce(
            toUnixTimestamp64Milli(start_time),
            toUnixTimestamp64Milli(report_time)
                - toInt64(round(coalesce(report_duration_ms, 0))),
            toUnixTimestamp64Milli(runtime_done_time)
                - toInt64(round(coalesce(runtime_done_duration_ms, 0))),
            toUnixTimestamp64Milli(received_at),
            toUnixTimestamp64Milli(last_sent_at),
            toInt64(toUnixTimestamp(event_date, 'UTC')) * 1000
        ), 60000) * 60, 'UTC')) AS minute,
    countIf(kind = 1) AS invocations,
    countIf(kind = 1 AND report_status IN ('error', 'failure')) AS errors,
    countIf(kind = 1 AND report_status = 'timeout') AS timeouts,
    countIf(kind = 1 AND report_init_duration_ms IS NOT NULL) AS cold_starts,
    sumIf(coalesce(report_duration_ms, 0), kind = 1) AS duration_ms_sum,
    sumIf(coalesce(report_billed_duration_ms, 0), kind = 1) AS billed_duration_ms_sum,
    max(if(kind = 1, coalesce(report_duration_ms, 0), 0)) AS max_duration_ms,
    max(if(kind = 1, coalesce(report_max_memory_used_mb, 0), 0)) AS max_memory_used_mb,
    quantilesStateIf(0.5, 0.9, 0.99)(
        coalesce(report_duration_ms, 0), kind = 1 AND report_duration_ms IS NOT NULL)
        AS duration_ms_quantiles,
    quantilesStateIf(0.5, 0.9, 0.99)(
        coalesce(report_init_duration_ms, 0), kind = 1 AND report_init_duration_ms IS NOT NULL)
        AS init_duration_ms_quantiles,
    quantilesStateIf(0.5, 0.95)(
        coalesce(report_max_memory_used_mb, 0) * 100.0 / assumeNotNull(part_memory_size_mb),
        kind = 1 AND report_max_memory_used_mb IS NOT NULL AND part_memory_size_mb > 0)
        AS memory_used_pct_quantiles,
    countIf(kind = 2 AND has_start = 1) AS started,
    countIf(kind = 2 AND has_report = 0 AND runtime_done_status IN ('error', 'failure'))
        AS unreported_errors,
    countIf(kind = 2 AND has_report = 0 AND (runtime_done_status = 'timeout'
        OR (runtime_done_status IS NULL AND timed_out_log = 1))) AS unreported_timeouts,
    countIf(kind = 2
        AND coalesce(report_error_type, runtime_done_error_type, '') = 'Runtime.OutOfMemory')
        AS oom_errors,
    maxIf(report_max_memory_used_mb * 100.0 / part_memory_size_mb,
        kind = 2 AND has_report = 1 AND part_memory_size_mb > 0) AS max_memory_used_pct,
    maxIf(part_memory_size_mb, kind = 2) AS max_memory_size_mb,
    minIf(timeout_ms, kind = 2) AS min_timeout_ms,
    maxIf(timeout_ms, kind = 2) AS max_timeout_ms,
    maxIf(runtime_done_duration_ms, kind = 2 AND has_report = 0) AS max_unreported_duration_ms,
    maxIf(report_init_duration_ms, kind = 2) AS max_init_duration_ms,
    sumIf(coalesce(report_billed_duration_ms, 0) / 1000 * coalesce(part_memory_size_mb, 0) / 1024,
        kind = 2 AND has_report = 1) AS billed_gb_seconds,
    maxIf(start_time, kind = 2 AND has_start = 1) AS last_start_time,
    groupUniqArrayIf(if(architecture = '', 'x86_64', toString(architecture)),
        kind = 2 AND has_report = 1) AS architectures,
    groupUniqArrayIf(toString(region), kind = 2 AND has_report = 1) AS regions
FROM invocation_parts
ARRAY JOIN if(has_report = 1 AND report_time IS NOT NULL, [1, 2], [2]) AS kind
GROUP BY function_name, function_version, minute
"""

# The views migration 15 replaces (a materialized view is dropped with DROP VIEW).
DROP_INVOCATION_MINUTES_MV = "DROP VIEW IF EXISTS invocation_minutes_mv"
DROP_INVOCATION_MINUTES_EVENTS_MV = "DROP VIEW IF EXISTS invocation_minutes_events_mv"
DROP_INVOCATION_MINUTES_MEMORY_MV = "DROP VIEW IF EXISTS invocation_minutes_memory_mv"
