"""The generated DDL, checked without a store (the server path cannot run on this machine), and
the per-minute events rollup on the embedded store."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from lambdascope.collector import schema, sql
from lambdascope.collector.sql.tables import CREATE_LOGS
from lambdascope.collector.store import Store


def all_statements(retention_days: int = 30) -> list[str]:
    statements = [s for _, _, group in sql.MIGRATIONS for s in group]
    return [schema.render(s, retention_days) for s in statements] + list(sql.VIEWS)


def test_versions_are_consecutive_from_one() -> None:
    versions = [version for version, _, _ in sql.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert versions[-1] == schema.CURRENT_VERSION


#: ALTERs that may run twice: setting a setting, adding with IF NOT EXISTS, materialising.
_IDEMPOTENT_ALTER = re.compile(
    r"^ALTER TABLE \w+ (MODIFY SETTING|ADD (COLUMN|PROJECTION|INDEX) IF NOT EXISTS|"
    r"MATERIALIZE PROJECTION)"
)


def test_every_statement_is_idempotent() -> None:
    for statement in all_statements():
        words = statement.split()
        head = " ".join(words[:6])
        assert re.search(
            r"IF NOT EXISTS|OR REPLACE|^DROP VIEW IF EXISTS", head
        ) or _IDEMPOTENT_ALTER.match(" ".join(words[:8])), head


def test_retention_and_dedup_window_are_filled_in() -> None:
    rendered = all_statements(retention_days=7)
    tables = [s for s in rendered if "ENGINE = " in s and "TTL" in s]
    assert len(tables) == 11
    for statement in tables:
        assert "INTERVAL 7 DAY" in statement
        assert "{" not in statement
    assert "non_replicated_deduplication_window = 10000" in schema.render(CREATE_LOGS, 7)


@pytest.mark.parametrize("days", [0, -1, 40_000, "30", 1.5, True])
def test_retention_must_be_a_sane_whole_number_of_days(days: object) -> None:
    with pytest.raises(schema.SchemaError, match="retention_days"):
        schema.check_retention(days)


@pytest.mark.parametrize("name", ["lambdascope", "test_1", "_x"])
def test_database_names_accepted(name: str) -> None:
    assert sql.IDENTIFIER.match(name)


@pytest.mark.parametrize("name", ["", "1db", "a-b", "a`b", "a b", "x" * 64])
def test_database_names_refused(name: str) -> None:
    assert not sql.IDENTIFIER.match(name)


def test_the_events_rollup_counts_each_part_in_the_minute_its_invocation_started(
    store: Store,
) -> None:
    """The view's start minute, taken in whole milliseconds, at the edges of a minute: the
    start when there is one, else report or runtimeDone time minus the rounded duration, else
    when the part arrived or was last sent, else its day."""
    day = dt.date(2026, 11, 24)

    def at(minute: int, second: int, ms: int) -> dt.datetime:
        return dt.datetime(2026, 11, 24, 12, minute, second, ms * 1000, tzinfo=dt.UTC)

    none = None
    # (version, start, report time, report ms, runtimeDone time, runtimeDone ms, received,
    #  last sent, expected minute)
    cases = [
        ("start", at(0, 59, 999), at(1, 5, 0), 100.0, none, none, none, none, at(0, 0, 0)),
        ("report-rounds-down", none, at(1, 0, 0), 0.4, none, none, none, none, at(1, 0, 0)),
        ("report-rounds-up", none, at(1, 0, 0), 0.6, none, none, none, none, at(0, 0, 0)),
        ("runtime-done", none, none, none, at(2, 0, 500), 500.7, none, none, at(1, 0, 0)),
        ("received", none, none, none, none, none, at(3, 30, 0), at(9, 0, 0), at(3, 0, 0)),
        ("last-sent", none, none, none, none, none, none, at(4, 0, 0), at(4, 0, 0)),
        ("day", none, none, none, none, none, none, none, dt.datetime(2026, 11, 24, tzinfo=dt.UTC)),
    ]
    names = (
        "function_name", "request_id", "event_date", "function_version", "start_time",
        "report_time", "report_duration_ms", "runtime_done_time", "runtime_done_duration_ms",
        "received_at", "last_sent_at", "has_start", "has_report",
    )  # fmt: skip
    rows = [
        ["fn", f"req-{i}", day, version, start, report, report_ms, done, done_ms, received,
         sent, 1, int(report is not None)]
        for i, (version, start, report, report_ms, done, done_ms, received, sent, _) in enumerate(
            cases
        )
    ]  # fmt: skip
    store._client.insert("invocation_parts", rows, column_names=names)
    got = store._client.query(
        "SELECT function_version, minute FROM invocation_minutes GROUP BY ALL"
        " HAVING sum(started) > 0 ORDER BY ALL"
    ).result_rows
    expected = sorted((case[0], case[-1].replace(tzinfo=None)) for case in cases)
    assert sorted((str(v), m.replace(tzinfo=None)) for v, m in got) == expected


def _migrate_with(chdb_url: str, refuse: str) -> tuple[int | Exception, list[str]]:
    """Migrate a fresh database on a client that fails every command containing ``refuse``,
    as a server that does not know a setting does: the version or the error, and the
    warnings."""
    import logging
    import os

    import clickhouse_connect

    database = f"t_schema_refuse_{os.getpid()}_{abs(hash(refuse)) % 10**6}"
    admin = clickhouse_connect.get_client(dsn=chdb_url)
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client = clickhouse_connect.get_client(dsn=chdb_url, database=database)
    command = client.command

    def old_server(statement: str, *args: object, **kwargs: object) -> object:
        if refuse in statement:
            raise RuntimeError(f"Code: 115. DB::Exception: Unknown setting '{refuse}'")
        return command(statement, *args, **kwargs)

    client.command = old_server  # type: ignore[method-assign]
    warnings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("lambdascope.collector")
    logger.addHandler(handler)
    try:
        outcome: int | Exception = schema.migrate(client, retention_days=30)
    except schema.SchemaError as exc:
        outcome = exc
    finally:
        logger.removeHandler(handler)
        client.close()  # an open handle keeps the engine's path for the rest of the process
        admin.command(f"DROP DATABASE IF EXISTS {database}")
        admin.close()
    return outcome, warnings


def test_a_server_that_does_not_know_a_tuning_setting_still_gets_the_schema(
    chdb_url: str,
) -> None:
    """Merge tuning is an optimisation: a server too old for its setting skips it, says so,
    and the store is migrated all the same."""
    outcome, warnings = _migrate_with(chdb_url, "merge_selector_base")
    assert outcome == schema.CURRENT_VERSION
    skipped = [w for w in warnings if w.startswith("skipped")]
    assert len(skipped) == len([t for t in sql.TUNING if "merge_selector_base" in t])
    assert "Unknown setting 'merge_selector_base'" in skipped[0]


def test_a_statement_the_schema_needs_still_fails_the_migration(chdb_url: str) -> None:
    outcome, _ = _migrate_with(chdb_url, "memory_used_pct_quantiles")
    assert isinstance(outcome, schema.SchemaError)
    assert "schema migration 12" in str(outcome)


def test_without_block_numbers_claims_are_ordered_by_time(chdb_url: str) -> None:
    """A server too old for the ledger's block numbers skips them; its collectors then order
    the claims by time, as on a cluster, instead of asking for a column it lacks."""
    from lambdascope.collector.store import _numbers_claims

    outcome, warnings = _migrate_with(chdb_url, "enable_block_number_column")
    assert outcome == schema.CURRENT_VERSION
    assert any("enable_block_number_column" in w for w in warnings)

    class Engines:
        def __init__(self, batches: str) -> None:
            self.result_rows = [("batches", batches), ("logs", "MergeTree")]

    class Client:
        def __init__(self, batches: str) -> None:
            self.batches = batches

        def query(self, statement: str) -> Engines:
            assert statement == sql.SELECT_TABLE_ENGINES
            return Engines(self.batches)

    assert _numbers_claims(Client("MergeTree ... SETTINGS enable_block_number_column = 1"))
    assert not _numbers_claims(Client("MergeTree ... SETTINGS index_granularity = 8192"))
