"""Detectors screen with the per-minute rollups and read raw rows only for flagged functions;
the fleet table comes from the rollups alone, unreported invocations included."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambdascope.analyzers import DETECTORS, cost, cost_sql, run_detectors
from lambdascope.analyzers.coldstarts import could_start_cold
from lambdascope.analyzers.cost import CostBounds, cost_candidates
from lambdascope.analyzers.errors import could_fail
from lambdascope.analyzers.fleet import fleet_summary
from lambdascope.analyzers.rollups import RecordingClient, VersionScreen, rate_max, screen
from lambdascope.analyzers.timeouts import could_time_out
from lambdascope.analyzers.window import Window
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.otlp import parse_traces
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW

HOUR = timedelta(hours=1)
#: Detectors that need raw rows whatever the rollups say (see their SQL modules' docstrings).
RAW_BY_NATURE = {"memory_leak"}


def reads_of(store, name: str, function_name: str | None = None) -> tuple[list, set[str]]:
    client = RecordingClient(store.reader)
    findings = run_detectors(
        client,
        since=HOUR,
        now=NOW,
        function_name=function_name,
        detectors={name: DETECTORS[name]},
    )
    return findings, client.reads.functions


def test_a_healthy_fleet_is_answered_from_the_rollups_without_raw_rows(store):
    store.write(fleetdata.healthy_fleet())

    for name in DETECTORS:
        findings, raw = reads_of(store, name)
        assert findings == []
        if name not in RAW_BY_NATURE:
            assert raw == set(), name


def test_raw_rows_are_read_only_for_the_function_the_rollups_flag(store):
    store.write(fleetdata.timeout_fleet())

    findings, raw = reads_of(store, "timeouts")

    assert [(f.kind, f.function_name) for f in findings] == [("timeout", "checkout")]
    assert raw == {"checkout"}
    _, raw = reads_of(store, "errors")
    assert raw == set()  # timeouts are not failures: errors stays on the rollups


@pytest.mark.parametrize(
    ("scenario", "detector", "flagged"),
    [
        (fleetdata.error_fleet, "errors", {"checkout"}),
        (fleetdata.oom_fleet, "memory", {"report_export"}),
        (fleetdata.high_memory_fleet, "memory", {"thumbnailer"}),
        (fleetdata.cold_start_fleet, "cold_starts", {"search"}),
        (fleetdata.cost_fleet, "cost", {"video_encode"}),
        (fleetdata.version_fleet, "version_regression", {"pricing"}),
    ],
)
def test_each_screen_flags_the_unhealthy_function_and_no_other(store, scenario, detector, flagged):
    store.write(scenario())

    findings, raw = reads_of(store, detector)

    assert findings
    assert raw == flagged


def test_the_screen_bounds_the_window_from_the_rollups(store):
    store.write(fleetdata.timeout_fleet())

    rows = {r.function_name: r for r in screen(store.reader, Window.ending(NOW, HOUR))}

    checkout = rows["checkout"]
    assert (checkout.started, checkout.reported, checkout.invocations_min) == (40, 40, 40)
    # An upper bound: a timeout whose report came in a later part than its runtimeDone
    # counts twice.
    assert 3 <= checkout.timeouts_max <= 6
    assert checkout.min_timeout_ms == 3000.0
    assert checkout.max_duration_ms == 3000.0
    assert rows["thumbnailer"].max_memory_used_pct == pytest.approx(250 * 100 / 512)
    assert could_time_out(checkout) and not could_time_out(rows["thumbnailer"])
    # Outside the window, nothing is there to screen.
    assert screen(store.reader, Window.ending(NOW - timedelta(hours=3), HOUR)) == []


def _row(**changes: object) -> VersionScreen:
    fields: dict[str, object] = {
        "function_name": "checkout",
        "function_version": "$LATEST",
        "reported": 1000,
        "started": 1000,
        "invocations_min": 950,
        "errors_max": 0,
        "timeouts_max": 0,
        "cold_starts_max": 0,
        "oom_errors": 0,
        "max_memory_used_pct": 40.0,
        "max_duration_ms": 200.0,
        "min_timeout_ms": 3000.0,
        "max_timeout_ms": 3000.0,
        "max_init_duration_ms": None,
        "billed_gb_seconds": 1.0,
        "billed_seconds": 8.0,
        "max_memory_size_mb": 128,
    }
    fields.update(changes)
    return VersionScreen(**fields)  # type: ignore[arg-type]


def test_rate_bounds_never_fall_below_the_exact_rate():
    assert rate_max(0, 100) == 0.0
    assert rate_max(5, 100) == 0.05
    # Fewer invocations known for sure than failures counted: every one could have failed.
    assert rate_max(5, 2) == 1.0
    # 9 failures in >= 950 invocations is below 1%: nothing to read.
    assert not could_fail(_row(errors_max=9))
    assert could_fail(_row(errors_max=10))
    assert not could_fail(_row(errors_max=2, invocations_min=0))


def test_cold_start_and_timeout_screens_follow_the_detectors_thresholds():
    slow_inits = _row(cold_starts_max=20, max_init_duration_ms=900.0)
    assert could_start_cold(slow_inits)
    assert not could_start_cold(_row(cold_starts_max=20, max_init_duration_ms=450.0))
    assert not could_start_cold(_row(cold_starts_max=9, max_init_duration_ms=900.0))  # <= 1%
    assert could_time_out(_row(max_duration_ms=2400.0))  # 80% of 3 s: a p99 could be there
    assert not could_time_out(_row(max_duration_ms=2399.0))
    assert not could_time_out(_row(max_duration_ms=9000.0, min_timeout_ms=None))


def test_fleet_summary_agrees_with_the_raw_rows(store):
    store.write(fleetdata.oom_fleet())

    fleet = {r.function_name: r for r in fleet_summary(store.reader, since=HOUR, now=NOW)}
    raw = store.reader.query(
        """
        SELECT function_name, count() AS invocations,
            countIf(status IN ('error', 'failure')) AS errors,
            countIf(status = 'timeout') AS timeouts, countIf(cold_start = 1) AS cold_starts,
            max(max_memory_used_mb * 100.0 / memory_size_mb) AS max_memory_pct,
            max(start_time) AS last_seen
        FROM invocations GROUP BY function_name ORDER BY function_name
        """
    ).dicts()

    assert sorted(fleet) == [r["function_name"] for r in raw]
    for r in raw:
        row = fleet[r["function_name"]]
        assert (row.invocations, row.errors, row.timeouts, row.cold_starts) == (
            r["invocations"],
            r["errors"],
            r["timeouts"],
            r["cold_starts"],
        )
        assert row.max_memory_pct == pytest.approx(r["max_memory_pct"])
        assert row.last_seen == r["last_seen"]
        assert row.unreported == 0
    assert fleet["report_export"].max_memory_pct == 100.0


def test_fleet_summary_counts_invocations_whose_report_never_came(store):
    # Every environment's last report travels in its SHUTDOWN batch: lose those batches, as
    # when the sandbox is killed before the extension could send them.
    for batch in fleetdata.batches(fleetdata.healthy_fleet()):
        if not batch["telemetry"] or batch["invocations"]:
            store.store.write(normalize_batch(batch))

    fleet = {r.function_name: r for r in fleet_summary(store.reader, since=HOUR, now=NOW)}

    assert (fleet["checkout"].invocations, fleet["checkout"].unreported) == (40, 1)
    assert (fleet["thumbnailer"].invocations, fleet["thumbnailer"].unreported) == (30, 1)
    unreported = store.reader.query("SELECT count() FROM invocations WHERE has_report = 0")
    assert unreported.scalar() == 3


def test_api_gateway_check_reads_only_http_functions_configured_above_the_limit(store):
    scenario = fleetdata.http_fleet()
    store.write(scenario)
    # webhook is called over HTTP but stays under 29 s; orders has a 60 s timeout but no spans.
    for name in ("api", "webhook"):
        store.store.write_otlp(
            "otel_traces", parse_traces(fleetdata.http_spans(scenario, name)).rows
        )

    findings, raw = reads_of(store, "config_checks")

    assert [(f.kind, f.function_name) for f in findings] == [("api_gateway_timeout", "api")]
    assert raw == {"api"}


def _bounds(name: str, low: float, high: float, **changes: object) -> CostBounds:
    fields: dict[str, object] = {
        "function_name": name,
        "low_usd": low,
        "high_usd": high,
        "one_row": True,
        "arm64_saving_low_usd": 0.0,
        "arm64_saving_high_usd": 0.0,
        "rightsizing_saving_high_usd": 0.0,
        "memory_size_mb_low": 1024,
        "memory_size_mb_high": 1024,
        "gb_second_low": 0.0000166667,
        "gb_second_high": 0.0000166667,
        "request_low": 0.2e-6,
        "request_high": 0.2e-6,
    }
    fields.update(changes)
    return CostBounds(**fields)  # type: ignore[arg-type]


def test_cost_screen_reads_only_functions_that_could_rank_save_or_spike():
    window = Window.ending(NOW, HOUR)
    bounds = [
        _bounds("a", 0.95, 1.0),
        _bounds("b", 0.90, 0.96),
        _bounds("c", 0.80, 0.85),
        _bounds("d", 0.10, 0.82),  # could still beat c: read
        _bounds("e", 0.10, 0.79),  # three functions certainly cost more: not read
        _bounds("f", 0.001, 0.002),  # under every floor
        _bounds("g", 0.001, 0.002, rightsizing_saving_high_usd=0.01),  # $7.30 a month
    ]
    assert cost_candidates(bounds, [], window) == ["a", "b", "c", "d", "g"]
    # e's last day could be twice the day before: read for the spike check.
    day = {
        "function_name": "e",
        "today_billed_ms": 300_000_000.0,
        "today_invocations": 10,
        "yesterday_billed_ms": 100_000_000.0,
        "yesterday_invocations": 10,
    }
    assert "e" in cost_candidates(bounds, [day], window)
    assert "e" not in cost_candidates(bounds, [{**day, "yesterday_billed_ms": 2e8}], window)


def test_cost_screen_finds_what_reading_every_function_finds(store):
    store.write(fleetdata.cost_fleet() + fleetdata.version_fleet())
    window = Window.ending(NOW, HOUR)
    everything = cost.cost_rows(
        store.reader.query(cost_sql.COST, {**window.parameters(), "function_names": []}).dicts(),
        window,
        cost.PRICES,
    )
    unscreened = cost.cost_findings(everything, window)

    screened, raw = reads_of(store, "cost")

    assert raw == {"video_encode"}
    same = [f for f in screened if f.kind != "cost_spike"]
    assert sorted((f.kind, f.function_name, f.summary) for f in same) == sorted(
        (f.kind, f.function_name, f.summary) for f in unscreened
    )


def test_a_timeout_known_only_from_its_late_log_line_is_not_screened_out(store):
    # A 15-minute function starts 3 minutes before the window ends; the sandbox dies at the
    # deadline and only Lambda's "Task timed out" line arrives, 12 minutes after the window.
    t0 = NOW - timedelta(minutes=3)
    end = t0 + timedelta(seconds=900)
    environment = {
        "environment_id": fleetdata.environment_id("ingest", "1"),
        "function_name": "ingest",
        "function_version": "$LATEST",
        "region": "us-east-1",
        "memory_size_mb": 1024,
        "initialization_type": "on-demand",
        "architecture": "x86_64",
    }
    invoke = {
        "request_id": "ingest-0001",
        "deadline_ms": int(end.timestamp() * 1000),
        "received_at_ms": int(t0.timestamp() * 1000),
        "invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:ingest",
        "trace_id": None,
    }
    started = {
        "time": fleetdata._iso(t0),
        "type": "platform.start",
        "record": {"requestId": "ingest-0001"},
    }
    line = {
        "time": fleetdata._iso(end),
        "type": "function",
        "record": f"{fleetdata._iso(end)} ingest-0001 Task timed out after 900.00 seconds\n",
    }
    for key, sent, telemetry, invocations, open_id in (
        ("a", t0 + timedelta(seconds=1), [started], [invoke], None),
        ("b", end + timedelta(seconds=1), [line], [], "ingest-0001"),
    ):
        batch = fleetdata._batch(f"ingest/{key}", sent, environment, telemetry, invocations)
        batch["open_request_id"] = open_id
        store.store.write(normalize_batch(batch))

    findings, raw = reads_of(store, "timeouts")

    assert [(f.kind, f.function_name, f.evidence_request_ids) for f in findings] == [
        ("timeout", "ingest", ("ingest-0001",))
    ]
    assert raw == {"ingest"}
