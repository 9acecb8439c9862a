"""The store on embedded ClickHouse: schema, merged invocations, idempotent writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from lambdascope.collector import schema
from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.prepare import prepare_batch
from lambdascope.collector.store import Store, StoreError, database_in_url, redact_url, resolve_url
from lambdascope.collector.wire import HttpError
from lambdascope.query import QueryError
from tests.collector.conftest import load_event

R1 = "8f5a2c1e-1111-4c3d-9e8f-0a1b2c3d4e5f"
R2 = "2a7d9e4b-2222-4f6a-8b1c-3d5e7f9a1b2c"
TIMEOUT_RID = "7e57ab1e-4444-4c3d-8e9f-5a6b7c8d9e0f"

#: docs/architecture.md §2, the read contract of the `invocations` view.
INVOCATION_CONTRACT = {
    "function_name": "String",
    "function_version": "String",
    "request_id": "String",
    "environment_id": "String",
    "start_time": "DateTime64(3, 'UTC')",
    "end_time": "Nullable(DateTime64(3, 'UTC'))",
    "duration_ms": "Nullable(Float64)",
    "billed_duration_ms": "Nullable(Float64)",
    "memory_size_mb": "Nullable(UInt32)",
    "max_memory_used_mb": "Nullable(UInt32)",
    "init_duration_ms": "Nullable(Float64)",
    "cold_start": "UInt8",
    "status": "String",
    "error_type": "String",
    "timeout_ms": "Nullable(Float64)",
    "has_start": "UInt8",
    "has_runtime_done": "UInt8",
    "has_report": "UInt8",
}
LOG_CONTRACT = {
    "timestamp": "DateTime64(3, 'UTC')",
    "function_name": "LowCardinality(String)",
    "function_version": "LowCardinality(String)",
    "environment_id": "String",
    "request_id": "String",
    "stream": "LowCardinality(String)",
    "level": "LowCardinality(String)",
    "message": "String",
}


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def write(store: Store, raw: dict[str, Any]) -> Any:
    return store.write(normalize_batch(raw))


def invocations(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.reader().query("SELECT * FROM invocations").dicts()
    return {row["request_id"]: row for row in rows}


def batch_of(events: list[dict[str, Any]], batch_id: str, **extra: Any) -> dict[str, Any]:
    raw = load_event("text_batch_1")
    raw.update(batch_id=batch_id, telemetry=events, invocations=[], open_request_id=None)
    raw.update(extra)
    return raw


def start(rid: str, time: str) -> dict[str, Any]:
    return {"time": time, "type": "platform.start", "record": {"requestId": rid}}


def runtime_done(rid: str, time: str, status: str, **record: Any) -> dict[str, Any]:
    return {
        "time": time,
        "type": "platform.runtimeDone",
        "record": {"requestId": rid, "status": status, **record},
    }


def report(rid: str, time: str, status: str, duration_ms: float, **record: Any) -> dict[str, Any]:
    metrics = {
        "durationMs": duration_ms,
        "billedDurationMs": float(int(duration_ms) + 1),
        "memorySizeMB": 128,
        "maxMemoryUsedMB": 60,
    }
    return {
        "time": time,
        "type": "platform.report",
        "record": {"requestId": rid, "status": status, "metrics": metrics, **record},
    }


def test_schema_matches_the_read_contract(store: Store) -> None:
    reader = store.reader()

    def described(table: str) -> dict[str, str]:
        result = reader.query(f"SELECT * FROM {table} LIMIT 0")
        return dict(zip(result.columns, result.types, strict=True))

    invocations = described("invocations")
    # LowCardinality is a storage detail: readers see the same strings.
    invocations["function_name"] = invocations["function_name"].replace(
        "LowCardinality(String)", "String"
    )
    assert {k: invocations.get(k) for k in INVOCATION_CONTRACT} == INVOCATION_CONTRACT
    logs = described("logs")
    assert {k: logs.get(k) for k in LOG_CONTRACT} == LOG_CONTRACT


def test_a_cold_then_failing_invocation_merge_across_two_batches(store: Store) -> None:
    assert write(store, load_event("text_batch_1")).duplicate is False
    write(store, load_event("text_batch_2"))
    rows = invocations(store)
    assert set(rows) == {R1, R2}
    first = rows[R1]
    assert first["function_name"] == "checkout"
    assert first["function_version"] == "$LATEST"
    assert first["environment_id"] == "5e1d0c9b8a7f6e5d4c3b2a1908f7e6d5"
    assert first["start_time"] == utc("2026-11-24T07:00:00.210")
    assert first["end_time"] == utc("2026-11-24T07:00:00.231")
    assert first["duration_ms"] == 20.87  # the report's, not runtimeDone's 19.6
    assert (first["billed_duration_ms"], first["memory_size_mb"], first["max_memory_used_mb"]) == (
        224,
        128,
        56,
    )
    assert (first["cold_start"], first["init_duration_ms"]) == (1, 202.4)
    assert (first["status"], first["error_type"], first["timeout_ms"]) == ("success", "", 3000)
    assert (first["has_start"], first["has_runtime_done"], first["has_report"]) == (1, 1, 1)

    second = rows[R2]
    assert (second["status"], second["error_type"]) == ("error", "ValueError")
    assert (second["cold_start"], second["init_duration_ms"]) == (0, None)


def test_logs_are_stored_with_their_request_and_order(store: Store) -> None:
    write(store, load_event("text_batch_1"))
    write(store, load_event("text_batch_2"))
    rows = (
        store.reader()
        .query(
            "SELECT message, level, stream FROM logs WHERE request_id = {rid:String} "
            "ORDER BY timestamp, seq",
            {"rid": R2},
        )
        .rows
    )
    assert [r[0] for r in rows if r[2] == "function"][:2] == ["step 1 of o-2", "step 2 of o-2"]
    assert any(level == "ERROR" and "ValueError: declined" in msg for msg, level, _ in rows)
    assert rows[0][0].startswith(f"START RequestId: {R2}")


def test_the_same_batch_twice_is_stored_once(store: Store) -> None:
    raw = load_event("text_batch_1")
    assert write(store, raw).duplicate is False
    assert write(store, raw).duplicate is True
    reader = store.reader()
    assert reader.query("SELECT count() FROM logs").scalar() == 12
    assert store._client.command("SELECT count() FROM batches") == 1
    assert (
        reader.query(
            "SELECT log_lines FROM invocations WHERE request_id = {r:String}", {"r": R1}
        ).scalar()
        == 2
    )


def normalize(raw: dict[str, Any]) -> NormalizedBatch:
    """A batch as the collector receives it: with its body, kept with its write intent."""
    body = json.dumps(raw).encode()
    return prepare_batch(body, None, 64 * 1024 * 1024)


def _rollup_invocations(store: Store) -> int:
    return int(store._client.command("SELECT sum(invocations) FROM invocation_minutes"))


def _dies_at(store: Store, monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    """The collector dies as it starts writing ``table``: what came before it is committed."""
    real = store._put

    def put(name: str, *args: Any, **kwargs: Any) -> None:
        if name == table:
            raise OSError("killed")
        real(name, *args, **kwargs)

    monkeypatch.setattr(store, "_put", put)


@pytest.mark.parametrize("dies_at", ["invocation_parts", "cold_start_parts", "logs", "batches"])
def test_a_retry_after_a_partial_write_does_not_store_rows_twice(
    store: Store, monkeypatch: pytest.MonkeyPatch, dies_at: str
) -> None:
    batch = normalize(load_event("text_batch_1"))  # it has rows in every table
    _dies_at(store, monkeypatch, dies_at)
    with pytest.raises(StoreError, match="retry completes the write"):
        store.write(batch)
    monkeypatch.undo()
    # Its ledger row is written first: a retry finds it and completes the write from the kept
    # body (a death before the ledger row stored nothing, and the retry stores it all).
    assert store.write(batch).duplicate is (dies_at != "batches")
    assert store.write(batch).duplicate is True
    # Another collector process (or this one restarted) completes it only once too.
    again = Store(store._client, url=store.url, database=store.database)
    assert again.write(batch).duplicate is True
    reader = store.reader()
    assert reader.query("SELECT count() FROM logs").scalar() == batch.log_count
    # Parts merge by key (a repeated part would not show here); the rollups and the log
    # lines would count a repeat.
    assert reader.query("SELECT count() FROM invocations").scalar() == batch.invocation_count
    assert reader.query("SELECT count() FROM cold_starts").scalar() == 1
    reported = reader.query("SELECT countIf(has_report) FROM invocations").scalar()
    assert _rollup_invocations(store) == reported
    assert store._client.command("SELECT count() FROM batches") == 1


def test_a_group_cut_short_is_completed_once_by_retries_in_other_groups(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector dies after a group's rows were committed but before it answered: each
    sender retries its batch, now grouped differently. Every row is stored once, rollups too."""
    first, second, third = (
        normalize(load_event(n)) for n in ("text_batch_1", "timeout", "json_logs")
    )
    _dies_at(store, monkeypatch, "logs")  # the ledger and invocation rows went in, not the logs
    with pytest.raises(StoreError, match="no row is ever stored twice"):
        store.write_many([first, second])
    monkeypatch.undo()
    logs_once = first.log_count + second.log_count + third.log_count
    # Retried in other groups: one with a batch never seen before, the other alone.
    assert [r.duplicate for r in store.write_many([second, third])] == [True, False]
    assert [r.duplicate for r in store.write_many([first])] == [True]
    assert [r.duplicate for r in store.write_many([first, second, third])] == [True] * 3
    reader = store.reader()
    assert reader.query("SELECT count() FROM logs").scalar() == logs_once
    assert store._client.command("SELECT count() FROM batches") == 3
    reported = reader.query("SELECT countIf(has_report) FROM invocations").scalar()
    assert _rollup_invocations(store) == reported


def test_report_before_start_still_merges_into_one_row(store: Store) -> None:
    write(store, batch_of([report(R1, "2026-11-24T07:00:01.000Z", "success", 250.0)], "b-report"))
    early = invocations(store)[R1]
    # Until platform.start arrives, start is estimated as report time minus duration.
    assert early["start_time"] == utc("2026-11-24T07:00:00.750")
    assert (early["status"], early["has_start"], early["has_report"]) == ("success", 0, 1)

    write(store, batch_of([start(R1, "2026-11-24T07:00:00.700Z")], "b-start"))
    merged = invocations(store)[R1]
    assert merged["start_time"] == utc("2026-11-24T07:00:00.700")
    assert merged["end_time"] == utc("2026-11-24T07:00:00.950")
    assert (merged["status"], merged["has_start"], merged["has_report"]) == ("success", 1, 1)
    assert store.reader().query("SELECT count() FROM invocations").scalar() == 1


def test_report_status_is_authoritative_over_runtime_done(store: Store) -> None:
    events = [
        start(R1, "2026-11-24T07:00:00.000Z"),
        runtime_done(R1, "2026-11-24T07:00:00.100Z", "success", metrics={"durationMs": 99.0}),
    ]
    write(store, batch_of(events, "b-1"))
    assert invocations(store)[R1]["status"] == "success"
    assert invocations(store)[R1]["duration_ms"] == 99.0
    oom = report(R1, "2026-11-24T07:00:00.300Z", "error", 101.5, errorType="Runtime.OutOfMemory")
    write(store, batch_of([oom], "b-2"))
    row = invocations(store)[R1]
    assert (row["status"], row["error_type"], row["duration_ms"]) == (
        "error",
        "Runtime.OutOfMemory",
        101.5,
    )


def test_status_is_unknown_until_runtime_done_or_report(store: Store) -> None:
    write(store, batch_of([start(R1, "2026-11-24T07:00:00.000Z")], "b-1"))
    row = invocations(store)[R1]
    assert (row["status"], row["duration_ms"], row["end_time"]) == ("unknown", None, None)
    assert (row["has_start"], row["has_runtime_done"], row["has_report"]) == (1, 0, 0)


def test_timeout_with_report_but_no_runtime_done(store: Store) -> None:
    write(store, load_event("timeout"))
    row = invocations(store)[TIMEOUT_RID]
    assert (row["status"], row["duration_ms"], row["timeout_ms"]) == ("timeout", 1000.0, 1000.0)
    assert (row["has_runtime_done"], row["has_report"]) == (0, 1)


def test_timeout_known_only_from_the_log_line(store: Store) -> None:
    raw = load_event("timeout")
    raw["telemetry"] = raw["telemetry"][:3]  # the report was lost with the environment
    write(store, raw)
    row = invocations(store)[TIMEOUT_RID]
    assert (row["status"], row["has_report"], row["has_runtime_done"]) == ("timeout", 0, 0)


def test_out_of_order_batches_give_the_same_row(store: Store) -> None:
    events = [
        [
            report(
                R1,
                "2026-11-24T07:00:00.500Z",
                "success",
                80.0,
            )
        ],
        [runtime_done(R1, "2026-11-24T07:00:00.300Z", "success", metrics={"durationMs": 79.0})],
        [start(R1, "2026-11-24T07:00:00.220Z")],
    ]
    for index, batch_events in enumerate(events):
        write(store, batch_of(batch_events, f"b-{index}"))
    row = invocations(store)[R1]
    assert (row["start_time"], row["duration_ms"], row["status"]) == (
        utc("2026-11-24T07:00:00.220"),
        80.0,
        "success",
    )
    assert (row["has_start"], row["has_runtime_done"], row["has_report"]) == (1, 1, 1)


def test_cold_starts_view_has_one_row_per_initialisation(store: Store) -> None:
    write(store, load_event("text_batch_1"))
    rows = store.reader().query("SELECT * FROM cold_starts").dicts()
    assert len(rows) == 1
    assert rows[0]["initialization_type"] == "on-demand"
    assert (rows[0]["status"], rows[0]["init_duration_ms"], rows[0]["phase"]) == (
        "success",
        202.4,
        "init",
    )
    assert rows[0]["start_time"] == utc("2026-11-24T07:00:00")


def test_per_minute_rollups_count_reported_invocations(store: Store) -> None:
    write(store, load_event("text_batch_1"))
    write(store, load_event("text_batch_2"))
    write(store, load_event("timeout"))
    rows = (
        store.reader()
        .query(
            "SELECT function_name, minute, sum(invocations), sum(errors), sum(timeouts),"
            " sum(cold_starts), max(max_duration_ms),"
            " quantilesMerge(0.5, 0.9, 0.99)(duration_ms_quantiles)"
            " FROM invocation_minutes GROUP BY function_name, minute ORDER BY function_name"
        )
        .rows
    )
    assert [r[:7] for r in rows] == [
        ("checkout", utc("2026-11-24T07:00:00"), 2, 1, 0, 1, 131.0),
        ("exporter", utc("2026-11-24T07:20:00"), 1, 0, 1, 0, 1000.0),
    ]
    assert rows[1][7] == [1000.0, 1000.0, 1000.0]


def test_rollups_count_events_by_their_flags_whether_merged_in_one_part_or_not(
    store: Store,
) -> None:
    # One request's start, runtimeDone and report merged into one part; another's in three
    # parts (the report in a later batch); a third whose report never came.
    columns = (
        "function_name, request_id, event_date, start_time, runtime_done_time, report_time, "
        "runtime_done_status, runtime_done_duration_ms, report_status, report_duration_ms, "
        "report_billed_duration_ms, report_memory_size_mb, report_max_memory_used_mb, "
        "timeout_ms, has_start, has_runtime_done, has_report"
    )
    day = "'2026-11-24'"
    t = "'2026-11-24 07:00:{:02d}.000'"
    rows = [
        f"('f', 'merged', {day}, {t.format(1)}, {t.format(2)}, {t.format(2)}, 'error', 1000, "
        "'error', 1000, 1000, 128, 64, 3000, 1, 1, 1)",
        f"('f', 'split', {day}, {t.format(3)}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "NULL, 3000, 1, 0, 0)",
        f"('f', 'split', {day}, NULL, {t.format(5)}, NULL, 'error', 2000, NULL, NULL, NULL, "
        "NULL, NULL, NULL, 0, 1, 0)",
        f"('f', 'split', {day}, NULL, NULL, {t.format(5)}, NULL, NULL, 'error', 2000, 2000, "
        "128, 96, NULL, 0, 0, 1)",
        f"('f', 'lost', {day}, {t.format(7)}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "NULL, 3000, 1, 0, 0)",
    ]
    for row in rows:  # one insert per part, as separate batches would write them
        store._client.command(f"INSERT INTO invocation_parts ({columns}) VALUES {row}")
    got = (
        store.reader()
        .query(
            "SELECT sum(invocations), sum(started), sum(errors), sum(unreported_errors), "
            "max(max_memory_used_pct), min(min_timeout_ms), sum(billed_gb_seconds), "
            "max(max_unreported_duration_ms) FROM invocation_minutes"
        )
        .rows[0]
    )
    # 2 reported of 3 started: one unreported. The split request's runtimeDone part counts
    # as an unreported error until its report part is seen: an upper bound, as documented.
    assert got == (2, 3, 2, 1, 75.0, 3000.0, (1000 + 2000) / 1000 * 128 / 1024, 2000.0)


def test_reader_refuses_writes(store: Store) -> None:
    with pytest.raises(QueryError, match="readonly"):
        store.reader().query("INSERT INTO logs (message) VALUES ('x')")
    with pytest.raises(QueryError):
        store.reader().query("DROP TABLE logs")
    assert store.reader().query("SELECT count() FROM logs").scalar() == 0


def test_reopening_is_idempotent_and_keeps_data(store: Store, chdb_url: str) -> None:
    write(store, load_event("timeout"))
    again = Store.open(chdb_url, store.database, retention_days=7)
    try:
        assert again.reader().query("SELECT count() FROM invocations").scalar() == 1
        assert again.reader().query("SELECT max(version) FROM schema_migrations").scalar() == (
            schema.CURRENT_VERSION
        )
        assert again.reader().query("SELECT count() FROM schema_migrations").scalar() == (
            schema.CURRENT_VERSION
        )
        ddl = again._client.command("SHOW CREATE TABLE logs")
        assert "toIntervalDay(7)" in ddl
    finally:
        again.close()


def test_a_newer_schema_than_the_code_knows_is_refused(store: Store, chdb_url: str) -> None:
    store._client.insert(
        "schema_migrations",
        [[schema.CURRENT_VERSION + 1, "from the future"]],
        column_names=["version", "description"],
    )
    with pytest.raises(schema.SchemaError, match="upgrade lambdascope"):
        Store.open(chdb_url, store.database)


def test_ping(store: Store) -> None:
    assert store.ping() is True


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgres://localhost/x", "unsupported store URL"),
        ("chdb://relative/path", "relative path"),
        ("chdb:///etc/hostname/store", "cannot create the embedded store directory"),
    ],
)
def test_bad_store_urls_are_refused_with_the_fix(url: str, fragment: str) -> None:
    with pytest.raises(StoreError, match=fragment):
        resolve_url(url)


def test_default_chdb_url_means_the_home_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    dsn, _ = resolve_url("chdb://")
    assert dsn == f"chdb://{tmp_path / '.lambdascope' / 'store'}"
    assert (tmp_path / ".lambdascope" / "store").is_dir()


def test_unreachable_server_names_the_url_without_its_password() -> None:
    with pytest.raises(StoreError) as caught:
        Store.open("http://reader:hunter2@127.0.0.1:1", "lambdascope")
    message = str(caught.value)
    assert "http://reader:***@127.0.0.1:1" in message
    assert "hunter2" not in message
    assert "Check that it runs" in message


def test_invalid_database_name_is_refused(chdb_url: str) -> None:
    with pytest.raises(StoreError, match="invalid database name"):
        Store.open(chdb_url, "x`; DROP DATABASE y")


def test_second_embedded_path_in_one_process_is_explained(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="one data path per process"):
        Store.open(f"chdb://{tmp_path}", "other")


def test_server_urls_name_the_database_in_their_path() -> None:
    assert database_in_url("https://u:p@ch.example:8443/observability") == "observability"
    assert database_in_url("http://127.0.0.1:8123") is None
    assert database_in_url("chdb:///var/store") is None
    dsn, extra = resolve_url("https://u:p@ch.example:8443/observability")
    assert dsn == "https://u:p@ch.example:8443"
    assert extra["autogenerate_session_id"] is False


def test_redact_url() -> None:
    assert redact_url("https://u:p@h:8443/db") == "https://u:***@h:8443/db"
    assert redact_url("chdb:///x") == "chdb:///x"


def test_a_kept_body_that_cannot_be_read_again_does_not_hold_its_retries_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = normalize(load_event("text_batch_1"))
    _dies_at(store, monkeypatch, "logs")
    with pytest.raises(StoreError):
        store.write(batch)
    monkeypatch.undo()

    def unreadable(*args: Any) -> Any:
        raise HttpError(400, "body is not valid JSON")

    monkeypatch.setattr("lambdascope.collector.store.prepare_batch", unreadable)
    assert store.write(batch).duplicate is True  # answered; what was committed stays
    assert store.reader().query("SELECT count() FROM logs").scalar() == 0
