"""Every SQL statement the collector runs, in one place.

Values are bound server-side with ``{name:Type}`` placeholders. The only things formatted into
DDL are numbers the collector validated itself (retention days, dedup window) and identifiers
checked against :data:`IDENTIFIER` (the database name from configuration).
"""

from __future__ import annotations

import re

#: A database name the collector accepts (it is written into DDL, so no quoting tricks).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: How many recent insert block ids each table remembers to drop a retried insert.
DEDUP_WINDOW = 10_000
#: Days a batch's body is kept in `batches` to redo a write that was cut short.
INTENT_DAYS = 2
#: A write cut short is redone when one of its batches arrives again within this many minutes
#: of the first attempt; later, the deduplication window (DEDUP_WINDOW inserts per table) may
#: have moved on, and a redo could store twice what a redo within it would not.
REDO_WINDOW_MINUTES = 10

CREATE_DATABASE = "CREATE DATABASE IF NOT EXISTS `{database}`"

CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    description String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY version
"""

SELECT_SCHEMA_VERSION = "SELECT max(version) FROM schema_migrations"

INSERT_MIGRATION = "INSERT INTO schema_migrations (version, description) VALUES"

# Partial invocation rows collapse per (function_name, request_id): the aggregate functions
# skip NULLs, so each event fills in only what it knows. Partitions are days of the event; a
# request straddling midnight keeps two parts, which the view's GROUP BY still merges.
CREATE_INVOCATION_PARTS = """
CREATE TABLE IF NOT EXISTS invocation_parts (
    function_name LowCardinality(String),
    request_id String,
    event_date Date,
    function_version SimpleAggregateFunction(max, LowCardinality(String)),
    environment_id SimpleAggregateFunction(max, String),
    region SimpleAggregateFunction(max, LowCardinality(String)),
    architecture SimpleAggregateFunction(max, LowCardinality(String)),
    env_memory_size_mb SimpleAggregateFunction(max, Nullable(UInt32)),
    start_time SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))) CODEC(ZSTD(1)),
    runtime_done_time SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))) CODEC(ZSTD(1)),
    report_time SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))) CODEC(ZSTD(1)),
    received_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))) CODEC(ZSTD(1)),
    deadline SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))) CODEC(ZSTD(1)),
    timeout_ms SimpleAggregateFunction(max, Nullable(Float64)),
    invoked_function_arn SimpleAggregateFunction(any, Nullable(String)),
    trace_id SimpleAggregateFunction(any, Nullable(String)),
    runtime_done_status SimpleAggregateFunction(any, Nullable(String)),
    runtime_done_error_type SimpleAggregateFunction(any, Nullable(String)),
    runtime_done_duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    runtime_done_produced_bytes SimpleAggregateFunction(max, Nullable(UInt64)),
    report_status SimpleAggregateFunction(any, Nullable(String)),
    report_error_type SimpleAggregateFunction(any, Nullable(String)),
    report_duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    report_billed_duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    report_memory_size_mb SimpleAggregateFunction(max, Nullable(UInt32)),
    report_max_memory_used_mb SimpleAggregateFunction(max, Nullable(UInt32)),
    report_init_duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    report_restore_duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    timed_out_log SimpleAggregateFunction(max, UInt8),
    has_start SimpleAggregateFunction(max, UInt8),
    has_runtime_done SimpleAggregateFunction(max, UInt8),
    has_report SimpleAggregateFunction(max, UInt8),
    has_invoke SimpleAggregateFunction(max, UInt8),
    log_lines SimpleAggregateFunction(sum, UInt64),
    last_sent_at SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree
PARTITION BY event_date
ORDER BY (function_name, request_id)
TTL event_date + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

# The merged invocation (docs/architecture.md §2), over the per-request aggregates of the parts
# below. Report status is authoritative; runtimeDone fills in what a missing report lacks; a
# "Task timed out" line marks a timeout whose runtimeDone and report never arrived.
_INVOCATION_SELECT = """
SELECT
    function_name,
    function_version,
    request_id,
    environment_id,
    assumeNotNull(coalesce(
        p_start_time,
        fromUnixTimestamp64Milli(
            toUnixTimestamp64Milli(p_report_time) - toInt64(round(p_report_duration_ms)), 'UTC'),
        fromUnixTimestamp64Milli(
            toUnixTimestamp64Milli(p_runtime_done_time)
            - toInt64(round(p_runtime_done_duration_ms)), 'UTC'),
        p_received_at,
        p_report_time,
        p_runtime_done_time,
        p_last_sent_at,
        toDateTime64(0, 3, 'UTC')
    )) AS start_time,
    fromUnixTimestamp64Milli(
        toUnixTimestamp64Milli(start_time) + toInt64(round(duration_ms)), 'UTC') AS end_time,
    coalesce(p_report_duration_ms, p_runtime_done_duration_ms) AS duration_ms,
    p_report_billed_duration_ms AS billed_duration_ms,
    coalesce(p_report_memory_size_mb, p_env_memory_size_mb) AS memory_size_mb,
    p_report_max_memory_used_mb AS max_memory_used_mb,
    p_report_init_duration_ms AS init_duration_ms,
    toUInt8(init_duration_ms IS NOT NULL) AS cold_start,
    coalesce(
        p_report_status,
        p_runtime_done_status,
        if(p_timed_out_log = 1, 'timeout', NULL),
        'unknown'
    ) AS status,
    if(status = 'success', '',
       coalesce(p_report_error_type, p_runtime_done_error_type, '')) AS error_type,
    p_timeout_ms AS timeout_ms,
    p_has_start AS has_start,
    p_has_runtime_done AS has_runtime_done,
    p_has_report AS has_report,
    p_has_invoke AS has_invoke,
    p_region AS region,
    p_architecture AS architecture,
    p_invoked_function_arn AS invoked_function_arn,
    p_trace_id AS trace_id,
    p_report_restore_duration_ms AS restore_duration_ms,
    p_runtime_done_status AS runtime_done_status,
    p_runtime_done_duration_ms AS runtime_done_duration_ms,
    p_runtime_done_produced_bytes AS produced_bytes,
    p_log_lines AS log_lines,
    p_last_sent_at AS last_received_at
FROM (
    SELECT
        function_name,
        request_id,
        toString(max(function_version)) AS function_version,
        toString(max(environment_id)) AS environment_id,
        toString(max(region)) AS p_region,
        toString(max(architecture)) AS p_architecture,
        max(env_memory_size_mb) AS p_env_memory_size_mb,
        min(start_time) AS p_start_time,
        max(runtime_done_time) AS p_runtime_done_time,
        max(report_time) AS p_report_time,
        min(received_at) AS p_received_at,
        max(timeout_ms) AS p_timeout_ms,
        any(invoked_function_arn) AS p_invoked_function_arn,
        any(trace_id) AS p_trace_id,
        any(runtime_done_status) AS p_runtime_done_status,
        any(runtime_done_error_type) AS p_runtime_done_error_type,
        max(runtime_done_duration_ms) AS p_runtime_done_duration_ms,
        max(runtime_done_produced_bytes) AS p_runtime_done_produced_bytes,
        any(report_status) AS p_report_status,
        any(report_error_type) AS p_report_error_type,
        max(report_duration_ms) AS p_report_duration_ms,
        max(report_billed_duration_ms) AS p_report_billed_duration_ms,
        max(report_memory_size_mb) AS p_report_memory_size_mb,
        max(report_max_memory_used_mb) AS p_report_max_memory_used_mb,
        max(report_init_duration_ms) AS p_report_init_duration_ms,
        max(report_restore_duration_ms) AS p_report_restore_duration_ms,
        toUInt8(max(timed_out_log)) AS p_timed_out_log,
        toUInt8(max(has_start)) AS p_has_start,
        toUInt8(max(has_runtime_done)) AS p_has_runtime_done,
        toUInt8(max(has_report)) AS p_has_report,
        toUInt8(max(has_invoke)) AS p_has_invoke,
        toUInt64(sum(log_lines)) AS p_log_lines,
        max(last_sent_at) AS p_last_sent_at
    FROM invocation_parts"""

CREATE_INVOCATIONS_VIEW = (
    "\nCREATE OR REPLACE VIEW invocations AS"
    + _INVOCATION_SELECT
    + """
    GROUP BY function_name, request_id
)
"""
)

#: How far an invocation's events may lie from its start: Lambda's 15-minute maximum timeout
#: plus a minute for the report and delivery skew. Every part of an invocation that started in
#: [since, until) has an event_time in [since - slack, until + slack), and an invocation that
#: started before since - slack has no part inside it, so reading only those parts merges every
#: invocation of the window completely and no other invocation into it.
EVENT_SLACK_MINUTES = 16

# The same rows as `invocations`, for one window (and optionally one function), reading only
# the parts whose event_time can belong to it: the parts_by_time projection (ORDER BY
# function_name, event_time) prunes the rest, so a 1-hour window of a 24-hour store reads a
# tenth of it instead of all of it.
CREATE_INVOCATIONS_BETWEEN_VIEW = (
    "\nCREATE OR REPLACE VIEW invocations_between AS"
    + _INVOCATION_SELECT
    + f"""
    WHERE event_time >= {{since:DateTime64(3, 'UTC')}} - INTERVAL {EVENT_SLACK_MINUTES} MINUTE
        AND event_time < {{until:DateTime64(3, 'UTC')}} + INTERVAL {EVENT_SLACK_MINUTES} MINUTE
        AND ({{function_name:String}} = '' OR function_name = {{function_name:String}})
    GROUP BY function_name, request_id
)
WHERE start_time >= {{since:DateTime64(3, 'UTC')}} AND start_time < {{until:DateTime64(3, 'UTC')}}
"""
)

CREATE_LOGS = """
CREATE TABLE IF NOT EXISTS logs (
    timestamp DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    function_name LowCardinality(String),
    function_version LowCardinality(String),
    environment_id String CODEC(ZSTD(1)),
    request_id String CODEC(ZSTD(1)),
    stream LowCardinality(String),
    level LowCardinality(String),
    message String CODEC(ZSTD(1)),
    batch_id String CODEC(ZSTD(1)),
    seq UInt32,
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_request_id request_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (function_name, timestamp)
TTL toDateTime(timestamp) + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

CREATE_BATCHES = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id String,
    received_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    sent_at Nullable(DateTime64(3, 'UTC')),
    function_name LowCardinality(String),
    environment_id String,
    telemetry_events UInt32,
    invocation_rows UInt32,
    log_rows UInt32,
    dropped_records UInt64
) ENGINE = MergeTree
PARTITION BY toDate(received_at)
ORDER BY batch_id
TTL toDateTime(received_at) + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

BATCH_COLUMNS = (
    "batch_id",
    "sent_at",
    "function_name",
    "environment_id",
    "telemetry_events",
    "invocation_rows",
    "log_rows",
    "dropped_records",
    "group_token",
    "content_encoding",
    "body",
)

SELECT_BATCHES_SEEN = (
    "SELECT batch_id, any(group_token), min(received_at) FROM batches "
    "WHERE batch_id IN {batch_ids:Array(String)} GROUP BY batch_id"
)

# Exactly once (collector/store.py; docs/architecture.md, "Exactly once"): a group's
# `batches` rows are written first, with each batch's body as received and the group's
# deduplication token, then its rows in every table under that token. A batch that arrives
# again finds its row here, and its group is written once more from these bodies under the
# same token (each table keeps what it committed and gets what it missed) before it is
# answered as a duplicate. The bodies are kept for INTENT_DAYS only (a column TTL).
ALTER_BATCHES_ADD_GROUP = (
    "ALTER TABLE batches ADD COLUMN IF NOT EXISTS group_token String DEFAULT '' "
    "AFTER dropped_records"
)
ALTER_BATCHES_ADD_ENCODING = (
    "ALTER TABLE batches ADD COLUMN IF NOT EXISTS content_encoding LowCardinality(String) "
    "DEFAULT '' AFTER group_token"
)
# The bodies arrive gzip-compressed: compressing them again would cost ingest CPU for nothing.
ALTER_BATCHES_ADD_BODY = (
    "ALTER TABLE batches ADD COLUMN IF NOT EXISTS body String DEFAULT '' CODEC(NONE) "
    "TTL toDateTime(received_at) + INTERVAL {intent_days} DAY AFTER content_encoding"
)

# A redo finds its group by token without reading the whole ledger.
ALTER_BATCHES_ADD_GROUP_INDEX = (
    "ALTER TABLE batches ADD INDEX IF NOT EXISTS idx_group_token group_token "
    "TYPE bloom_filter(0.01) GRANULARITY 1"
)

#: One group's batches, as received.
SELECT_GROUP_BODIES = (
    "SELECT batch_id, content_encoding, body FROM batches "
    "WHERE group_token = {group_token:String} ORDER BY batch_id LIMIT 1 BY batch_id"
)

# One row per initialisation, merged like invocations: initStart, initRuntimeDone and
# initReport may arrive in different batches.
CREATE_COLD_START_PARTS = """
CREATE TABLE IF NOT EXISTS cold_start_parts (
    function_name LowCardinality(String),
    environment_id String,
    phase LowCardinality(String),
    event_date Date,
    function_version SimpleAggregateFunction(max, LowCardinality(String)),
    initialization_type SimpleAggregateFunction(any, Nullable(String)),
    init_start_time SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    runtime_done_time SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    report_time SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    runtime_version SimpleAggregateFunction(any, Nullable(String)),
    runtime_done_status SimpleAggregateFunction(any, Nullable(String)),
    runtime_done_error_type SimpleAggregateFunction(any, Nullable(String)),
    report_status SimpleAggregateFunction(any, Nullable(String)),
    report_error_type SimpleAggregateFunction(any, Nullable(String)),
    init_duration_ms SimpleAggregateFunction(max, Nullable(Float64)),
    has_init_start SimpleAggregateFunction(max, UInt8),
    has_runtime_done SimpleAggregateFunction(max, UInt8),
    has_report SimpleAggregateFunction(max, UInt8)
) ENGINE = AggregatingMergeTree
PARTITION BY event_date
ORDER BY (function_name, environment_id, phase)
TTL event_date + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

CREATE_COLD_STARTS_VIEW = """
CREATE OR REPLACE VIEW cold_starts AS
SELECT
    function_name,
    function_version,
    environment_id,
    phase,
    coalesce(p_initialization_type, '') AS initialization_type,
    assumeNotNull(coalesce(
        p_init_start_time,
        fromUnixTimestamp64Milli(
            toUnixTimestamp64Milli(p_report_time) - toInt64(round(init_duration_ms)), 'UTC'),
        p_runtime_done_time,
        p_report_time,
        toDateTime64(0, 3, 'UTC')
    )) AS start_time,
    init_duration_ms,
    coalesce(p_report_status, p_runtime_done_status, 'unknown') AS status,
    if(status = 'success', '',
       coalesce(p_report_error_type, p_runtime_done_error_type, '')) AS error_type,
    coalesce(p_runtime_version, '') AS runtime_version,
    p_has_init_start AS has_init_start,
    p_has_runtime_done AS has_runtime_done,
    p_has_report AS has_report
FROM (
    SELECT
        function_name,
        environment_id,
        phase,
        toString(max(function_version)) AS function_version,
        any(initialization_type) AS p_initialization_type,
        min(init_start_time) AS p_init_start_time,
        max(runtime_done_time) AS p_runtime_done_time,
        max(report_time) AS p_report_time,
        any(runtime_version) AS p_runtime_version,
        any(runtime_done_status) AS p_runtime_done_status,
        any(runtime_done_error_type) AS p_runtime_done_error_type,
        any(report_status) AS p_report_status,
        any(report_error_type) AS p_report_error_type,
        max(init_duration_ms) AS init_duration_ms,
        toUInt8(max(has_init_start)) AS p_has_init_start,
        toUInt8(max(has_runtime_done)) AS p_has_runtime_done,
        toUInt8(max(has_report)) AS p_has_report
    FROM cold_start_parts
    GROUP BY function_name, environment_id, phase
)
"""

# OpenTelemetry ClickHouse exporter layout (otel_traces / otel_logs), plus FunctionName and
# RequestId so spans and lines join to invocations.
CREATE_OTEL_TRACES = """
CREATE TABLE IF NOT EXISTS otel_traces (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    FunctionName LowCardinality(String) CODEC(ZSTD(1)),
    RequestId String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_request_id RequestId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
TTL toDateTime(Timestamp) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1
"""

CREATE_OTEL_TRACE_ID_TS = """
CREATE TABLE IF NOT EXISTS otel_traces_trace_id_ts (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
TTL Start + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1
"""

# A materialized view's target keeps its own deduplication log: a retried insert the source
# table drops is dropped here too, instead of being counted again (collector/store.py).
ALTER_INVOCATION_MINUTES_DEDUP = (
    "ALTER TABLE invocation_minutes MODIFY SETTING non_replicated_deduplication_window = "
    "{dedup_window}"
)
ALTER_OTEL_TRACE_ID_TS_DEDUP = (
    "ALTER TABLE otel_traces_trace_id_ts MODIFY SETTING non_replicated_deduplication_window = "
    "{dedup_window}"
)

CREATE_OTEL_TRACE_ID_TS_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_trace_id_ts_mv TO otel_traces_trace_id_ts
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM otel_traces
WHERE TraceId != ''
GROUP BY TraceId
"""

CREATE_OTEL_LOGS = """
CREATE TABLE IF NOT EXISTS otel_logs (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    FunctionName LowCardinality(String) CODEC(ZSTD(1)),
    RequestId String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_request_id RequestId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
TTL TimestampTime + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1
"""

# OTLP metrics: one table for every kind of data point, simpler than the exporter's
# table per kind. Value holds a gauge or sum point; Count, Sum, Min, Max a histogram's,
# exponential histogram's or summary's aggregates; BucketCounts/ExplicitBounds a histogram's
# buckets and Quantiles/QuantileValues a summary's.
CREATE_OTEL_METRICS = """
CREATE TABLE IF NOT EXISTS otel_metrics (
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    MetricName LowCardinality(String) CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit LowCardinality(String) CODEC(ZSTD(1)),
    MetricType LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Value Float64 CODEC(ZSTD(1)),
    Count UInt64 CODEC(ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    Min Nullable(Float64) CODEC(ZSTD(1)),
    Max Nullable(Float64) CODEC(ZSTD(1)),
    BucketCounts Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds Array(Float64) CODEC(ZSTD(1)),
    Quantiles Array(Float64) CODEC(ZSTD(1)),
    QuantileValues Array(Float64) CODEC(ZSTD(1)),
    AggregationTemporality LowCardinality(String) CODEC(ZSTD(1)),
    IsMonotonic Bool CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
    FunctionName LowCardinality(String) CODEC(ZSTD(1)),
    RequestId String CODEC(ZSTD(1)),
    INDEX idx_request_id RequestId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

# OTLP rows that arrive in extension batches are inserted under the batch id's deduplication
# token, like the batch's other rows, so a retry after a partial failure stores them once.
ALTER_OTEL_TRACES_DEDUP = (
    "ALTER TABLE otel_traces MODIFY SETTING non_replicated_deduplication_window = {dedup_window}"
)
ALTER_OTEL_LOGS_DEDUP = (
    "ALTER TABLE otel_logs MODIFY SETTING non_replicated_deduplication_window = {dedup_window}"
)

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

# CloudWatch Metric Streams (Firehose HTTP endpoint delivery), one row per data point.
CREATE_CLOUDWATCH_METRICS = """
CREATE TABLE IF NOT EXISTS cloudwatch_metrics (
    timestamp DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    metric_stream_name LowCardinality(String),
    account_id LowCardinality(String),
    region LowCardinality(String),
    namespace LowCardinality(String),
    metric_name LowCardinality(String),
    function_name LowCardinality(String),
    resource LowCardinality(String),
    dimensions Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    unit LowCardinality(String),
    value_min Float64 CODEC(ZSTD(1)),
    value_max Float64 CODEC(ZSTD(1)),
    value_sum Float64 CODEC(ZSTD(1)),
    value_count Float64 CODEC(ZSTD(1)),
    extra_statistics Map(LowCardinality(String), Float64) CODEC(ZSTD(1)),
    firehose_request_id String CODEC(ZSTD(1))
) ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (namespace, metric_name, function_name, timestamp)
TTL toDateTime(timestamp) + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

# Time-range reads: each part records when its event happened, and a projection
# keeps the parts ordered by (function_name, event_time) next to the (function_name,
# request_id) order the merges need, so `invocations_between` prunes by time. Parts written
# before this migration get event_time from their own timestamps (the DEFAULT). The projection
# is rebuilt when parts merge; parts not materialised yet are read from the table itself, so
# results never depend on it, only speed.
ALTER_PARTS_PROJECTION_MODE = (
    "ALTER TABLE invocation_parts MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'"
)

ALTER_PARTS_ADD_EVENT_TIME = """
ALTER TABLE invocation_parts ADD COLUMN IF NOT EXISTS
    event_time SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
    DEFAULT ifNull(
        coalesce(start_time, received_at, runtime_done_time, report_time, last_sent_at),
        toDateTime64(event_date, 3, 'UTC'))
    CODEC(Delta, ZSTD(1))
    AFTER event_date
"""

ALTER_PARTS_ADD_PROJECTION = """
ALTER TABLE invocation_parts ADD PROJECTION IF NOT EXISTS parts_by_time (
    SELECT * ORDER BY function_name, event_time
)
"""

ALTER_PARTS_MATERIALIZE_PROJECTION = (
    "ALTER TABLE invocation_parts MATERIALIZE PROJECTION parts_by_time"
)

# Migration 8 (issues #5 and #6): what the fleet table and the detectors' screening need from
# the per-minute rollups besides the reported invocations, kept by a second materialized view
# over *every* part (invocation_minutes_mv sees only the report parts). A part may carry one
# event or several (the collector merges a request's events within a batch), so every figure
# counts by the part's own flags, never "one part = one event":
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

#: Data statements run once while a migration is applied to a store that already had a schema:
#: (version, the statement of that migration they run before, the statement, the check that
#: skips it when its result is non-zero).
BACKFILLS: tuple[tuple[int, str, str, str], ...] = (
    (
        8,
        CREATE_INVOCATION_MINUTES_EVENTS_MV,
        BACKFILL_INVOCATION_MINUTES_EVENTS,
        SELECT_EVENTS_ROLLUP_FILLED,
    ),
)

# Each function's tags (LAMBDASCOPE_TAGS on the function, carried in the extension batches'
# environment), for alert rules' tag selectors. A row is written only when a function's tags
# change (or the collector restarts); readers take the newest per function with argMax.
CREATE_FUNCTION_TAGS = """
CREATE TABLE IF NOT EXISTS function_tags (
    function_name LowCardinality(String),
    tags Map(String, String),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY function_name
"""

FUNCTION_TAG_COLUMNS = ("function_name", "tags", "updated_at")

# Migration 11: the extension's own figures (extension/README.md, `extension_stats`), one row
# per batch that carries them, i.e. per environment per flush (collector/extension_stats.py).
# Counters are totals since the extension process started, and each process has its own
# environment_id, so a window's figure is an environment's newest row minus its newest row
# before the window. `time` is when the batch was built (`sent_at`), else when it arrived: a
# spooled batch keeps the time of its snapshot. Inserted under the group's deduplication token
# like every other table, so a retried or redone batch adds no second row.
CREATE_EXTENSION_STATS = """
CREATE TABLE IF NOT EXISTS extension_stats (
    time DateTime64(3, 'UTC') DEFAULT ifNull(sent_at, received_at) CODEC(Delta, ZSTD(1)),
    function_name LowCardinality(String),
    function_version LowCardinality(String),
    environment_id String CODEC(ZSTD(1)),
    batch_id String CODEC(ZSTD(1)),
    sent_at Nullable(DateTime64(3, 'UTC')) CODEC(ZSTD(1)),
    received_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    events_received UInt64,
    events_sent UInt64,
    events_dropped_total UInt64,
    events_dropped Map(String, UInt64),
    batches_sent UInt64,
    bytes_sent UInt64,
    send_failures UInt64,
    send_retries UInt64,
    spooled_batches UInt64,
    spooled_bytes UInt64,
    invoke_events UInt64,
    invoke_records_dropped UInt64,
    otlp_exports_received UInt64,
    otlp_exports_rejected UInt64,
    otlp_exports_dropped UInt64,
    log_lines_redacted UInt64,
    log_lines_sampled_out UInt64,
    startup_ms Nullable(Float64),
    process_startup_ms Nullable(Float64),
    peak_rss_mb Nullable(Float64),
    cpu_ms Nullable(Float64),
    post_runtime_ms_total Nullable(Float64),
    post_runtime_ms_max Nullable(Float64),
    final UInt8,
    shutdown_reason LowCardinality(String),
    shutdown_budget_ms Nullable(Float64),
    shutdown_elapsed_ms Nullable(Float64),
    shutdown_batches_sent UInt64,
    shutdown_events_sent UInt64,
    shutdown_batches_unsent UInt64,
    shutdown_events_unsent UInt64
) ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (function_name, environment_id, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

#: What the collector inserts into `extension_stats` (the fields of
#: collector.extension_stats.ExtensionStatsRow); `received_at` and `time` take their defaults.
EXTENSION_STATS_COLUMNS = (
    "function_name",
    "function_version",
    "environment_id",
    "batch_id",
    "sent_at",
    "events_received",
    "events_sent",
    "events_dropped_total",
    "events_dropped",
    "batches_sent",
    "bytes_sent",
    "send_failures",
    "send_retries",
    "spooled_batches",
    "spooled_bytes",
    "invoke_events",
    "invoke_records_dropped",
    "otlp_exports_received",
    "otlp_exports_rejected",
    "otlp_exports_dropped",
    "log_lines_redacted",
    "log_lines_sampled_out",
    "startup_ms",
    "process_startup_ms",
    "peak_rss_mb",
    "cpu_ms",
    "post_runtime_ms_total",
    "post_runtime_ms_max",
    "final",
    "shutdown_reason",
    "shutdown_budget_ms",
    "shutdown_elapsed_ms",
    "shutdown_batches_sent",
    "shutdown_events_sent",
    "shutdown_batches_unsent",
    "shutdown_events_unsent",
)

#: Tables whose TTL follows the configured retention: (table, TTL expression).
TTL_TABLES = (
    ("invocation_parts", "event_date + INTERVAL {retention_days} DAY"),
    ("cold_start_parts", "event_date + INTERVAL {retention_days} DAY"),
    ("logs", "toDateTime(timestamp) + INTERVAL {retention_days} DAY"),
    ("batches", "toDateTime(received_at) + INTERVAL {retention_days} DAY"),
    ("otel_traces", "toDateTime(Timestamp) + INTERVAL {retention_days} DAY"),
    ("otel_traces_trace_id_ts", "Start + INTERVAL {retention_days} DAY"),
    ("otel_logs", "TimestampTime + INTERVAL {retention_days} DAY"),
    ("invocation_minutes", "minute + INTERVAL {retention_days} DAY"),
    ("cloudwatch_metrics", "toDateTime(timestamp) + INTERVAL {retention_days} DAY"),
    ("otel_metrics", "toDateTime(TimeUnix) + INTERVAL {retention_days} DAY"),
    ("extension_stats", "toDateTime(time) + INTERVAL {retention_days} DAY"),
)

SELECT_TABLE_ENGINES = (
    "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
)

MODIFY_TTL = "ALTER TABLE {table} MODIFY TTL {expression}"

#: The schema, as ordered migrations: (version, description, statements). Each statement is
#: idempotent, so two collectors starting together on one server do no harm.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "invocation parts and view, logs, batches",
        (CREATE_INVOCATION_PARTS, CREATE_LOGS, CREATE_BATCHES),
    ),
    (
        2,
        "cold starts",
        (CREATE_COLD_START_PARTS,),
    ),
    (
        3,
        "OpenTelemetry spans and logs (otel_traces, otel_logs)",
        (CREATE_OTEL_TRACES, CREATE_OTEL_TRACE_ID_TS, CREATE_OTEL_TRACE_ID_TS_MV, CREATE_OTEL_LOGS),
    ),
    (
        4,
        "per-minute invocation rollups",
        (CREATE_INVOCATION_MINUTES, CREATE_INVOCATION_MINUTES_MV),
    ),
    (
        5,
        "CloudWatch metric streams",
        (CREATE_CLOUDWATCH_METRICS,),
    ),
    (
        6,
        "invocation parts by event time (invocations_between)",
        (
            ALTER_PARTS_PROJECTION_MODE,
            ALTER_PARTS_ADD_EVENT_TIME,
            ALTER_PARTS_ADD_PROJECTION,
            ALTER_PARTS_MATERIALIZE_PROJECTION,
        ),
    ),
    (
        7,
        "OpenTelemetry metrics (otel_metrics); OTLP rows deduplicated with their batch",
        (CREATE_OTEL_METRICS, ALTER_OTEL_TRACES_DEDUP, ALTER_OTEL_LOGS_DEDUP),
    ),
    (
        8,
        "rollups of started and unreported invocations, memory %, limits (invocation_minutes)",
        (ALTER_INVOCATION_MINUTES_ADD_EVENTS, CREATE_INVOCATION_MINUTES_EVENTS_MV),
    ),
    (
        9,
        "function tags for alert rule selectors (function_tags)",
        (CREATE_FUNCTION_TAGS,),
    ),
    (
        10,
        "exactly once: batch bodies kept to redo a write cut short; rollups deduplicated",
        (
            ALTER_BATCHES_ADD_GROUP,
            ALTER_BATCHES_ADD_ENCODING,
            ALTER_BATCHES_ADD_BODY,
            ALTER_BATCHES_ADD_GROUP_INDEX,
            ALTER_INVOCATION_MINUTES_DEDUP,
            ALTER_OTEL_TRACE_ID_TS_DEDUP,
        ),
    ),
    (
        11,
        "the extension's own figures per environment and flush (extension_stats)",
        (CREATE_EXTENSION_STATS,),
    ),
)

#: Views hold no data: they are (re)created at every start, so a change to one needs no
#: migration.
VIEWS = (CREATE_INVOCATIONS_VIEW, CREATE_INVOCATIONS_BETWEEN_VIEW, CREATE_COLD_STARTS_VIEW)

SELECT_ONE = "SELECT 1"

#: The read user's grants, checked at start (collector.access.grant_problems): with FINAL
#: (what its roles grant folded in) where the server knows it, else plain.
SHOW_GRANTS = ("SHOW GRANTS FINAL", "SHOW GRANTS")
