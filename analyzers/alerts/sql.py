"""Every SQL statement of the alert engine: the traffic guard, and the state and history tables.

Values are bound with ClickHouse ``{name:Type}`` placeholders, never formatted into the text.
The collector creates the tables with :data:`ALERT_TABLES_DDL` in its store database (the
engine's writer has that database as its default, so names are unqualified).
"""

from __future__ import annotations

__all__ = [
    "ALERT_HISTORY_DDL",
    "ALERT_STATE_DDL",
    "ALERT_TABLES_DDL",
    "FUNCTION_TAGS",
    "INSERT_HISTORY",
    "INSERT_STATE",
    "SELECT_HISTORY",
    "SELECT_STATES",
    "TRAFFIC",
]

#: Invocations per function in ``[since, until)``: the ``min_invocations`` guard, from the
#: per-minute rollups (collector/README.md, ``invocation_minutes``) so the guard reads no raw
#: rows: the minutes that overlap the window, reported or only started (their report never
#: came), whichever is more.
TRAFFIC = """
SELECT function_name, greatest(sum(invocations), sum(started)) AS invocations
FROM invocation_minutes
WHERE minute >= toStartOfMinute({since:DateTime64(3, 'UTC')})
    AND minute < {until:DateTime64(3, 'UTC')}
GROUP BY function_name
"""

#: Each function's newest tags (the collector's ``function_tags``, from LAMBDASCOPE_TAGS).
FUNCTION_TAGS = """
SELECT function_name, argMax(tags, updated_at) AS tags
FROM function_tags
GROUP BY function_name
"""

#: The current state per (rule, function). ReplacingMergeTree keeps the newest row by
#: ``updated_at``; readers use FINAL, which is cheap on a table this small.
ALERT_STATE_DDL = """
CREATE TABLE IF NOT EXISTS alert_state (
    rule String,
    function_name String,
    state LowCardinality(String),
    since DateTime64(3, 'UTC'),
    pending_since Nullable(DateTime64(3, 'UTC')),
    firing_since Nullable(DateTime64(3, 'UTC')),
    clear_since Nullable(DateTime64(3, 'UTC')),
    last_notified_at Nullable(DateTime64(3, 'UTC')),
    value Nullable(Float64),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (rule, function_name)
"""

#: Every transition, with the notification payload it produced (JSON) for audits and the TUI.
ALERT_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS alert_history (
    at DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    rule String,
    function_name String,
    event LowCardinality(String),
    previous LowCardinality(String),
    state LowCardinality(String),
    severity LowCardinality(String),
    value Nullable(Float64),
    threshold String,
    summary String,
    evidence_request_ids Array(String),
    notified UInt8,
    payload String CODEC(ZSTD)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (rule, function_name, at)
"""

ALERT_TABLES_DDL: tuple[str, ...] = (ALERT_STATE_DDL, ALERT_HISTORY_DDL)

_STATE_COLUMNS = (
    "rule, function_name, state, since, pending_since, firing_since, clear_since, "
    "last_notified_at, value, updated_at"
)

SELECT_STATES = f"""
SELECT {_STATE_COLUMNS}
FROM alert_state FINAL
ORDER BY rule, function_name
"""

# INSERT ... SELECT so every value is a bound parameter (VALUES would need client formatting).
INSERT_STATE = f"""
INSERT INTO alert_state ({_STATE_COLUMNS})
SELECT
    {{rule:String}},
    {{function_name:String}},
    {{state:String}},
    {{since:DateTime64(3, 'UTC')}},
    {{pending_since:Nullable(DateTime64(3, 'UTC'))}},
    {{firing_since:Nullable(DateTime64(3, 'UTC'))}},
    {{clear_since:Nullable(DateTime64(3, 'UTC'))}},
    {{last_notified_at:Nullable(DateTime64(3, 'UTC'))}},
    {{value:Nullable(Float64)}},
    {{updated_at:DateTime64(3, 'UTC')}}
"""

INSERT_HISTORY = """
INSERT INTO alert_history (at, rule, function_name, event, previous, state, severity, value,
    threshold, summary, evidence_request_ids, notified, payload)
SELECT
    {at:DateTime64(3, 'UTC')},
    {rule:String},
    {function_name:String},
    {event:String},
    {previous:String},
    {state:String},
    {severity:String},
    {value:Nullable(Float64)},
    {threshold:String},
    {summary:String},
    {evidence_request_ids:Array(String)},
    {notified:UInt8},
    {payload:String}
"""

#: Newest first; ``rule`` / ``function_name`` of ``''`` mean any.
SELECT_HISTORY = """
SELECT at, rule, function_name, event, previous, state, severity, value, threshold, summary,
    evidence_request_ids, notified, payload
FROM alert_history
WHERE ({rule:String} = '' OR rule = {rule:String})
    AND ({function_name:String} = '' OR function_name = {function_name:String})
ORDER BY at DESC, rule, function_name
LIMIT {limit:UInt32}
"""
