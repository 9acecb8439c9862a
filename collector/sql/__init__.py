"""Every SQL statement the collector runs, in one place: this package.

Values are bound server-side with ``{name:Type}`` placeholders. The only things formatted into
DDL are numbers the collector validated itself (retention days, dedup window) and identifiers
checked against :data:`IDENTIFIER` (the database name from configuration).

* ``tables``: the tables of the collector's own rows (invocation and cold-start parts, logs,
  function tags, the extension's figures, CloudWatch metric streams) and their insert columns;
* ``otel``: the OpenTelemetry exporter's tables (spans, log records, metric data points);
* ``rollups``: the per-minute rollups and the materialized views that keep them;
* ``views``: the views readers query (``invocations``, ``invocations_between``,
  ``cold_starts``);
* ``ledger``: the ingest ledger (``batches``) and what makes ingest exactly once;
* ``migrations``: the schema as ordered migrations, backfills, retention;
* ``checks``: what the collector asks the server about itself.

The statements the rest of the collector runs are named here (``sql.MIGRATIONS``); the DDL
each migration is made of stays in its module. collector/cluster.py rewrites every DDL
statement for a cluster.
"""

from __future__ import annotations

from lambdascope.collector.sql.checks import SELECT_ONE, SELECT_TABLE_ENGINES, SHOW_GRANTS
from lambdascope.collector.sql.ledger import (
    BATCH_COLUMNS,
    INTENT_DAYS,
    REDO_WINDOW_MINUTES,
    SELECT_BATCHES_SEEN,
    SELECT_BATCHES_SEEN_BY_TIME,
    SELECT_GROUP_BODIES,
)
from lambdascope.collector.sql.migrations import (
    BACKFILLS,
    CREATE_DATABASE,
    CREATE_MIGRATIONS,
    DEDUP_WINDOW,
    IDENTIFIER,
    MIGRATIONS,
    MODIFY_TTL,
    SELECT_SCHEMA_VERSION,
    TTL_TABLES,
    TUNING,
)
from lambdascope.collector.sql.tables import EXTENSION_STATS_COLUMNS, FUNCTION_TAG_COLUMNS
from lambdascope.collector.sql.views import VIEWS

__all__ = [
    "BACKFILLS",
    "BATCH_COLUMNS",
    "CREATE_DATABASE",
    "CREATE_MIGRATIONS",
    "DEDUP_WINDOW",
    "EXTENSION_STATS_COLUMNS",
    "FUNCTION_TAG_COLUMNS",
    "IDENTIFIER",
    "INTENT_DAYS",
    "MIGRATIONS",
    "MODIFY_TTL",
    "REDO_WINDOW_MINUTES",
    "SELECT_BATCHES_SEEN",
    "SELECT_BATCHES_SEEN_BY_TIME",
    "SELECT_GROUP_BODIES",
    "SELECT_ONE",
    "SELECT_SCHEMA_VERSION",
    "TUNING",
    "SELECT_TABLE_ENGINES",
    "SHOW_GRANTS",
    "TTL_TABLES",
    "VIEWS",
]
