"""The one rollup view (schema 15) writes what the three views it replaced wrote: the same
parts inserted into a store of schema 14 and into a new one read the same from every column
of ``invocation_minutes``, and a store upgraded in between keeps counting each part once."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import random
from collections.abc import Iterator
from typing import Any

from lambdascope.collector.store import Store
from tests.collector.test_time_reads import store_at_version

#: The schema that kept invocation_minutes with three views.
THREE_VIEWS = 14
#: Long enough to keep the minute of a report without its time (1970), which the views must
#: not write, and the test's own day whenever it runs.
RETENTION_DAYS = 36_500

COLUMNS = (
    "function_name", "request_id", "event_date", "function_version", "environment_id", "region",
    "architecture", "env_memory_size_mb", "start_time", "runtime_done_time", "report_time",
    "received_at", "deadline", "timeout_ms", "runtime_done_status", "runtime_done_error_type",
    "runtime_done_duration_ms", "report_status", "report_error_type", "report_duration_ms",
    "report_billed_duration_ms", "report_memory_size_mb", "report_max_memory_used_mb",
    "report_init_duration_ms", "timed_out_log", "has_start", "has_runtime_done", "has_report",
    "last_sent_at",
)  # fmt: skip

#: Every column of invocation_minutes, merged as its readers merge it.
MERGED = """
SELECT function_name, function_version, minute,
    sum(invocations), sum(errors), sum(timeouts), sum(cold_starts),
    sum(duration_ms_sum), sum(billed_duration_ms_sum), max(max_duration_ms),
    max(max_memory_used_mb),
    quantilesMerge(0.5, 0.9, 0.99)(duration_ms_quantiles),
    quantilesMerge(0.5, 0.9, 0.99)(init_duration_ms_quantiles),
    sum(started), sum(unreported_errors), sum(unreported_timeouts), sum(oom_errors),
    max(max_memory_used_pct), max(max_memory_size_mb), min(min_timeout_ms), max(max_timeout_ms),
    max(max_unreported_duration_ms), max(max_init_duration_ms), sum(billed_gb_seconds),
    max(last_start_time), arraySort(groupUniqArrayArray(architectures)),
    arraySort(groupUniqArrayArray(regions)),
    quantilesMerge(0.5, 0.95)(memory_used_pct_quantiles)
FROM invocation_minutes
GROUP BY function_name, function_version, minute
ORDER BY function_name, function_version, minute
"""

VIEWS = (
    "SELECT name FROM system.tables WHERE database = currentDatabase() "
    "AND engine = 'MaterializedView' AND name LIKE 'invocation_minutes%' ORDER BY name"
)

DAY = dt.date(2026, 11, 24)


def at(minute: int, second: float) -> dt.datetime:
    return dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC) + dt.timedelta(
        minutes=minute, seconds=second
    )


def part(request_id: str, **fields: Any) -> list[Any]:
    row: dict[str, Any] = {
        "function_name": "fn",
        "function_version": "$LATEST",
        "environment_id": "env",
        "region": "eu-west-1",
        "architecture": "",
        "timed_out_log": 0,
        "has_start": 0,
        "has_runtime_done": 0,
        "has_report": 0,
    }
    row.update(fields, request_id=request_id, event_date=DAY)
    return [row.get(name) for name in COLUMNS]


def edge_cases() -> list[list[Any]]:
    """One part of each shape the views tell apart."""
    report = {"has_report": 1, "report_status": "success", "report_memory_size_mb": 128}
    return [
        part("start-only", start_time=at(0, 1), has_start=1, env_memory_size_mb=256,
             timeout_ms=3000.0, received_at=at(0, 1.5)),
        part("report-only", report_time=at(0, 30), report_duration_ms=1200.4,
             report_billed_duration_ms=1201.0, report_max_memory_used_mb=64, **report),
        part("cold", report_time=at(1, 10), report_duration_ms=20.0,
             report_init_duration_ms=350.5, report_max_memory_used_mb=100, **report),
        part("error", report_time=at(1, 20), report_duration_ms=5.0,
             **{**report, "report_status": "error"}),
        part("failure", report_time=at(1, 21), report_duration_ms=6.0,
             **{**report, "report_status": "failure"}),
        part("timeout", report_time=at(2, 3), report_duration_ms=3000.0,
             **{**report, "report_status": "timeout"}),
        part("oom-report", report_time=at(2, 5), report_duration_ms=50.0,
             report_max_memory_used_mb=128, report_error_type="Runtime.OutOfMemory",
             **{**report, "report_status": "error"}),
        part("oom-done", runtime_done_time=at(2, 6), runtime_done_duration_ms=40.0,
             runtime_done_status="error", runtime_done_error_type="Runtime.OutOfMemory",
             has_runtime_done=1),
        part("done-error", runtime_done_time=at(3, 0.2), runtime_done_duration_ms=500.7,
             runtime_done_status="failure", has_runtime_done=1),
        part("done-timeout", runtime_done_time=at(3, 4), runtime_done_duration_ms=900.0,
             runtime_done_status="timeout", has_runtime_done=1),
        part("timed-out-log", timed_out_log=1, received_at=at(3, 9)),
        part("last-sent", last_sent_at=at(4, 0)),
        part("day-only"),
        # A report whose time never came: the events rollup only.
        part("report-no-time", report_duration_ms=10.0, report_max_memory_used_mb=10, **report),
        # Start and report merged into one part, their minutes apart: the report's minute has
        # no events row of its own.
        part("merged", function_name="merged", start_time=at(4, 59.9), report_time=at(5, 5),
             report_duration_ms=100.0, has_start=1, report_max_memory_used_mb=90,
             report_billed_duration_ms=100.0, timeout_ms=900.0, report_init_duration_ms=120.0,
             **report),
        part("no-memory-size", report_time=at(5, 30), report_duration_ms=1.0,
             report_max_memory_used_mb=20, has_report=1, report_status="success"),
        part("env-memory-size", report_time=at(5, 31), report_duration_ms=2.0,
             env_memory_size_mb=512, report_max_memory_used_mb=20, has_report=1,
             report_status="success", architecture="arm64", region="us-east-1"),
        part("zero-memory-size", report_time=at(5, 32), report_duration_ms=2.0,
             report_memory_size_mb=0, report_max_memory_used_mb=20, has_report=1),
        part("no-duration", report_time=at(6, 0), has_report=1, report_memory_size_mb=128),
        part("negative-duration", function_version="negative", report_time=at(6, 10),
             report_duration_ms=-5.0, report_max_memory_used_mb=1, **report),
        part("other-function", function_name="other", function_version="7",
             start_time=at(0, 2), report_time=at(0, 3), report_duration_ms=700.0,
             has_start=1, **report),
    ]  # fmt: skip


def varied_parts(seed: int, count: int) -> list[list[Any]]:
    """Parts of every combination of events, over several functions, versions and minutes."""
    rng = random.Random(seed)

    def maybe(value: Any, chance: float = 0.7) -> Any:
        return value if rng.random() < chance else None

    rows = []
    for index in range(count):
        start = at(rng.randrange(0, 6), rng.uniform(0, 59.999))
        duration = round(rng.uniform(0.1, 5000.0), 3)
        has_start = rng.random() < 0.6
        has_done = rng.random() < 0.5
        has_report = rng.random() < 0.6
        fields: dict[str, Any] = {
            "function_name": rng.choice(["api", "worker", "cron"]),
            "function_version": rng.choice(["$LATEST", "1", "2"]),
            "environment_id": f"env-{rng.randrange(4)}",
            "region": rng.choice(["eu-west-1", "us-east-1", ""]),
            "architecture": rng.choice(["", "x86_64", "arm64"]),
            "env_memory_size_mb": maybe(rng.choice([128, 256, 1024])),
            "timeout_ms": maybe(rng.choice([3000.0, 30000.0, 900000.0])),
            "received_at": maybe(start + dt.timedelta(seconds=rng.uniform(0, 90))),
            "last_sent_at": maybe(start + dt.timedelta(seconds=rng.uniform(0, 90))),
            "timed_out_log": int(rng.random() < 0.1),
            "has_start": int(has_start),
            "has_runtime_done": int(has_done),
            "has_report": int(has_report),
        }
        if has_start:
            fields["start_time"] = start
        if has_done:
            fields["runtime_done_time"] = start + dt.timedelta(milliseconds=duration)
            fields["runtime_done_duration_ms"] = maybe(duration, 0.9)
            fields["runtime_done_status"] = maybe(
                rng.choice(["success", "error", "failure", "timeout"]), 0.9
            )
            fields["runtime_done_error_type"] = maybe(
                rng.choice(["Runtime.OutOfMemory", "Runtime.ExitError"]), 0.2
            )
        if has_report:
            size = maybe(rng.choice([128, 512, 3008]), 0.85)
            fields.update(
                report_time=maybe(start + dt.timedelta(milliseconds=duration + 1), 0.95),
                report_status=maybe(rng.choice(["success", "error", "failure", "timeout"]), 0.9),
                report_error_type=maybe(rng.choice(["Runtime.OutOfMemory", "Handled"]), 0.2),
                report_duration_ms=maybe(duration, 0.95),
                report_billed_duration_ms=maybe(float(int(duration) + 1), 0.9),
                report_memory_size_mb=size,
                report_max_memory_used_mb=maybe(rng.randrange(20, size or 200), 0.9),
                report_init_duration_ms=maybe(round(rng.uniform(50, 2000), 2), 0.2),
            )
        rows.append(part(f"r{seed}-{index}", **fields))
    return rows


def blocks() -> list[list[list[Any]]]:
    """Inserts of different sizes, so minutes and functions recur across parts of the table."""
    return [edge_cases(), varied_parts(1, 400), varied_parts(2, 3), varied_parts(3, 150)]


def insert(client: Any, rows: list[list[Any]]) -> None:
    client.insert("invocation_parts", rows, column_names=list(COLUMNS))


def comparable(value: Any) -> Any:
    """NaN (the quantiles of a minute without values) compared as equal to itself."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list | tuple):
        return [comparable(item) for item in value]
    return value


def merged(client: Any) -> list[Any]:
    return [comparable(row) for row in client.query(MERGED).result_rows]


@contextlib.contextmanager
def new_store(chdb_url: str, database: str) -> Iterator[Store]:
    store = Store.open(chdb_url, database, retention_days=RETENTION_DAYS)
    try:
        yield store
    finally:
        try:
            store._client.command(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            store.close()


def test_the_rollup_view_writes_what_the_three_views_wrote(chdb_url: str) -> None:
    pid = os.getpid()
    with (
        store_at_version(
            chdb_url, f"t_collector_three_views_{pid}", THREE_VIEWS, RETENTION_DAYS
        ) as old,
        new_store(chdb_url, f"t_collector_one_view_{pid}") as store,
    ):
        assert [r[0] for r in old.query(VIEWS).result_rows] == [
            "invocation_minutes_events_mv",
            "invocation_minutes_memory_mv",
            "invocation_minutes_mv",
        ]
        assert [r[0] for r in store._client.query(VIEWS).result_rows] == [
            "invocation_minutes_rollup_mv"
        ]
        for rows in blocks():
            insert(old, rows)
            insert(store._client, rows)
        expected = merged(old)
        got = merged(store._client)
        assert len(expected) > 50
        assert got == expected
        # Merged by the engine as by the reads: the same again.
        old.command("OPTIMIZE TABLE invocation_minutes FINAL")
        store._client.command("OPTIMIZE TABLE invocation_minutes FINAL")
        assert merged(store._client) == merged(old) == expected


def test_an_upgraded_store_counts_each_part_once(chdb_url: str) -> None:
    """Parts written before the upgrade keep their rollups; parts after it go through the one
    view only."""
    pid = os.getpid()
    database = f"t_collector_upgrade14_{pid}"
    first, *rest = blocks()
    with (
        store_at_version(chdb_url, database, THREE_VIEWS, RETENTION_DAYS) as old,
        new_store(chdb_url, f"t_collector_fresh15_{pid}") as store,
    ):
        insert(old, first)
        upgraded = Store.open(chdb_url, database, retention_days=RETENTION_DAYS)
        try:
            assert [r[0] for r in upgraded._client.query(VIEWS).result_rows] == [
                "invocation_minutes_rollup_mv"
            ]
            for rows in rest:
                insert(upgraded._client, rows)
            for rows in (first, *rest):
                insert(store._client, rows)
            assert merged(upgraded._client) == merged(store._client)
        finally:
            upgraded.close()
