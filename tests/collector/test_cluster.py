"""The cluster form of the collector's DDL, checked without a server (none runs here).

Every statement of collector/sql/ goes through collector.cluster.rewrite, so a statement
added later is covered (or refused by name) without touching these tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import clickhouse_connect
import pytest
import yaml

from lambdascope.collector import schema, sql
from lambdascope.collector.cluster import (
    SHARDING_KEYS,
    ClusterConfig,
    ClusterError,
    check_store_url,
    check_topology,
    cluster_from_args,
    insert_settings,
    local_table,
    rewrite,
)
from lambdascope.collector.sql.otel import ALTER_OTEL_LOGS_DEDUP
from lambdascope.collector.sql.tables import (
    ALTER_PARTS_ADD_EVENT_TIME,
    ALTER_PARTS_ADD_PROJECTION,
    CREATE_LOGS,
)
from lambdascope.collector.sql.views import CREATE_INVOCATIONS_BETWEEN_VIEW
from lambdascope.collector.store import Store, StoreError

DB = "lambdascope"
REPLICATED = ClusterConfig("lambdascope")
SHARDED = ClusterConfig("lambdascope", sharded=True)
SHARDED_ONLY = ClusterConfig("lambdascope", replicated=False, sharded=True)
ALL_MODES = [REPLICATED, SHARDED, SHARDED_ONLY]


def ddl(retention_days: int = 30) -> list[str]:
    """Every DDL statement migrate() runs, rendered, in order (before any cluster rewrite)."""
    statements = [sql.CREATE_DATABASE.format(database=DB), sql.CREATE_MIGRATIONS]
    statements += [
        schema.render(s, retention_days) for _, _, group in sql.MIGRATIONS for s in group
    ]
    statements += list(sql.VIEWS)
    statements += [
        sql.MODIFY_TTL.format(table=table, expression=schema.render(expr, retention_days))
        for table, expr in sql.TTL_TABLES
    ]
    return statements


def rewritten(cluster: ClusterConfig) -> list[str]:
    return [out for statement in ddl() for out in rewrite(statement, cluster, DB)]


def creates(cluster: ClusterConfig) -> dict[str, str]:
    """CREATE TABLE statements of the cluster form, by the table they create."""
    found = {}
    for statement in rewritten(cluster):
        match = re.match(r"\s*CREATE TABLE IF NOT EXISTS (\w+) ", statement)
        if match:
            assert match[1] not in found, f"{match[1]} created twice"
            found[match[1]] = statement
    return found


def merge_tree_tables() -> list[str]:
    """The tables collector/sql/ creates with a MergeTree-family engine."""
    names = []
    for statement in ddl():
        match = re.match(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if match and re.search(r"ENGINE = \w*MergeTree", statement):
            names.append(match[1])
    return names


def engine_clause(statement: str) -> str:
    match = re.search(r"ENGINE = (\w+)(\((?:[^()]|\([^()]*\))*\))?", statement)
    assert match, statement
    return match[0]


# Cluster off: today's statements, byte for byte.


def test_without_a_cluster_every_statement_is_returned_unchanged() -> None:
    for statement in ddl():
        (out,) = rewrite(statement, None, DB)
        assert out is statement


def test_migrate_without_a_cluster_runs_exactly_todays_statements() -> None:
    client = FakeClient(ttl_days=None)
    schema.migrate(client, retention_days=30)
    expected = [sql.CREATE_MIGRATIONS]
    expected += [schema.render(s, 30) for _, _, group in sql.MIGRATIONS for s in group]
    expected += list(sql.VIEWS)
    expected += [
        sql.MODIFY_TTL.format(table=table, expression=schema.render(expr, 30))
        for table, expr in sql.TTL_TABLES
    ]
    assert client.commands == expected
    assert all("ON CLUSTER" not in c and "Replicated" not in c for c in client.commands)
    assert client.queries[0] == sql.SELECT_SCHEMA_VERSION  # no topology query on one server


# ON CLUSTER everywhere, idempotency kept.


@pytest.mark.parametrize("cluster", ALL_MODES, ids=["replicated", "sharded", "sharded-only"])
def test_every_statement_runs_on_the_cluster(cluster: ClusterConfig) -> None:
    for statement in rewritten(cluster):
        head = " ".join(statement.split()[:10])
        assert re.match(
            r"(CREATE (DATABASE|TABLE|MATERIALIZED VIEW) IF NOT EXISTS|CREATE OR REPLACE VIEW"
            r"|ALTER TABLE|DROP VIEW IF EXISTS) `?\w+`? ON CLUSTER `lambdascope`",
            head,
        ), head


#: ALTERs that may run twice (as in test_schema.py), now with ON CLUSTER after the table.
_IDEMPOTENT_ALTER = re.compile(
    r"^ALTER TABLE \w+ ON CLUSTER `lambdascope` (MODIFY SETTING|MODIFY TTL|"
    r"ADD (COLUMN|PROJECTION|INDEX) IF NOT EXISTS|MATERIALIZE PROJECTION)"
)


@pytest.mark.parametrize("cluster", ALL_MODES, ids=["replicated", "sharded", "sharded-only"])
def test_every_rewritten_statement_stays_idempotent(cluster: ClusterConfig) -> None:
    for statement in rewritten(cluster):
        words = " ".join(statement.split()[:12])
        assert re.match(
            r"CREATE (DATABASE|TABLE|MATERIALIZED VIEW) IF NOT EXISTS|CREATE OR REPLACE VIEW"
            r"|DROP VIEW IF EXISTS \w+ ON CLUSTER `lambdascope`$",
            words,
        ) or _IDEMPOTENT_ALTER.match(words), words


def test_a_statement_that_is_not_idempotent_ddl_is_refused_by_name() -> None:
    for statement in (
        "CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a",
        "INSERT INTO logs VALUES",
        "DROP TABLE logs",
        "DROP VIEW invocation_minutes_mv",
        "",
    ):
        with pytest.raises(ClusterError, match="collector/cluster.py"):
            rewrite(statement, REPLICATED, DB)


# Replicated engines.


def test_every_merge_tree_engine_becomes_replicated_with_its_own_keeper_path() -> None:
    tables = creates(REPLICATED)
    assert set(merge_tree_tables()) <= set(tables)
    paths = {}
    for table in merge_tree_tables():
        engine = engine_clause(tables[table])
        match = re.match(r"ENGINE = Replicated(\w*MergeTree)\('([^']+)', '\{replica\}'", engine)
        assert match, engine
        paths[table] = match[2]
        assert match[2].endswith("/" + table)
    assert len(set(paths.values())) == len(paths)
    assert paths["logs"] == "/clickhouse/tables/{shard}/{database}/logs"
    assert paths["schema_migrations"] == "/clickhouse/tables/all/{database}/schema_migrations"
    assert engine_clause(tables["invocation_parts"]).startswith(
        "ENGINE = ReplicatedAggregatingMergeTree("
    )


def test_everything_but_the_engine_and_the_dedup_setting_is_preserved() -> None:
    original = {}
    for statement in ddl():
        match = re.match(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if match:
            original[match[1]] = statement
    for table, statement in creates(REPLICATED).items():
        expected = original[table].replace(engine_clause(original[table]), "ENGINE")
        expected = expected.replace(
            "non_replicated_deduplication_window", "replicated_deduplication_window"
        )
        got = statement.replace(engine_clause(statement), "ENGINE").replace(
            " ON CLUSTER `lambdascope`", ""
        )
        assert got == expected, table


def test_engine_arguments_follow_the_keeper_path_and_replica() -> None:
    # The shape of analyzers/alerts' state table, which may be created on the same store.
    (state,) = rewrite(
        "CREATE TABLE IF NOT EXISTS alert_state (rule String, updated_at DateTime64(3))\n"
        ") ENGINE = ReplacingMergeTree(updated_at)\nORDER BY rule",
        REPLICATED,
        DB,
    )
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/{database}/alert_state', '{replica}', updated_at)"
    ) in state
    (summing,) = rewrite(
        "CREATE TABLE IF NOT EXISTS s (k String, a UInt64, b UInt64) "
        "ENGINE = SummingMergeTree((a, b)) ORDER BY k",
        ClusterConfig("c", zookeeper_path_prefix="/ch/{shard}", replica_macro="{host}"),
        DB,
    )
    assert summing == (
        "CREATE TABLE IF NOT EXISTS s ON CLUSTER `c` (k String, a UInt64, b UInt64) "
        "ENGINE = ReplicatedSummingMergeTree('/ch/{shard}/s', '{host}', (a, b)) ORDER BY k"
    )


def test_replicated_tables_keep_the_deduplication_window_under_its_replicated_name() -> None:
    for statement in rewritten(REPLICATED):
        assert "non_replicated_deduplication_window" not in statement
    logs = creates(REPLICATED)["logs"]
    assert "replicated_deduplication_window = 10000" in logs
    # Sharded without replication: plain MergeTree shards keep the non-replicated setting.
    assert "non_replicated_deduplication_window = 10000" in creates(SHARDED_ONLY)["logs_local"]
    assert "ENGINE = MergeTree\n" in creates(SHARDED_ONLY)["logs_local"]


# Sharding: local tables and Distributed tables.


def test_sharded_mode_puts_each_data_table_behind_a_distributed_table() -> None:
    tables = creates(SHARDED)
    for table in merge_tree_tables():
        if table == "schema_migrations":
            continue
        local = tables[table + "_local"]
        assert engine_clause(local).startswith("ENGINE = Replicated")
        assert f"/{{shard}}/{{database}}/{table}_local'" in local
        distributed = tables[table]
        assert f" AS {table}_local\n" in distributed
        assert (
            f"ENGINE = Distributed('lambdascope', 'lambdascope', '{table}_local', "
            f"{SHARDING_KEYS[table]})"
        ) in distributed
        # Created after its local table, on every server.
        order = list(tables)
        assert order.index(table + "_local") < order.index(table)


def test_schema_migrations_is_one_replicated_table_for_the_whole_cluster() -> None:
    tables = creates(SHARDED)
    assert "schema_migrations_local" not in tables
    assert "Distributed" not in tables["schema_migrations"]
    assert "'/clickhouse/tables/all/{database}/schema_migrations'" in tables["schema_migrations"]


def test_sharding_keys_are_deterministic_and_name_real_columns() -> None:
    tables = creates(REPLICATED)
    for table in merge_tree_tables():
        if table == "schema_migrations":
            continue
        key = SHARDING_KEYS[table]
        assert "rand" not in key  # a retry must split into the same per-shard blocks
        columns = set(re.findall(r"^\s+(\w+) ", tables[table], re.M))
        for name in re.findall(r"\w+", key.removeprefix("cityHash64")):
            assert name in columns, f"{table}: {name}"


def test_a_table_without_a_sharding_key_is_refused_in_sharded_mode() -> None:
    statement = "CREATE TABLE IF NOT EXISTS extra (a UInt8) ENGINE = MergeTree ORDER BY a"
    with pytest.raises(ClusterError, match="SHARDING_KEYS"):
        rewrite(statement, SHARDED, DB)
    assert rewrite(statement, REPLICATED, DB)  # unsharded, any table will do


def test_materialized_views_read_and_write_local_tables_when_sharded() -> None:
    views = [s for s in rewritten(SHARDED) if "MATERIALIZED VIEW" in s]
    # Trace ids by time; the minutes from reports, events and memory (schema 4, 8, 12), then
    # from all three in one view (schema 15).
    assert len(views) == 5
    for view in views:
        target = re.search(r" TO (\w+)", view)
        assert target and target[1].endswith("_local")
        sources = re.findall(r"\bFROM\s+(\w+)", view)
        assert sources and all(s.endswith("_local") for s in sources)
    for name in ("invocation_minutes_mv", "invocation_minutes_rollup_mv"):
        minutes = next(v for v in views if f" {name} " in v)
        assert "TO invocation_minutes_local AS" in minutes
        assert "FROM invocation_parts_local\n" in minutes


@pytest.mark.parametrize("cluster", ALL_MODES, ids=["replicated", "sharded", "sharded-only"])
def test_the_replaced_rollup_views_are_dropped_on_every_server(cluster: ClusterConfig) -> None:
    drops = [s for s in rewritten(cluster) if s.startswith("DROP VIEW")]
    assert drops == [
        f"DROP VIEW IF EXISTS {name} ON CLUSTER `lambdascope`"
        for name in (
            "invocation_minutes_mv",
            "invocation_minutes_events_mv",
            "invocation_minutes_memory_mv",
        )
    ]


def test_materialized_views_keep_their_tables_when_only_replicated() -> None:
    views = [s for s in rewritten(REPLICATED) if "MATERIALIZED VIEW" in s]
    assert views and all("_local" not in v for v in views)


def test_plain_views_read_the_distributed_tables_and_keep_their_parameters() -> None:
    for original in sql.VIEWS:
        (out,) = rewrite(original, SHARDED, DB)
        assert out.replace(" ON CLUSTER `lambdascope`", "", 1) == original
        assert "_local" not in out
    between = rewrite(CREATE_INVOCATIONS_BETWEEN_VIEW, SHARDED, DB)[0]
    assert "{since:DateTime64(3, 'UTC')}" in between


# ALTERs.


def test_alters_run_on_the_cluster_against_the_table_holding_the_rows() -> None:
    alter = "ALTER TABLE invocation_parts MATERIALIZE PROJECTION parts_by_time"
    assert rewrite(alter, REPLICATED, DB) == (
        "ALTER TABLE invocation_parts ON CLUSTER `lambdascope` MATERIALIZE PROJECTION "
        "parts_by_time",
    )
    assert rewrite(alter, SHARDED, DB) == (
        "ALTER TABLE invocation_parts_local ON CLUSTER `lambdascope` MATERIALIZE PROJECTION "
        "parts_by_time",
    )
    (dedup,) = rewrite(ALTER_OTEL_LOGS_DEDUP.format(dedup_window=10), SHARDED, DB)
    assert dedup == (
        "ALTER TABLE otel_logs_local ON CLUSTER `lambdascope` "
        "MODIFY SETTING replicated_deduplication_window = 10"
    )


def test_a_new_column_reaches_the_distributed_table_too() -> None:
    local, distributed = rewrite(ALTER_PARTS_ADD_EVENT_TIME, SHARDED, DB)
    assert local.lstrip().startswith(
        "ALTER TABLE invocation_parts_local ON CLUSTER `lambdascope` ADD COLUMN IF NOT EXISTS"
    )
    assert distributed.lstrip().startswith(
        "ALTER TABLE invocation_parts ON CLUSTER `lambdascope` ADD COLUMN IF NOT EXISTS"
    )
    assert "event_time SimpleAggregateFunction(min" in distributed
    # A projection belongs to the local table only.
    assert len(rewrite(ALTER_PARTS_ADD_PROJECTION, SHARDED, DB)) == 1


def test_local_table_names_the_table_holding_rows() -> None:
    assert local_table("logs", None) == "logs"
    assert local_table("logs", REPLICATED) == "logs"
    assert local_table("logs", SHARDED) == "logs_local"
    assert local_table("schema_migrations", SHARDED) == "schema_migrations"


# migrate() in cluster mode, against a recording client.


class _Result:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.result_rows = rows
        self.first_row = rows[0] if rows else ()


class FakeClient:
    """Records what migrate() sends; answers the topology, version and engine queries."""

    def __init__(
        self, *, shards: int = 1, servers: int = 2, version: int = 0, ttl_days: int | None = 30
    ) -> None:
        self.database = DB
        self.commands: list[str] = []
        self.queries: list[str] = []
        self.parameters: list[Any] = []
        self.inserts: list[tuple[str, Any]] = []
        self._topology = (shards, servers)
        self._version = version
        self._ttl_days = ttl_days

    def command(self, statement: str, settings: Any = None) -> None:
        self.commands.append(statement)

    def query(self, statement: str, parameters: Any = None) -> _Result:
        self.queries.append(statement)
        self.parameters.append(parameters)
        if "system.clusters" in statement:
            return _Result([self._topology])
        if "schema_migrations" in statement:
            return _Result([(self._version,)])
        if "system.tables" in statement and self._ttl_days is not None:
            engine = f"MergeTree TTL toIntervalDay({self._ttl_days})"
            return _Result(
                [(local_table(t, SHARDED), engine) for t, _ in sql.TTL_TABLES]
                + [(t, engine) for t, _ in sql.TTL_TABLES]
            )
        return _Result([])

    def insert(self, table: str, rows: Any, column_names: Any = None) -> None:
        self.inserts.append((table, rows))

    def close(self) -> None:
        self.closed = True


def test_migrate_on_a_cluster_checks_the_topology_then_runs_every_statement_on_it() -> None:
    client = FakeClient(shards=2, servers=4)
    assert schema.migrate(client, retention_days=30, cluster=SHARDED) == schema.CURRENT_VERSION
    assert "system.clusters" in client.queries[0]
    assert client.parameters[0] == {"cluster": "lambdascope"}  # bound, not formatted
    assert "lambdascope" not in client.queries[0]
    assert (
        client.commands[0]
        .lstrip()
        .startswith("CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER `lambdascope`")
    )
    assert all(" ON CLUSTER `lambdascope`" in c for c in client.commands)
    assert any("ENGINE = Distributed('lambdascope', 'lambdascope'," in c for c in client.commands)
    assert [t for t, _ in client.inserts] == ["schema_migrations"] * schema.CURRENT_VERSION
    # The local tables already carry this retention: no TTL change.
    assert not [c for c in client.commands if "MODIFY TTL" in c]


def test_a_retention_change_on_a_sharded_cluster_alters_the_local_tables() -> None:
    client = FakeClient(version=schema.CURRENT_VERSION, ttl_days=30)
    schema.migrate(client, retention_days=7, cluster=SHARDED)
    ttl = [c for c in client.commands if "MODIFY TTL" in c]
    assert len(ttl) == len(sql.TTL_TABLES)
    assert (
        "ALTER TABLE logs_local ON CLUSTER `lambdascope` "
        "MODIFY TTL toDateTime(timestamp) + INTERVAL 7 DAY"
    ) in ttl


def test_migrate_refuses_a_cluster_the_server_does_not_know_before_any_ddl() -> None:
    client = FakeClient(shards=0, servers=0)
    with pytest.raises(ClusterError, match="knows no cluster 'lambdascope'.*remote_servers"):
        schema.migrate(client, cluster=REPLICATED)
    assert client.commands == []


def test_migrate_refuses_several_shards_without_sharding() -> None:
    client = FakeClient(shards=3, servers=6)
    with pytest.raises(ClusterError, match="3 shards.*--sharded"):
        schema.migrate(client, cluster=REPLICATED)
    assert client.commands == []


def test_migrate_on_a_cluster_still_refuses_a_newer_schema() -> None:
    client = FakeClient(version=schema.CURRENT_VERSION + 1)
    with pytest.raises(schema.SchemaError, match="upgrade lambdascope"):
        schema.migrate(client, cluster=REPLICATED)


def test_check_topology_accepts_what_fits() -> None:
    check_topology(REPLICATED, shards=1, servers=2)
    check_topology(SHARDED, shards=2, servers=4)
    check_topology(SHARDED, shards=1, servers=1)


# Configuration.


def test_cluster_from_args() -> None:
    assert cluster_from_args(None, False) is None
    assert cluster_from_args("  ", False) is None
    assert cluster_from_args("lambdascope", False) == ClusterConfig("lambdascope")
    assert cluster_from_args("prod-ch", True) == ClusterConfig("prod-ch", sharded=True)
    with pytest.raises(ClusterError, match="--sharded needs --cluster NAME"):
        cluster_from_args(None, True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a b"}, "invalid cluster name"),
        ({"name": "x`; DROP TABLE logs"}, "invalid cluster name"),
        ({"name": "c", "replicated": False}, "neither replication nor sharding"),
        ({"name": "c", "zookeeper_path_prefix": "relative/{shard}"}, "zookeeper_path_prefix"),
        ({"name": "c", "zookeeper_path_prefix": "/x/'y"}, "zookeeper_path_prefix"),
        ({"name": "c", "zookeeper_path_prefix": "/x/"}, "zookeeper_path_prefix"),
        (
            {"name": "c", "sharded": True, "zookeeper_path_prefix": "/ch/{database}"},
            "no \\{shard\\} macro",
        ),
        ({"name": "c", "replica_macro": "{replica}'"}, "replica_macro"),
    ],
)
def test_bad_cluster_configuration_is_refused_with_the_fix(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClusterError, match=message):
        ClusterConfig(**kwargs)


def test_an_invalid_database_is_refused_before_it_reaches_ddl() -> None:
    with pytest.raises(ClusterError, match="invalid database name"):
        rewrite(CREATE_LOGS, SHARDED, "db'); DROP")


def test_sharded_writes_wait_for_every_shard() -> None:
    assert insert_settings(SHARDED) == {"distributed_foreground_insert": 1}
    assert insert_settings(REPLICATED) == {}
    assert insert_settings(None) == {}


def test_cluster_mode_needs_a_server_url() -> None:
    check_store_url("http://u:p@ch:8123/db", REPLICATED)
    check_store_url("https://ch:8443", SHARDED)
    check_store_url("chdb:///tmp/x", None)
    with pytest.raises(ClusterError, match="needs a ClickHouse server.*--store http"):
        check_store_url("chdb:///tmp/x", REPLICATED)


def test_the_embedded_store_refuses_cluster_mode_and_still_opens_without_it(
    chdb_url: str,
) -> None:
    database = "t_cluster_refused"
    with pytest.raises(StoreError, match="--cluster lambdascope.*drop --cluster/--sharded"):
        Store.open(chdb_url, database, cluster=REPLICATED)
    store = Store.open(chdb_url, database)
    try:
        assert store.cluster is None
        assert store.ping()
        engines = dict(store._client.query(sql.SELECT_TABLE_ENGINES).result_rows)
        assert engines["logs"].startswith("MergeTree")
        assert not any(name.endswith("_local") for name in engines)
    finally:
        try:
            store._client.command(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            store.close()


@pytest.mark.parametrize("cluster", ALL_MODES, ids=["replicated", "sharded", "sharded-only"])
def test_every_rewritten_statement_parses_on_clickhouse(
    chdb_url: str, cluster: ClusterConfig
) -> None:
    # formatQuery only parses (the embedded engine has no cluster to run them on); a syntax
    # error in the cluster form shows here rather than on a user's server.
    client = clickhouse_connect.get_client(dsn=chdb_url)
    try:
        for statement in rewritten(cluster):
            formatted = client.query(
                "SELECT formatQuery({q:String})", parameters={"q": statement}
            ).result_rows[0][0]
            assert "ON CLUSTER lambdascope" in formatted
        with pytest.raises(Exception, match="Syntax error"):
            client.query(
                "SELECT formatQuery({q:String})",
                parameters={"q": "CREATE TABLE t ON CLUSTER `c` (a"},
            )
    finally:
        client.close()


# The documented cluster deployment (not run here: no Docker), checked for consistency.

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_cluster_compose_file_names_servers_its_config_knows() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.cluster.yml").read_text())
    servers = {
        name: service
        for name, service in compose["services"].items()
        if service["image"].startswith("clickhouse/clickhouse-server")
    }
    assert len(servers) == 2
    config = ElementTree.parse(DEPLOY / "clickhouse" / "cluster.xml").getroot()
    cluster = config.find("remote_servers/lambdascope")
    assert cluster is not None  # the name the README passes to --cluster
    replicas = {r.findtext("host") for r in cluster.iter("replica")}
    assert replicas == {s["hostname"] for s in servers.values()}
    keeper = config.find("zookeeper/node")
    assert keeper is not None and keeper.findtext("host") in compose["services"]
    replica_names = set()
    for service in servers.values():
        mounted = {}
        for volume in service["volumes"]:
            source, _, target = volume.partition(":")
            if source.startswith("./"):
                path = DEPLOY / source
                assert path.is_file(), source
                mounted[target.removesuffix(":ro")] = ElementTree.parse(path).getroot()
        macros = mounted["/etc/clickhouse-server/config.d/macros.xml"].find("macros")
        assert macros is not None
        # Every macro of the default Keeper path and replica name is defined ({database} is
        # the server's own).
        assert macros.findtext("shard") and macros.findtext("replica") == service["hostname"]
        replica_names.add(macros.findtext("replica"))
    assert len(replica_names) == 2
    keeper_service = compose["services"][keeper.findtext("host")]
    keeper_config = ElementTree.parse(DEPLOY / keeper_service["volumes"][0].split(":")[0])
    assert keeper_config.findtext("keeper_server/tcp_port") == keeper.findtext("port")


def test_store_open_on_a_server_creates_the_cluster_schema_and_waits_for_shards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[tuple[dict[str, Any], FakeClient]] = []

    def get_client(**kwargs: Any) -> FakeClient:
        client = FakeClient(shards=2, servers=4)
        opened.append((kwargs, client))
        return client

    monkeypatch.setattr("lambdascope.collector.store.clickhouse_connect.get_client", get_client)
    store = Store.open("http://u:secret@ch.internal:8123/fleet", cluster=SHARDED)
    assert store.cluster == SHARDED and store.database == "fleet"
    store.read_client()  # read handles are opened as reads need them
    (admin_args, admin), (write_args, writer), (read_args, _reader) = opened
    assert admin.commands == ["CREATE DATABASE IF NOT EXISTS `fleet` ON CLUSTER `lambdascope`"]
    # Inserts into Distributed tables return once every shard committed; reads run readonly
    # and carry no extra setting.
    assert write_args["settings"] == {"distributed_foreground_insert": 1}
    assert "settings" not in read_args and "settings" not in admin_args
    assert any(
        "ENGINE = Distributed('lambdascope', 'fleet', 'logs_local'" in c for c in writer.commands
    )
    assert "secret" not in store.url


@pytest.mark.parametrize("sharded", [False, True])
def test_the_alert_tables_have_a_cluster_form_too(sharded: bool) -> None:
    from lambdascope.analyzers.alerts import ALERT_TABLES_DDL

    cluster = ClusterConfig("lambdascope", sharded=sharded)
    for statement in ALERT_TABLES_DDL:
        rewritten = rewrite(statement, cluster, "lambdascope")
        assert all("ON CLUSTER `lambdascope`" in ddl for ddl in rewritten)
        assert any("Replicated" in ddl for ddl in rewritten)
