"""The OpenTelemetry tables: spans, log records and metric data points in the layout of the
OpenTelemetry ClickHouse exporter, plus ``FunctionName`` and ``RequestId``.

Rows come from OTLP/HTTP exports and from the OTLP items of extension batches; the tables'
deduplication windows let rows inserted with a batch be stored once.
"""

from __future__ import annotations

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

# The target of otel_traces_trace_id_ts_mv keeps its own deduplication log: a retried insert
# otel_traces drops is dropped here too, instead of being stored again (collector/store.py).
ALTER_OTEL_TRACE_ID_TS_DEDUP = (
    "ALTER TABLE otel_traces_trace_id_ts MODIFY SETTING non_replicated_deduplication_window = "
    "{dedup_window}"
)

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
