"""Time-range reads: `invocations_between` returns exactly the `invocations` rows of a window,
and a store created before it (schema version 5) upgrades and reads its old parts."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import clickhouse_connect

from lambdascope.collector import schema, sql
from lambdascope.collector.sql.rollups import (
    BACKFILL_INVOCATION_MINUTES_EVENTS,
    SELECT_EVENTS_ROLLUP_FILLED,
)
from lambdascope.collector.store import Store
from tests.collector.conftest import TEST_RETENTION_DAYS
from tests.collector.test_store import batch_of, report, runtime_done, start, write

BETWEEN = """
SELECT * FROM invocations_between(
    since = {since:DateTime64(3, 'UTC')}, until = {until:DateTime64(3, 'UTC')},
    function_name = {function_name:String})
ORDER BY request_id
"""
PLAIN = """
SELECT * FROM invocations
WHERE start_time >= {since:DateTime64(3, 'UTC')} AND start_time < {until:DateTime64(3, 'UTC')}
    AND ({function_name:String} = '' OR function_name = {function_name:String})
ORDER BY request_id
"""


def window(since: str, until: str, function_name: str = "") -> dict[str, Any]:
    return {"since": since, "until": until, "function_name": function_name}


def fill(store: Store) -> None:
    """Invocations around 10:00, one of them 14 minutes long with its report in a later batch,
    one known only from a report, one whose report never came."""
    write(
        store,
        batch_of(
            [
                start("early", "2026-11-24T09:40:00.000Z"),
                report("early", "2026-11-24T09:54:00.000Z", "success", 840_000.0),
                start("edge", "2026-11-24T09:59:59.999Z"),
                runtime_done("edge", "2026-11-24T10:00:00.500Z", "success"),
                start("long", "2026-11-24T10:00:00.000Z"),
                start("open", "2026-11-24T10:30:00.000Z"),
            ],
            "b1",
        ),
    )
    write(
        store,
        batch_of(
            [
                report("long", "2026-11-24T10:14:00.000Z", "timeout", 840_000.0),
                report("no-start", "2026-11-24T10:59:00.000Z", "error", 30_000.0),
                report("edge", "2026-11-24T10:00:00.600Z", "success", 501.0),
                start("late", "2026-11-24T11:00:00.000Z"),
            ],
            "b2",
        ),
    )


def test_between_returns_the_rows_of_the_view_for_every_window(store: Store) -> None:
    fill(store)
    reader = store.reader()
    windows = [
        window("2026-11-24 10:00:00.000", "2026-11-24 11:00:00.000"),
        window("2026-11-24 09:59:59.999", "2026-11-24 10:00:00.000"),
        window("2026-11-24 09:30:00.000", "2026-11-24 09:45:00.000"),
        window("2026-11-24 10:20:00.000", "2026-11-24 10:40:00.000"),
        window("2026-11-24 09:00:00.000", "2026-11-24 12:00:00.000"),
        window("2026-11-24 10:00:00.000", "2026-11-24 11:00:00.000", "no-such-function"),
    ]
    seen: set[str] = set()
    for params in windows:
        expected = reader.query(PLAIN, params).rows
        assert reader.query(BETWEEN, params).rows == expected, params
        seen.update(row[2] for row in expected)
    assert seen == {"early", "edge", "long", "open", "no-start", "late"}
    long_row = reader.query(BETWEEN, windows[0]).dicts()
    merged = {r["request_id"]: r for r in long_row}
    # The 14-minute invocation merged its start and its later report: not "unknown".
    assert merged["long"]["status"] == "timeout"
    assert merged["long"]["duration_ms"] == 840_000.0
    assert set(merged) == {"long", "open", "no-start"}


def test_parts_carry_their_event_time(store: Store) -> None:
    fill(store)
    rows = store._client.query(
        "SELECT request_id, min(event_time) FROM invocation_parts "
        "WHERE request_id = 'long' GROUP BY request_id"
    ).result_rows
    assert rows == [("long", dt.datetime(2026, 11, 24, 10, 0))]


@contextlib.contextmanager
def store_at_version(
    chdb_url: str, database: str, version: int, retention_days: int = 30
) -> Iterator[Any]:
    """A client on a store as the collector of schema ``version`` left it (dropped after)."""
    admin = clickhouse_connect.get_client(dsn=chdb_url)
    admin.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    old = clickhouse_connect.get_client(dsn=chdb_url, database=database)
    try:
        old.command(sql.CREATE_MIGRATIONS)
        for number, description, statements in sql.MIGRATIONS:
            if number > version:
                break
            for statement in statements:
                old.command(schema.render(statement, retention_days))
            old.insert(
                "schema_migrations",
                [[number, description]],
                column_names=["version", "description"],
            )
        yield old
    finally:
        admin.command(f"DROP DATABASE IF EXISTS `{database}`")
        old.close()
        admin.close()


def test_a_version_5_store_upgrades_and_reads_its_old_parts(chdb_url: str) -> None:
    database = f"t_collector_upgrade_{os.getpid()}"
    with store_at_version(chdb_url, database, 5, TEST_RETENTION_DAYS) as old:
        # A part as the version-5 collector wrote it: no event_time column yet.
        old.command(
            "INSERT INTO invocation_parts (function_name, request_id, event_date, start_time, "
            "report_time, report_status, report_duration_ms, has_start, has_report) VALUES "
            "('legacy', 'old-1', '2026-11-20', '2026-11-20 08:00:00.000', "
            "'2026-11-20 08:00:01.000', 'success', 1000, 1, 1)"
        )
        store = Store.open(chdb_url, database, retention_days=TEST_RETENTION_DAYS)
        try:
            assert (
                store._client.query(sql.SELECT_SCHEMA_VERSION).first_row[0]
                == schema.CURRENT_VERSION
            )
            rows = (
                store.reader()
                .query(
                    BETWEEN,
                    window("2026-11-20 07:30:00.000", "2026-11-20 08:30:00.000", "legacy"),
                )
                .dicts()
            )
            assert [(r["request_id"], r["status"], r["duration_ms"]) for r in rows] == [
                ("old-1", "success", 1000.0)
            ]
            # Opening again is a no-op: the migration is not applied twice.
            Store.open(chdb_url, database, retention_days=TEST_RETENTION_DAYS).close()
            versions = store._client.query("SELECT count() FROM schema_migrations").first_row
            assert versions[0] == schema.CURRENT_VERSION
        finally:
            store.close()


def test_a_version_7_store_upgrades_with_its_rollups_backfilled_once(chdb_url: str) -> None:
    database = f"t_collector_upgrade7_{os.getpid()}"
    with store_at_version(chdb_url, database, 7, TEST_RETENTION_DAYS) as old:
        # As the version-7 collector wrote them: one request's start and report in separate
        # parts, another whose report never came (the sandbox crashed).
        old.command(
            "INSERT INTO invocation_parts (function_name, request_id, event_date, start_time, "
            "env_memory_size_mb, timeout_ms, has_start) VALUES "
            "('legacy', 'done', '2026-11-20', '2026-11-20 08:00:10.000', 128, 3000, 1), "
            "('legacy', 'crashed', '2026-11-20', '2026-11-20 08:00:20.000', 128, 3000, 1)"
        )
        old.command(
            "INSERT INTO invocation_parts (function_name, request_id, event_date, report_time, "
            "report_status, report_duration_ms, report_billed_duration_ms, "
            "report_memory_size_mb, report_max_memory_used_mb, has_report) VALUES "
            "('legacy', 'done', '2026-11-20', '2026-11-20 08:00:11.000', 'success', 1000, "
            "1000, 128, 96, 1)"
        )
        rollup = (
            "SELECT sum(invocations), sum(started), max(max_memory_used_pct), "
            "min(min_timeout_ms), max(last_start_time) FROM invocation_minutes "
            "WHERE function_name = 'legacy'"
        )
        store = Store.open(chdb_url, database, retention_days=TEST_RETENTION_DAYS)
        try:
            assert store._client.query(rollup).first_row == (
                1,
                2,
                75.0,
                3000.0,
                dt.datetime(2026, 11, 20, 8, 0, 20),
            )
            headroom = (
                "SELECT quantilesMerge(0.5, 0.95)(memory_used_pct_quantiles) "
                "FROM invocation_minutes WHERE function_name = 'legacy'"
            )
            assert store._client.query(headroom).first_row[0] == [75.0, 75.0]
            # Opening again does not backfill again; new parts reach the new columns through
            # the materialized view.
            Store.open(chdb_url, database, retention_days=TEST_RETENTION_DAYS).close()
            assert store._client.query(headroom).first_row[0] == [75.0, 75.0]
            store._client.command(
                "INSERT INTO invocation_parts (function_name, request_id, event_date, "
                "start_time, has_start) VALUES "
                "('legacy', 'new', '2026-11-20', '2026-11-20 08:01:00.000', 1)"
            )
            assert store._client.query(rollup).first_row[:2] == (1, 3)
        finally:
            store.close()


def test_a_new_store_needs_no_backfill() -> None:
    calls: list[str] = []

    class Client:
        database = "x"

        def command(self, statement: str, **_: Any) -> None:
            calls.append(statement)

        def query(self, statement: str, **_: Any) -> Any:
            calls.append(statement)

            class Result:
                first_row = (0,)
                result_rows: list[Any] = []

            return Result()

        def insert(self, *_: Any, **__: Any) -> None:
            pass

    schema.migrate(Client())
    assert BACKFILL_INVOCATION_MINUTES_EVENTS not in calls
    assert SELECT_EVENTS_ROLLUP_FILLED not in calls
