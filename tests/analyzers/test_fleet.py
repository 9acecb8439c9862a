from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from lambdascope.analyzers.cost import cost_table
from lambdascope.analyzers.fleet import (
    FunctionSummary,
    Invocation,
    LogLine,
    fleet_row,
    fleet_summary,
    trend_buckets,
    trends,
    with_platform_lines,
)
from lambdascope.analyzers.window import Window
from lambdascope.collector.firehose import parse_firehose_request
from lambdascope.collector.normalize import normalize_batch
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW

T0 = datetime(2026, 11, 24, 7, 0, 0, tzinfo=UTC)


def invocation(**changes: object) -> Invocation:
    fields: dict[str, object] = {
        "request_id": "rid-1",
        "function_name": "checkout",
        "function_version": "$LATEST",
        "environment_id": "env",
        "start_time": T0,
        "duration_ms": 1500.0,
        "billed_duration_ms": 1500.0,
        "status": "timeout",
        "error_type": "",
        "init_duration_ms": 210.5,
        "cold_start": True,
        "max_memory_used_mb": 90,
        "memory_size_mb": 128,
        "timeout_ms": 1500.0,
    }
    fields.update(changes)
    return Invocation(**fields)  # type: ignore[arg-type]


def test_platform_lines_are_rebuilt_when_the_store_has_none():
    line = LogLine(T0.replace(microsecond=5000), "function", "INFO", "working")

    lines = with_platform_lines(invocation(), [line])

    assert [entry.message for entry in lines] == [
        "START RequestId: rid-1 Version: $LATEST",
        "working",
        "END RequestId: rid-1",
        "REPORT RequestId: rid-1\tDuration: 1500.00 ms\tBilled Duration: 1500 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 90 MB\tInit Duration: 210.50 ms\tStatus: timeout",
    ]
    assert lines[-1].timestamp == datetime(2026, 11, 24, 7, 0, 1, 500000, tzinfo=UTC)


def test_stored_platform_lines_are_not_doubled():
    stored = [
        LogLine(T0, "platform", "", "START RequestId: rid-1 Version: $LATEST"),
        LogLine(T0, "platform", "", "END RequestId: rid-1"),
        LogLine(T0, "platform", "", "REPORT RequestId: rid-1\tDuration: 1500.00 ms\t"),
    ]

    assert with_platform_lines(invocation(), stored) == stored


def test_an_invocation_still_running_gets_only_its_start_line():
    lines = with_platform_lines(invocation(status="unknown", duration_ms=None), [])

    assert [entry.message for entry in lines] == ["START RequestId: rid-1 Version: $LATEST"]


def test_fleet_row_without_durations_or_memory_shows_not_measured():
    row = fleet_row(
        {
            "function_name": "checkout",
            "invocations": 2,
            "errors": 0,
            "timeouts": 0,
            "cold_starts": 0,
            "duration_quantiles_ms": [math.nan, math.nan],
            "max_memory_pct": None,
            "last_seen": T0,
        }
    )

    assert (row.p50_duration_ms, row.p99_duration_ms, row.max_memory_pct) == (None, None, None)


def test_trend_buckets_cover_the_windows_whole_minutes_in_at_most_20():
    assert trend_buckets(Window(T0, T0 + timedelta(hours=1))) == (180, 20)
    assert trend_buckets(Window(T0, T0 + timedelta(minutes=15))) == (60, 15)
    assert trend_buckets(Window(T0, T0 + timedelta(minutes=25))) == (120, 13)
    # A window ending mid-minute counts that minute too, as the rollup read does.
    assert trend_buckets(Window(T0, T0 + timedelta(minutes=14, seconds=20))) == (60, 15)


def test_trends_place_each_buckets_p99_and_leave_unmeasured_buckets_empty():
    rows = [
        {"function_name": "checkout", "bucket": 0, "p99_duration_ms": 120.0},
        {"function_name": "checkout", "bucket": 2, "p99_duration_ms": math.nan},
        {"function_name": "checkout", "bucket": 3, "p99_duration_ms": 300.0},
        {"function_name": "thumbnailer", "bucket": 1, "p99_duration_ms": 80.0},
    ]

    assert trends(rows, 4) == {
        "checkout": (120.0, None, None, 300.0),
        "thumbnailer": (None, 80.0, None, None),
    }


def test_fleet_summary_adds_each_functions_p99_trend_and_its_estimated_cost(store):
    store.write(fleetdata.timeout_fleet())
    window = Window(NOW - timedelta(hours=1), NOW)

    rows = {
        r.function_name: r
        for r in fleet_summary(store.reader, since=window.end - window.start, now=NOW)
    }

    checkout = rows["checkout"]
    assert len(checkout.p99_trend) == 20  # 3-minute buckets
    # checkout runs every 30 s for 20 minutes from 30 minutes before the hour.
    assert checkout.p99_trend[:10] == (None,) * 10
    assert checkout.p99_trend[17:] == (None,) * 3
    assert all(p is not None for p in checkout.p99_trend[10:17])
    # The buckets with a 3 s timeout in them (the quantile is interpolated).
    assert max(p or 0 for p in checkout.p99_trend) > 2500
    # The rollups price what the raw rows price (no partial minute in this window).
    exact = {c.function_name: c.total_cost_usd for c in cost_table(store.reader, window)}
    for name, row in rows.items():
        assert row.cost_usd == pytest.approx(exact[name], rel=1e-6), name


def summaries(store, since: timedelta) -> dict[str, FunctionSummary]:
    return {r.function_name: r for r in fleet_summary(store.reader, since=since, now=NOW)}


def test_fleet_summary_reads_each_functions_on_demand_init_p95(store):
    # thumbnailer's environment is provisioned: its init is done before any request waits.
    for batch in fleetdata.batches(fleetdata.cold_start_fleet()):
        if batch["environment"]["function_name"] == "thumbnailer":
            batch["environment"]["initialization_type"] = "provisioned-concurrency"
            for event in batch["telemetry"]:
                if "initializationType" in event["record"]:
                    event["record"]["initializationType"] = "provisioned-concurrency"
        store.store.write(normalize_batch(batch))

    rows = summaries(store, timedelta(hours=1))

    # search's 8 environments started with inits of 1,400 to 1,890 ms, 70 ms apart.
    search = rows["search"]
    assert search.init_p95_ms is not None and 1820 < search.init_p95_ms < 1890
    assert search.max_init_ms == pytest.approx(1890.0)
    assert rows["checkout"].init_p95_ms == pytest.approx(180.0)
    assert rows["thumbnailer"].init_p95_ms is None
    assert rows["thumbnailer"].max_init_ms is not None  # the rollups still count it
    # 25 minutes back, checkout's only cold start (30 minutes ago) is outside the window.
    assert summaries(store, timedelta(minutes=25))["checkout"].init_p95_ms is None


def test_fleet_summary_sums_throttles_from_the_metric_stream_and_unknown_is_not_zero(store):
    store.write(fleetdata.healthy_fleet())
    start = NOW - timedelta(minutes=30)
    records = fleetdata.function_minutes(
        "checkout", start, 10, invocations=4, concurrency=2, throttles=3
    ) + fleetdata.function_minutes("thumbnailer", start, 10, invocations=3, concurrency=1)
    delivery = parse_firehose_request("d-1", fleetdata.firehose_body(records, "d-1"))
    store.store.write_metrics(delivery.request_id, delivery.points)

    rows = summaries(store, timedelta(hours=1))

    # 3 a minute for 10 minutes, counted once although CloudWatch publishes two dimension sets.
    assert rows["checkout"].throttles == 30
    assert rows["thumbnailer"].throttles == 0  # streamed, never throttled
    assert rows["report_export"].throttles is None  # no metric stream: unknown
    # A window without any of the stream's points knows nothing either.
    assert summaries(store, timedelta(minutes=15))["checkout"].throttles is None


def test_fleet_summary_shows_the_memory_headroom_p95_and_peak(store):
    scenario = fleetdata.healthy_fleet()
    thumbnails = [i for i in scenario.invocations if i.function_name == "thumbnailer"]
    for n, inv in enumerate(thumbnails):
        inv.max_memory_used_mb = 420 if n == 0 else 410  # 80% of 512 MB, one peak at 82%
    store.write(scenario)

    row = summaries(store, timedelta(hours=1))["thumbnailer"]

    assert row.memory_pct_p95 == pytest.approx(410 * 100 / 512, abs=1.0)
    assert row.max_memory_pct == pytest.approx(420 * 100 / 512)
