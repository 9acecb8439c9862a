from __future__ import annotations

import json
from datetime import timedelta

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.fleet import finding_invocations, fleet_summary, request_log_view
from lambdascope.analyzers.timeouts import timeout_findings
from lambdascope.analyzers.window import Window
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, PAYMENTS_LINE, TIMED_OUT


def test_timeout_scenario_gives_exactly_one_timeout_finding_with_its_evidence(store):
    store.write(fleetdata.timeout_fleet())

    findings = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert [(f.kind, f.function_name) for f in findings] == [("timeout", "checkout")]
    finding = findings[0]
    assert finding.severity == "critical"  # 3 of 40 is 7.5%, above the 5% line
    assert finding.function_version == "$LATEST"
    assert finding.evidence_request_ids == TIMED_OUT
    assert finding.numbers["timeouts"] == 3
    assert finding.numbers["invocations"] == 40
    assert finding.numbers["timeout_ms"] == 3000.0
    assert finding.numbers["concentrated_on_cold_starts"] == 0.0
    assert finding.summary == "3 of 40 invocations of checkout timed out at its 3.0 s limit"
    assert (finding.window_start, finding.window_end) == (NOW - timedelta(hours=1), NOW)
    assert "{since:DateTime64(3, 'UTC')}" in finding.query
    assert "3.0 s" in finding.recommendation


def test_healthy_fleet_gives_no_finding_at_all(store):
    store.write(fleetdata.healthy_fleet())

    assert run_detectors(store.reader, since=timedelta(hours=1), now=NOW) == []


def test_timeouts_outside_the_window_or_of_another_function_are_not_reported(store):
    store.write(fleetdata.timeout_fleet())

    assert run_detectors(store.reader, since=timedelta(hours=1), now=NOW - timedelta(hours=2)) == []
    only = run_detectors(
        store.reader, since=timedelta(hours=1), now=NOW, function_name="thumbnailer"
    )
    assert only == []


def test_limit_is_read_from_the_timed_out_log_line_when_the_invoke_event_was_lost(store):
    scenario = fleetdata.timeout_fleet()
    for inv in scenario.invocations:
        if inv.function_name == "checkout":
            inv.invoke_event_lost = True
    store.write(scenario)

    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert finding.numbers["timeout_ms"] == 3000.0
    assert "at its 3.0 s limit" in finding.summary


def test_function_running_close_to_its_timeout_is_at_risk(store):
    scenario = fleetdata.healthy_fleet()
    slow = [i for i in scenario.invocations if i.function_name == "report_export"]
    slow[4].duration_ms = 14600.0  # 97% of its 15 s timeout, without timing out
    store.write(scenario)

    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert (finding.kind, finding.severity, finding.function_name) == (
        "timeout_risk",
        "warning",
        "report_export",
    )
    assert finding.evidence_request_ids == (slow[4].request_id,)
    assert finding.numbers["max_duration_ms"] == 14600.0


def test_timeouts_on_cold_starts_are_called_out():
    window = Window.ending(NOW, timedelta(hours=1))
    row = {
        "function_name": "checkout",
        "function_version": "7",
        "invocations": 200,
        "timeouts": 4,
        "cold_start_timeouts": 4,
        "cold_starts": 6,
        "timeouts_at_memory_limit": 0,
        "configured_timeout_ms": 3000.0,
        "p99_duration_ms": 400.0,
        "max_duration_ms": 900.0,
        "near_timeouts": 0,
        "timeout_request_ids": ["a", "b", "c", "d"],
        "near_timeout_request_ids": [],
    }

    (finding,) = timeout_findings([row], {}, window)

    assert finding.severity == "warning"  # 2% and fewer than 10
    assert finding.summary == (
        "4 of 200 invocations of checkout:7 timed out at its 3.0 s limit, 4 of them on cold starts"
    )
    assert finding.numbers["concentrated_on_cold_starts"] == 1.0
    assert "cold starts" in finding.recommendation


def test_finding_to_dict_is_json_safe(store):
    store.write(fleetdata.timeout_fleet())
    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    data = json.loads(json.dumps(finding.to_dict(), allow_nan=False))

    assert data["evidence_request_ids"] == list(TIMED_OUT)
    assert data["window_end"] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["numbers"]["timeouts"] == 3


def test_fleet_summary_has_one_row_per_function(store):
    store.write(fleetdata.timeout_fleet())

    rows = {
        r.function_name: r for r in fleet_summary(store.reader, since=timedelta(hours=1), now=NOW)
    }

    assert sorted(rows) == ["checkout", "report_export", "thumbnailer"]
    checkout = rows["checkout"]
    assert (checkout.invocations, checkout.timeouts, checkout.errors, checkout.cold_starts) == (
        40,
        3,
        0,
        1,
    )
    assert rows["thumbnailer"].max_memory_pct == 250 * 100.0 / 512
    assert checkout.p99_duration_ms is not None and checkout.p99_duration_ms >= 2900


def test_finding_evidence_opens_into_invocations_and_their_log_lines(store):
    store.write(fleetdata.timeout_fleet())
    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    invocations = finding_invocations(store.reader, finding)

    assert [i.request_id for i in invocations] == list(TIMED_OUT)
    assert {i.status for i in invocations} == {"timeout"}
    lines = [line.message for line in request_log_view(store.reader, invocations[0])]
    assert lines[0] == "START RequestId: checkout-0007 Version: $LATEST"
    assert lines[1:3] == ["handled checkout request 7", PAYMENTS_LINE]
    assert lines[3].endswith("checkout-0007 Task timed out after 3.00 seconds")
    assert lines[4] == "END RequestId: checkout-0007"
    assert lines[5].startswith("REPORT RequestId: checkout-0007\tDuration: 3000.00 ms")
    assert "Status: timeout" in lines[5]
    assert len(lines) == 6
