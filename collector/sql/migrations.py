"""The schema as ordered migrations (collector/schema.py applies them), the database and
``schema_migrations`` statements, the backfills an upgraded store needs, and retention.

Each statement is idempotent, so two collectors starting together on one server do no harm.
A new table or column is a new migration at the end; a view changes in place (views.py).
"""

from __future__ import annotations

import re

from lambdascope.collector.sql.ledger import (
    ALTER_BATCHES_ADD_BODY,
    ALTER_BATCHES_ADD_ENCODING,
    ALTER_BATCHES_ADD_GROUP,
    ALTER_BATCHES_ADD_GROUP_INDEX,
    ALTER_BATCHES_BLOCK_NUMBER,
    CREATE_BATCHES,
)
from lambdascope.collector.sql.otel import (
    ALTER_OTEL_LOGS_DEDUP,
    ALTER_OTEL_TRACE_ID_TS_DEDUP,
    ALTER_OTEL_TRACES_DEDUP,
    CREATE_OTEL_LOGS,
    CREATE_OTEL_METRICS,
    CREATE_OTEL_TRACE_ID_TS,
    CREATE_OTEL_TRACE_ID_TS_MV,
    CREATE_OTEL_TRACES,
)
from lambdascope.collector.sql.rollups import (
    ALTER_INVOCATION_MINUTES_ADD_EVENTS,
    ALTER_INVOCATION_MINUTES_ADD_MEMORY,
    ALTER_INVOCATION_MINUTES_DEDUP,
    BACKFILL_INVOCATION_MINUTES_EVENTS,
    BACKFILL_INVOCATION_MINUTES_MEMORY,
    CREATE_INVOCATION_MINUTES,
    CREATE_INVOCATION_MINUTES_EVENTS_MV,
    CREATE_INVOCATION_MINUTES_MEMORY_MV,
    CREATE_INVOCATION_MINUTES_MV,
    CREATE_INVOCATION_MINUTES_ROLLUP_MV,
    DROP_INVOCATION_MINUTES_EVENTS_MV,
    DROP_INVOCATION_MINUTES_MEMORY_MV,
    DROP_INVOCATION_MINUTES_MV,
    SELECT_EVENTS_ROLLUP_FILLED,
    SELECT_MEMORY_ROLLUP_FILLED,
)
from lambdascope.collector.sql.tables import (
    ALTER_COLD_START_PARTS_ADD_FIRST_REQUEST,
    ALTER_EXTENSION_STATS_ADD_RUNTIME_START,
    ALTER_PARTS_ADD_EVENT_TIME,
    ALTER_PARTS_ADD_PROJECTION,
    ALTER_PARTS_MATERIALIZE_PROJECTION,
    ALTER_PARTS_PROJECTION_MODE,
    CREATE_CLOUDWATCH_METRICS,
    CREATE_COLD_START_PARTS,
    CREATE_EXTENSION_STATS,
    CREATE_FUNCTION_TAGS,
    CREATE_INVOCATION_PARTS,
    CREATE_LOGS,
)

#: A database name the collector accepts (it is written into DDL, so no quoting tricks).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: How many recent insert block ids each table remembers to drop a retried insert.
DEDUP_WINDOW = 10_000

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

MODIFY_TTL = "ALTER TABLE {table} MODIFY TTL {expression}"

#: The schema, as ordered migrations: (version, description, statements). Each statement is
#: idempotent, so two collectors starting together on one server do no harm.

# Every commit writes a small part into each of these tables, and the engine merges them
# again and again as they grow: with the default selector each row is rewritten about
# log5(parts) times. Merging ten parts at once (and not lowering that width under load)
# halves the merge work per row, measured at 1, 8 and 64 senders, for a few more parts
# alive at a time.
_INGEST_TABLES = (
    "invocation_parts",
    "logs",
    "batches",
    "invocation_minutes",
    "cold_start_parts",
    "extension_stats",
)
TUNE_MERGES: tuple[str, ...] = tuple(
    f"ALTER TABLE {table} MODIFY SETTING merge_selector_base = 10, "
    "merge_selector_enable_heuristic_to_lower_max_parts_to_merge_at_once = 0"
    for table in _INGEST_TABLES
)

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
    (
        12,
        "memory headroom per minute: Max Memory Used as a share of the size (invocation_minutes)",
        (ALTER_INVOCATION_MINUTES_ADD_MEMORY, CREATE_INVOCATION_MINUTES_MEMORY_MV),
    ),
    (
        13,
        "when each environment's first request started, to tell proactive inits (cold_start_parts)",
        (ALTER_COLD_START_PARTS_ADD_FIRST_REQUEST,),
    ),
    (
        14,
        "when each environment's runtime process started, from the extension (extension_stats)",
        (ALTER_EXTENSION_STATS_ADD_RUNTIME_START,),
    ),
    (
        15,
        "one rollup view instead of three (invocation_minutes): less fixed cost on every insert",
        # New view first: collectors sharing a server may count a few inserts twice, never lose one.
        (
            CREATE_INVOCATION_MINUTES_ROLLUP_MV,
            DROP_INVOCATION_MINUTES_MV,
            DROP_INVOCATION_MINUTES_EVENTS_MV,
            DROP_INVOCATION_MINUTES_MEMORY_MV,
        ),
    ),
    (
        16,
        "exactly once with several collectors: the order in which they claimed a batch (batches)",
        (ALTER_BATCHES_BLOCK_NUMBER,),
    ),
    (
        17,
        "fewer, wider merges of the parts ingest writes: half the merge work per row",
        TUNE_MERGES,
    ),
)

#: Statements a server too old to know their setting skips with a warning instead of refusing
#: to start: merge tuning, and the claims' block numbers (without them, claims are ordered by
#: time, as on a cluster: collector/store.py).
TUNING: frozenset[str] = frozenset((*TUNE_MERGES, ALTER_BATCHES_BLOCK_NUMBER))

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
    (
        12,
        CREATE_INVOCATION_MINUTES_MEMORY_MV,
        BACKFILL_INVOCATION_MINUTES_MEMORY,
        SELECT_MEMORY_ROLLUP_FILLED,
    ),
)
