from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers import DETECTORS, cost, run_detectors
from lambdascope.analyzers.versions import compare
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NEW_VERSION_ERRORS, NOW


def detect(store):
    """This detector alone over the last hour (the others have their own tests)."""
    return run_detectors(
        store.reader,
        since=timedelta(hours=1),
        now=NOW,
        detectors={"version_regression": DETECTORS["version_regression"]},
    )


def test_new_version_regression_says_what_got_worse(store):
    store.write(fleetdata.version_fleet())

    found = detect(store)

    (finding,) = [f for f in found if f.kind == "version_regression"]
    assert (finding.severity, finding.function_name, finding.function_version) == (
        "critical",
        "pricing",
        "8",
    )
    assert finding.summary.startswith(
        "pricing:8 regressed against pricing:7: init p95 200 → 900 ms (+350%), duration p95 "
    )
    assert "max memory used 60 → 95 MB (+58%)" in finding.summary
    assert "cost per invocation $" in finding.summary
    assert finding.summary.endswith("new error KeyError (3×)")
    # The failures with the new error type, oldest first.
    assert finding.evidence_request_ids == (
        "pricing-8-2-0002",
        "pricing-8-0-0003",
        "pricing-8-1-0006",
    )
    assert set(finding.evidence_request_ids) == set(NEW_VERSION_ERRORS)
    assert finding.numbers["new_errors_KeyError"] == 3
    assert finding.numbers["old_invocations"] == finding.numbers["new_invocations"] == 30
    assert (
        140
        <= finding.numbers["old_duration_p95_ms"]
        < 350
        <= finding.numbers["new_duration_p95_ms"]
        <= 450
    )
    assert finding.numbers["regressions"] == 5


def test_a_version_change_that_changes_nothing_is_quiet(store):
    store.write(fleetdata.version_fleet(regress=False))

    assert detect(store) == []


def test_healthy_fleet_has_one_version_and_no_finding(store):
    store.write(fleetdata.healthy_fleet())

    assert [f for f in detect(store) if f.kind == "version_regression"] == []


def version(**over):
    base = {
        "function_version": "7",
        "invocations": 100,
        "cold_starts": 5,
        "init_p95_ms": 300.0,
        "duration_p95_ms": 20.0,
        "peak_memory_used_mb": 100,
        "gb_seconds_per_invocation": 0.0025,
        "arch": "arm64",
        "region_name": "us-east-1",
        "failure_types": (["Runtime.ExitError"], [4]),
    }
    return {**base, **over}


def test_small_absolute_changes_and_single_new_errors_are_not_regressions():
    old = version()
    # 20 ms -> 30 ms is +50% but only +10 ms; 300 -> 340 ms init is +13%; one new error.
    new = version(
        function_version="8",
        duration_p95_ms=30.0,
        init_p95_ms=340.0,
        peak_memory_used_mb=110,
        gb_seconds_per_invocation=0.0028,
        failure_types=(["Runtime.ExitError", "TypeError"], [9, 1]),
    )

    assert compare(old, new, cost.PriceTable()) == ([], {})
