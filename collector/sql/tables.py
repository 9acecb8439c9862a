"""The tables of the collector's own rows: invocation parts, cold-start parts, logs, function
tags, the extension's figures and CloudWatch metric streams, with the columns it inserts.

Written for one server (or the embedded engine); collector/cluster.py rewrites them for a
cluster. ``{retention_days}`` and ``{dedup_window}`` are filled in by collector/schema.py.
"""

from __future__ import annotations

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

# Time-range reads (migration 6): each part records when its event happened, and a projection
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
    has_report SimpleAggregateFunction(max, UInt8),
    first_request_time SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC')))
) ENGINE = AggregatingMergeTree
PARTITION BY event_date
ORDER BY (function_name, environment_id, phase)
TTL event_date + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = {dedup_window}, ttl_only_drop_parts = 1
"""

# Migration 13: when an environment's first request started (from the report that carries the
# init's duration), so a proactive init tells itself apart.
ALTER_COLD_START_PARTS_ADD_FIRST_REQUEST = """
ALTER TABLE cold_start_parts
    ADD COLUMN IF NOT EXISTS first_request_time
        SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC')))
"""

# Migration 14: when the environment's runtime process started, as the extension read it from
# /proc: it splits a cold start's extensions part from the runtime's and the function's.
ALTER_EXTENSION_STATS_ADD_RUNTIME_START = """
ALTER TABLE extension_stats
    ADD COLUMN IF NOT EXISTS runtime_started_at Nullable(DateTime64(3, 'UTC'))
"""

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
    shutdown_events_unsent UInt64,
    runtime_started_at Nullable(DateTime64(3, 'UTC'))
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
    "runtime_started_at",
)

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
