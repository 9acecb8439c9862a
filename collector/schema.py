"""Create and migrate the store's schema, idempotently, at every start.

``schema_migrations`` records the versions applied. A store whose version is newer than this
code knows was written by a newer collector: refuse it rather than write rows it may misread.
"""

from __future__ import annotations

import logging
from typing import Any

from lambdascope.collector import sql
from lambdascope.collector.cluster import (
    SELECT_CLUSTER_TOPOLOGY,
    ClusterConfig,
    check_topology,
    local_table,
    rewrite,
)

log = logging.getLogger("lambdascope.collector")

#: The newest schema version this code knows.
CURRENT_VERSION = max(version for version, _, _ in sql.MIGRATIONS)

DEFAULT_RETENTION_DAYS = 30


class SchemaError(Exception):
    """The store's schema cannot be used by this collector (too new, or a migration failed)."""


def render(statement: str, retention_days: int) -> str:
    """Fill the collector-owned numbers into one DDL statement."""
    return statement.format(
        retention_days=retention_days,
        dedup_window=sql.DEDUP_WINDOW,
        intent_days=sql.INTENT_DAYS,
    )


def check_retention(retention_days: Any) -> int:
    if isinstance(retention_days, bool) or not isinstance(retention_days, int):
        raise SchemaError(f"retention_days must be a whole number of days, got {retention_days!r}")
    if not 1 <= retention_days <= 36_500:
        raise SchemaError(f"retention_days must be between 1 and 36500, got {retention_days}")
    return retention_days


def stored_version(client: Any, cluster: ClusterConfig | None = None, database: str = "") -> int:
    for statement in rewrite(sql.CREATE_MIGRATIONS, cluster, database):
        client.command(statement)
    value = client.query(sql.SELECT_SCHEMA_VERSION).first_row[0]
    return int(value or 0)


def migrate(
    client: Any,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    cluster: ClusterConfig | None = None,
    database: str | None = None,
) -> int:
    """Bring the client's database to :data:`CURRENT_VERSION`; returns the version applied.

    With ``cluster``, every statement runs in its cluster form (collector/cluster.py) and
    ``database`` (default: the client's) is the one the Distributed tables name.
    Raises :class:`SchemaError` when the store is newer than this code, and
    :class:`lambdascope.collector.cluster.ClusterError` when the server does not know the cluster.
    """
    retention_days = check_retention(retention_days)
    database = database or str(getattr(client, "database", "") or "")
    if cluster is not None:
        shards, servers = client.query(
            SELECT_CLUSTER_TOPOLOGY, parameters={"cluster": cluster.name}
        ).first_row
        check_topology(cluster, int(shards or 0), int(servers or 0))
    current = stored_version(client, cluster, database)
    if current > CURRENT_VERSION:
        raise SchemaError(
            f"the store's schema is version {current} but this collector knows up to "
            f"{CURRENT_VERSION}: upgrade lambdascope, or point --store/--database at another store"
        )
    for version, description, statements in sql.MIGRATIONS:
        if version <= current:
            continue
        for statement in statements:
            if current > 0:
                _backfill(client, version, description, statement)
            try:
                for ddl in rewrite(render(statement, retention_days), cluster, database):
                    client.command(ddl)
            except Exception as exc:
                if statement in sql.TUNING:
                    # Tuning an older server does not know: the store works as before.
                    log.warning("skipped %s (%s): %s", description, statement.strip(), exc)
                    continue
                raise SchemaError(
                    f"schema migration {version} ({description}) failed: {exc}"
                ) from exc
        client.insert(
            "schema_migrations", [[version, description]], column_names=["version", "description"]
        )
    for statement in sql.VIEWS:
        try:
            for ddl in rewrite(statement, cluster, database):
                client.command(ddl)
        except Exception as exc:
            raise SchemaError(f"creating a view failed: {exc}") from exc
    # Retention may change between starts; the new TTL applies to new parts only (no rewrite).
    engines = dict(client.query(sql.SELECT_TABLE_ENGINES).result_rows)
    wanted = f"toIntervalDay({retention_days})"
    for table, expression in sql.TTL_TABLES:
        if wanted in str(engines.get(local_table(table, cluster), "")):
            continue
        modify = sql.MODIFY_TTL.format(table=table, expression=render(expression, retention_days))
        for ddl in rewrite(modify, cluster, database):
            client.command(ddl, settings={"materialize_ttl_after_modify": 0})
    return CURRENT_VERSION


def _backfill(client: Any, version: int, description: str, before: str) -> None:
    """Run the data statements of :data:`lambdascope.collector.sql.migrations.BACKFILLS` due
    before ``before``.

    Only an upgraded store (one that had a schema) needs them: a new store has no rows. They
    run unchanged in cluster mode too: an INSERT ... SELECT through the Distributed tables
    reads every shard and writes by the sharding key. A backfill runs before the
    materialized view that keeps its table from then on, so a row written by another
    collector in between is missed rather than counted twice; the check skips it when another
    collector did it already.
    """
    for backfill_version, anchor, statement, check in sql.BACKFILLS:
        if backfill_version != version or anchor != before:
            continue
        try:
            if int(client.query(check).first_row[0] or 0):
                continue
            client.command(statement)
        except Exception as exc:
            raise SchemaError(
                f"schema migration {version} ({description}) failed to backfill: {exc}"
            ) from exc
