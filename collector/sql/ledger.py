"""The ingest ledger (``batches``): one row per batch, written before its rows, and the
statements that make ingest exactly once (a batch seen again, a write cut short redone).

Not served by the read API: it keeps request bodies as received.
"""

from __future__ import annotations

#: Days a batch's body is kept in `batches` to redo a write that was cut short.
INTENT_DAYS = 2
#: A write cut short is redone when one of its batches arrives again within this many minutes
#: of the first attempt; later, the deduplication window (DEDUP_WINDOW inserts per table) may
#: have moved on, and a redo could store twice what a redo within it would not.
REDO_WINDOW_MINUTES = 10

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

# Per batch id: the group that claimed it first, and when. Several collectors sharing a server
# can each claim the same batch (a retry sent to another collector while the first still
# writes it); the claim with the lowest block number wins. A MergeTree numbers its inserts
# when it commits them, in the order they become visible, so a claimer that saw only its own
# claim holds the lowest number and every later claimer sees that it lost.
SELECT_BATCHES_SEEN = (
    "SELECT batch_id, argMin(group_token, (_block_number, received_at, group_token)), "
    "min(received_at) FROM batches "
    "WHERE batch_id IN {batch_ids:Array(String)} GROUP BY batch_id"
)
# On a cluster the replicas number a table's inserts before they commit them, so the numbers
# need not follow the order the claims became visible in (and a server older than the block
# number column keeps none): there the earliest claim by time wins, and a balancer that sends
# every retry of a batch to the same collector (its X-Lambdascope-Batch-Id header) keeps two
# claims of one batch from racing at all.
SELECT_BATCHES_SEEN_BY_TIME = (
    "SELECT batch_id, argMin(group_token, (received_at, group_token)), "
    "min(received_at) FROM batches "
    "WHERE batch_id IN {batch_ids:Array(String)} GROUP BY batch_id"
)

#: Every row keeps the number of the insert that wrote it, through merges: the claims' order.
ALTER_BATCHES_BLOCK_NUMBER = "ALTER TABLE batches MODIFY SETTING enable_block_number_column = 1"

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
