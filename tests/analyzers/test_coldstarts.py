from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.coldstarts import cold_start_findings
from lambdascope.analyzers.window import Window
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW


def test_frequent_slow_cold_starts_are_a_warning_with_the_slowest_inits_as_evidence(store):
    store.write(fleetdata.cold_start_fleet())

    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert (finding.kind, finding.severity, finding.function_name) == (
        "cold_starts",
        "warning",
        "search",
    )
    assert finding.numbers["cold_starts"] == 8
    assert finding.numbers["cold_start_rate"] == 0.2
    assert finding.numbers["max_init_duration_ms"] == 1890.0
    assert 1400.0 <= finding.numbers["init_p50_ms"] <= finding.numbers["init_p95_ms"] <= 1890.0
    # Slowest init first: environment 7 (1,890 ms), then 6 (1,820 ms).
    assert finding.evidence_request_ids[:2] == ("search-0035", "search-0030")
    assert len(finding.evidence_request_ids) == 8
    assert finding.summary.startswith("8 of 40 invocations of search were cold starts (20.0%)")


def test_one_cold_start_per_function_is_quiet(store):
    store.write(fleetdata.healthy_fleet())

    found = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert [f for f in found if f.kind == "cold_starts"] == []


def test_fast_inits_are_not_reported_however_many():
    row = {
        "function_name": "tiny",
        "function_version": "$LATEST",
        "invocations": 100,
        "cold_starts": 30,
        "init_quantiles_ms": [120.0, 180.0, 210.0],
        "max_init_duration_ms": 220.0,
        "cold_start_request_ids": ["a"],
    }

    assert cold_start_findings([row], Window.ending(NOW, timedelta(hours=1))) == []


def test_moderate_cold_starts_are_info():
    row = {
        "function_name": "api",
        "function_version": "3",
        "invocations": 200,
        "cold_starts": 4,
        "init_quantiles_ms": [600.0, 700.0, 720.0],
        "max_init_duration_ms": 720.0,
        "cold_start_request_ids": ["a", "b", "c", "d"],
    }

    (finding,) = cold_start_findings([row], Window.ending(NOW, timedelta(hours=1)))

    assert finding.severity == "info"
    assert (
        finding.summary == "4 of 200 invocations of api:3 were cold starts (2.0%), init p95 700 ms"
    )
