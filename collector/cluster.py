"""Opt-in cluster DDL: the collector's schema on a ClickHouse cluster (pure, no I/O).

Every DDL statement in :mod:`sql` (collector/sql/) is written for one server (or the embedded
engine). With a :class:`ClusterConfig`, :func:`rewrite` turns each into its cluster form after
:func:`schema.render` filled in the numbers:

* ``CREATE DATABASE/TABLE/VIEW/MATERIALIZED VIEW ... x``, ``ALTER TABLE x`` and ``DROP VIEW
  IF EXISTS x`` run ``ON CLUSTER`` so every server gets the same schema;
* ``replicated=True``: each MergeTree-family engine becomes its ``Replicated*`` engine with a
  ZooKeeper path unique per table (``<prefix>/<table>``), and the deduplication window is the
  replicated one (block ids live in Keeper, shared by the replicas of a shard);
* ``sharded=True``: each data table is created as ``<table>_local`` and a ``Distributed``
  table takes its name, so the collector's inserts and every reader go through the
  ``Distributed`` tables unchanged, while materialized views read and write the local tables.

The sharding key of each ``Distributed`` table is a hash of columns (:data:`SHARDING_KEYS`),
not ``rand()``: a retried insert must split into the same per-shard blocks as the original,
or its deduplication token would drop rows on one shard that the first attempt sent to
another. The key also keeps the parts of one invocation (and the spans of one trace) on one
shard, so they merge there.

With no cluster, :func:`rewrite` returns the statement unchanged (byte for byte).

Exceptions::

    ClusterError    a bad cluster configuration, a cluster on the embedded engine, or a
                    statement this module cannot rewrite (names it and the fix)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "SELECT_CLUSTER_TOPOLOGY",
    "SHARDING_KEYS",
    "UNSHARDED_TABLES",
    "ClusterConfig",
    "ClusterError",
    "check_store_url",
    "check_topology",
    "cluster_from_args",
    "insert_settings",
    "local_table",
    "rewrite",
]


class ClusterError(ValueError):
    """A cluster configuration or statement that cannot be used; the message names the fix."""


#: Cluster names as they appear in the server's ``remote_servers`` (written into DDL quoted).
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
#: Keeper paths and macros: written into single-quoted DDL literals, so no quotes or escapes.
_PATH = re.compile(r"^(/[A-Za-z0-9_.{}-]+)+$")
_MACRO = re.compile(r"^[A-Za-z0-9_.{}-]+$")
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: The Distributed tables' sharding keys: deterministic, so a retried insert splits into the
#: same per-shard blocks (see the module docstring); chosen to keep what merges together (one
#: invocation's parts, one environment's init, one trace) on one shard.
SHARDING_KEYS: dict[str, str] = {
    "invocation_parts": "cityHash64(function_name, request_id)",
    "cold_start_parts": "cityHash64(function_name, environment_id)",
    "logs": "cityHash64(function_name, request_id, batch_id, seq)",
    "batches": "cityHash64(batch_id)",
    # A group's intent rows stay together, in one part: the intent is written whole or not.
    "batch_intents": "cityHash64(group_token)",
    "otel_traces": "cityHash64(TraceId)",
    "otel_traces_trace_id_ts": "cityHash64(TraceId)",
    "otel_logs": "cityHash64(TraceId, ServiceName, Timestamp)",
    "otel_metrics": "cityHash64(ServiceName, MetricName)",
    "invocation_minutes": "cityHash64(function_name)",
    "cloudwatch_metrics": "cityHash64(namespace, metric_name, function_name)",
    "function_tags": "cityHash64(function_name)",
    # One environment's rows together: its figures are read as differences between its rows.
    "extension_stats": "cityHash64(function_name, environment_id)",
    # analyzers/alerts creates these on the same store; alert_state is read with FINAL, so
    # the versions of one (rule, function) must share a shard.
    "alert_state": "cityHash64(rule, function_name)",
    "alert_history": "cityHash64(rule, function_name)",
}

#: Tables kept whole on every server even when sharded: the schema version must be one answer
#: wherever a collector connects. Its Keeper path has ``{shard}`` replaced by ``all``, so the
#: replicas of every shard share it.
UNSHARDED_TABLES = frozenset({"schema_migrations"})

#: How many shards and servers the cluster has, as the server connected to sees it.
SELECT_CLUSTER_TOPOLOGY = (
    "SELECT count(DISTINCT shard_num), count() FROM system.clusters "
    "WHERE cluster = {cluster:String}"
)

_LOCAL_SUFFIX = "_local"


@dataclass(frozen=True)
class ClusterConfig:
    """Where and how the schema is spread over a ClickHouse cluster.

    ``name`` is a cluster of the servers' ``remote_servers``; ``zookeeper_path_prefix`` and
    ``replica_macro`` are expanded by each server from its ``macros`` (``{shard}``,
    ``{replica}``) and the database (``{database}``).
    """

    name: str
    replicated: bool = True
    sharded: bool = False
    zookeeper_path_prefix: str = "/clickhouse/tables/{shard}/{database}"
    replica_macro: str = "{replica}"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _CLUSTER_NAME.match(self.name):
            raise ClusterError(
                f"invalid cluster name {self.name!r}: use the name of a cluster in the servers' "
                "remote_servers (letters, digits, '_', '.', '-'), e.g. --cluster lambdascope"
            )
        if not self.replicated and not self.sharded:
            raise ClusterError(
                f"cluster {self.name!r} with neither replication nor sharding would give every "
                "server its own unrelated data: use replicated=True, sharded=True or both"
            )
        if not _PATH.match(self.zookeeper_path_prefix):
            raise ClusterError(
                f"invalid zookeeper_path_prefix {self.zookeeper_path_prefix!r}: use an absolute "
                "Keeper path of letters, digits, '_', '.', '-' and macros, e.g. "
                "/clickhouse/tables/{shard}/{database}"
            )
        if self.replicated and self.sharded and "{shard}" not in self.zookeeper_path_prefix:
            raise ClusterError(
                f"zookeeper_path_prefix {self.zookeeper_path_prefix!r} has no {{shard}} macro: "
                "with sharding, every shard's tables would share one Keeper path and become "
                "replicas of each other; add /{shard}/ to the prefix"
            )
        if not _MACRO.match(self.replica_macro):
            raise ClusterError(
                f"invalid replica_macro {self.replica_macro!r}: use a macro such as {{replica}} "
                "(letters, digits, '_', '.', '-', braces)"
            )


def cluster_from_args(name: str | None, sharded: bool) -> ClusterConfig | None:
    """The cluster of the ``--cluster NAME`` and ``--sharded`` flags; None without a name."""
    if name is None or not name.strip():
        if sharded:
            raise ClusterError("--sharded needs --cluster NAME (the cluster to shard over)")
        return None
    return ClusterConfig(name.strip(), replicated=True, sharded=sharded)


def check_store_url(url: str, cluster: ClusterConfig | None) -> None:
    """Refuse cluster mode on a store that is not a ClickHouse server."""
    if cluster is not None and not url.startswith(("http://", "https://")):
        scheme = url.split(":", 1)[0] or url
        raise ClusterError(
            f"cluster mode (--cluster {cluster.name}) needs a ClickHouse server, not a "
            f"{scheme}: store: use --store http(s)://user:password@host:8123/db, or drop "
            "--cluster/--sharded for the embedded store"
        )


def check_topology(cluster: ClusterConfig, shards: int, servers: int) -> None:
    """Refuse a cluster the server does not know, or several shards without sharding.

    ``shards`` and ``servers`` come from :data:`SELECT_CLUSTER_TOPOLOGY`.
    """
    if shards <= 0 or servers <= 0:
        raise ClusterError(
            f"the server knows no cluster {cluster.name!r}: define it in remote_servers "
            "(see deploy/clickhouse/) or pass the name of a defined cluster to --cluster"
        )
    if shards > 1 and not cluster.sharded:
        raise ClusterError(
            f"cluster {cluster.name!r} has {shards} shards but sharding is off: each shard "
            "would hold its own rows and readers would see one shard; add --sharded"
        )


def insert_settings(cluster: ClusterConfig | None) -> dict[str, int]:
    """Settings for the store's write handle: a Distributed insert returns only once every
    shard committed its rows (the default queues them and acknowledges at once)."""
    if cluster is not None and cluster.sharded:
        return {"distributed_foreground_insert": 1}
    return {}


def local_table(table: str, cluster: ClusterConfig | None) -> str:
    """The table that holds ``table``'s rows on each server (its ``_local`` table if sharded)."""
    if cluster is not None and cluster.sharded and table not in UNSHARDED_TABLES:
        return table + _LOCAL_SUFFIX
    return table


# The statements rewrite() understands; anything else is refused rather than run unreplicated.
_CREATE_DATABASE = re.compile(r"^(?P<head>\s*CREATE DATABASE IF NOT EXISTS (?P<name>`?\w+`?))")
_CREATE_TABLE = re.compile(r"^(?P<head>\s*CREATE TABLE IF NOT EXISTS )(?P<name>\w+)(?=\s*\()")
_CREATE_VIEW = re.compile(
    r"^(?P<head>\s*CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?(?P<name>\w+))(?=\s)"
)
_CREATE_MV = re.compile(
    r"^(?P<head>\s*CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+))"
    r"(?P<to>\s+TO\s+)(?P<target>\w+)(?=\s)"
)
_DROP_VIEW = re.compile(r"^(?P<head>\s*DROP VIEW IF EXISTS (?P<name>\w+))\s*$")
_ALTER = re.compile(r"^(?P<head>\s*ALTER TABLE )(?P<name>\w+)(?P<rest>\s.*)$", re.S)
_ENGINE = re.compile(
    r"ENGINE\s*=\s*(?P<engine>(?:Replacing|Aggregating|Summing|Collapsing|VersionedCollapsing|"
    r"Graphite)?MergeTree)\b(?P<parens>\s*\()?"
)
_REPLICATED_ENGINE = re.compile(r"ENGINE\s*=\s*Replicated")
_ANY_ENGINE = re.compile(r"ENGINE\s*=")
_SOURCE = re.compile(r"\b(?P<kw>FROM|JOIN)(?P<ws>\s+)(?P<name>\w+)\b(?![.(])")
_DEDUP_SETTING = re.compile(r"\bnon_replicated_deduplication_window\b")
#: ALTERs of columns change the Distributed table's structure too; the rest (settings,
#: projections, TTL, mutations) concern only the local table.
_COLUMN_ACTIONS = re.compile(r"^\s+(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.IGNORECASE)


def rewrite(statement: str, cluster: ClusterConfig | None, database: str) -> tuple[str, ...]:
    """The cluster form of one rendered DDL statement (one or more statements, in order).

    ``cluster=None`` returns ``(statement,)`` unchanged. ``database`` is named in the
    ``Distributed`` tables. Raises :class:`ClusterError` for a statement it does not know.
    """
    if cluster is None:
        return (statement,)
    if not _DATABASE.match(database):
        raise ClusterError(
            f"invalid database name {database!r}: use letters, digits and underscores"
        )
    on_cluster = f" ON CLUSTER `{cluster.name}`"
    if match := _CREATE_DATABASE.match(statement):
        return (match["head"] + on_cluster + statement[match.end() :],)
    if match := _CREATE_TABLE.match(statement):
        return _rewrite_table(statement, match, cluster, database, on_cluster)
    if match := _CREATE_MV.match(statement):
        target = local_table(match["target"], cluster)
        body = statement[match.end() :]
        if cluster.sharded:
            # A materialized view fires on inserts into the table it reads: the local tables
            # are where the Distributed inserts land.
            body = _SOURCE.sub(lambda m: m["kw"] + m["ws"] + local_table(m["name"], cluster), body)
        return (match["head"] + on_cluster + match["to"] + target + body,)
    if match := _CREATE_VIEW.match(statement):
        # Plain views read the Distributed tables (their original names): nothing else changes.
        return (match["head"] + on_cluster + statement[match.end() :],)
    if match := _ALTER.match(statement):
        return _rewrite_alter(match, cluster, on_cluster)
    if match := _DROP_VIEW.match(statement):
        # Views keep their names in every mode (only their tables gain _local).
        return (match["head"] + on_cluster,)
    first = statement.strip().splitlines()[0] if statement.strip() else statement
    raise ClusterError(
        f"cannot write {first[:80]!r} for a cluster: collector/cluster.py knows CREATE "
        "DATABASE/TABLE/VIEW/MATERIALIZED VIEW ... IF NOT EXISTS, ALTER TABLE and DROP VIEW IF "
        "EXISTS; teach it this statement"
    )


def _rewrite_table(
    statement: str,
    match: re.Match[str],
    cluster: ClusterConfig,
    database: str,
    on_cluster: str,
) -> tuple[str, ...]:
    table = match["name"]
    local = local_table(table, cluster)
    rest = statement[match.end() :]
    if cluster.replicated:
        rest = _replicate_engine(rest, table, local, cluster)
    created = match["head"] + local + on_cluster + rest
    if local == table:
        return (created,)
    key = SHARDING_KEYS.get(table)
    if key is None:
        raise ClusterError(
            f"table {table!r} has no sharding key: add one to SHARDING_KEYS in "
            "collector/cluster.py (a hash of columns, so retried inserts split the same way)"
        )
    distributed = (
        f"\nCREATE TABLE IF NOT EXISTS {table}{on_cluster} AS {local}\n"
        f"ENGINE = Distributed('{cluster.name}', '{database}', '{local}', {key})\n"
    )
    return created, distributed


def _replicate_engine(rest: str, table: str, local: str, cluster: ClusterConfig) -> str:
    if _REPLICATED_ENGINE.search(rest):
        return rest
    engine = _ENGINE.search(rest)
    if engine is None:
        if _ANY_ENGINE.search(rest):
            return rest  # not a MergeTree (Memory, Log...): nothing to replicate
        raise ClusterError(f"CREATE TABLE {table} names no ENGINE: give it one in collector/sql/")
    prefix = cluster.zookeeper_path_prefix
    if table in UNSHARDED_TABLES:
        prefix = prefix.replace("{shard}", "all")
    replicated_args = f"'{prefix}/{local}', '{cluster.replica_macro}'"
    end = engine.end()
    if engine["parens"]:
        close = _closing_paren(rest, end - 1)
        args = rest[end:close].strip()
        tail = rest[close + 1 :]
    else:
        args, tail = "", rest[end:]
    if args:
        replicated_args += ", " + args
    head = rest[: engine.start()]
    replaced = f"ENGINE = Replicated{engine['engine']}({replicated_args})"
    return head + replaced + _DEDUP_SETTING.sub("replicated_deduplication_window", tail)


def _closing_paren(text: str, opening: int) -> int:
    depth = 0
    quoted = False
    for index in range(opening, len(text)):
        char = text[index]
        if char == "'" and text[index - 1] != "\\":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    raise ClusterError(f"unbalanced parentheses in engine arguments: {text[opening:][:80]!r}")


def _rewrite_alter(
    match: re.Match[str], cluster: ClusterConfig, on_cluster: str
) -> tuple[str, ...]:
    table = match["name"]
    rest = match["rest"]
    if cluster.replicated:
        rest = _DEDUP_SETTING.sub("replicated_deduplication_window", rest)
    local = local_table(table, cluster)
    altered = match["head"] + local + on_cluster + rest
    if local != table and _COLUMN_ACTIONS.match(rest):
        # The Distributed table must know the column too, or readers cannot select it.
        return altered, match["head"] + table + on_cluster + rest
    return (altered,)
