from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.memory import memory_findings, suggested_memory_mb
from lambdascope.analyzers.window import Window
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, OOM_AS_TIMEOUT, OOM_KILLED, OOM_MEMORY_ERROR


def test_out_of_memory_by_all_three_signals_counted_once_per_request(store):
    store.write(fleetdata.oom_fleet())

    findings = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert [(f.kind, f.severity, f.function_name) for f in findings] == [
        ("out_of_memory", "critical", "report_export"),
        ("timeout", "critical", "report_export"),
    ]
    oom, timeout = findings
    assert oom.evidence_request_ids == (OOM_KILLED, OOM_AS_TIMEOUT, OOM_MEMORY_ERROR)
    assert oom.numbers["ooms"] == 3  # the killed request shows two signals, counted once
    assert oom.numbers["oom_error_type"] == 1
    assert oom.numbers["oom_at_limit"] == 2
    assert oom.numbers["oom_log_line"] == 2
    assert oom.numbers["oom_reported_as_timeout"] == 1
    assert oom.summary == "3 of 20 invocations of report_export ran out of memory at 128 MB"
    assert "256 MB" in oom.recommendation
    # The timeout detector says the same timeout looks like an OOM stall.
    assert timeout.evidence_request_ids == (OOM_AS_TIMEOUT,)
    assert timeout.summary.endswith("1 at the memory limit")
    assert "out-of-memory" in timeout.recommendation


def test_memory_near_the_limit_is_a_warning(store):
    store.write(fleetdata.high_memory_fleet())

    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert (finding.kind, finding.severity, finding.function_name) == (
        "high_memory",
        "warning",
        "thumbnailer",
    )
    assert finding.numbers["high_memory"] == 20
    assert finding.numbers["max_memory_used_mb"] == 500
    assert finding.summary == (
        "thumbnailer used up to 500 of 512 MB (97.7%) in 20 of 30 invocations"
    )
    assert finding.evidence_request_ids[:2] == ("thumbnailer-0001", "thumbnailer-0004")
    assert len(finding.evidence_request_ids) == 20


def test_memory_detector_is_quiet_on_a_healthy_fleet(store):
    store.write(fleetdata.healthy_fleet())

    found = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert [f for f in found if f.kind in ("out_of_memory", "high_memory")] == []


def test_one_invocation_near_the_limit_is_not_enough():
    row = {
        "function_name": "thumbnailer",
        "function_version": "$LATEST",
        "invocations": 30,
        "largest_memory_size_mb": 512,
        "peak_memory_used_mb": 500,
        "high_memory": 1,
        "ooms": 0,
        "oom_error_type": 0,
        "oom_at_limit": 0,
        "oom_log_line": 0,
        "oom_reported_as_timeout": 0,
        "oom_request_ids": [],
        "high_memory_request_ids": ["thumbnailer-0004"],
    }

    assert memory_findings([row], Window.ending(NOW, timedelta(hours=1))) == []


def test_suggested_memory_has_headroom_and_stays_in_lambdas_range():
    assert suggested_memory_mb(128) == 192
    assert suggested_memory_mb(10) == 128
    assert suggested_memory_mb(9000) == 10240


def test_success_at_the_limit_is_critical_high_memory_not_a_kill(store):
    scenario = fleetdata.high_memory_fleet()
    at_limit = [i for i in scenario.invocations if i.function_name == "thumbnailer"][:2]
    for inv in at_limit:
        inv.max_memory_used_mb = 512  # succeeded, Max Memory Used == Memory Size
    store.write(scenario)

    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert (finding.kind, finding.severity) == ("high_memory", "critical")
    assert finding.numbers["succeeded_at_limit"] == 2
    assert finding.summary.endswith("; 2 reached the limit itself")
    assert finding.numbers["max_memory_used_pct"] == 100.0
    assert 95.0 < finding.numbers["memory_used_pct_p95"] <= 100.0


def test_eighty_percent_steady_is_no_finding(store):
    scenario = fleetdata.healthy_fleet()
    for inv in scenario.invocations:
        if inv.function_name == "thumbnailer":
            inv.max_memory_used_mb = 410  # 80% of 512 MB, every time
    store.write(scenario)

    found = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert [f for f in found if f.kind in ("out_of_memory", "high_memory")] == []
