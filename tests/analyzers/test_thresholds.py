"""Why no detector fired: the thresholds a function's counts fell short of."""

from __future__ import annotations

from dataclasses import replace

from lambdascope.analyzers.fleet import FunctionSummary
from lambdascope.analyzers.thresholds import below_thresholds, cold_starts_below, errors_below

QUIET = FunctionSummary(
    function_name="checkout",
    invocations=40,
    errors=0,
    timeouts=0,
    cold_starts=0,
    p50_duration_ms=100.0,
    p99_duration_ms=300.0,
    max_memory_pct=50.0,
    last_seen=None,
)


def test_errors_below_the_minimum_count_or_rate():
    assert errors_below(QUIET) is None
    assert errors_below(replace(QUIET, errors=1)) == (
        "checkout: 1 error in 40 invocations, below the errors detector's minimum of 3"
    )
    assert errors_below(replace(QUIET, errors=3, invocations=400)) == (
        "checkout: 3 errors in 400 invocations (0.8%), below the errors detector's 1.0% rate"
    )
    # Enough of both function-wide: the per-version detector must have had another reason.
    assert errors_below(replace(QUIET, errors=4)) is None


def test_cold_starts_below_the_minimum_count_rate_or_init():
    assert cold_starts_below(replace(QUIET, cold_starts=2)) == (
        "checkout: 2 cold starts in 40 invocations, below the cold-start detector's minimum of 3"
    )
    assert cold_starts_below(replace(QUIET, cold_starts=3, invocations=1000)) == (
        "checkout: 3 cold starts in 1,000 invocations (0.3%), not above the cold-start "
        "detector's 1.0% rate"
    )
    assert cold_starts_below(replace(QUIET, cold_starts=4, max_init_ms=320.4)) == (
        "checkout: 4 cold starts in 40 invocations, the slowest init 320 ms, below the "
        "cold-start detector's 500 ms init p95 floor"
    )
    # A slow slowest init says nothing of the p95: no claim.
    assert cold_starts_below(replace(QUIET, cold_starts=4, max_init_ms=900.0)) is None
    assert cold_starts_below(replace(QUIET, cold_starts=4)) is None
    # One cold start with a 1.2 s init is a finding of its own (a slow init): nothing to explain.
    assert cold_starts_below(replace(QUIET, cold_starts=1, max_init_ms=1200.0)) is None


def test_only_the_detectors_that_ran_are_explained_and_timeouts_never():
    fleet = [
        replace(QUIET, errors=1, cold_starts=1, timeouts=1),
        replace(QUIET, function_name="thumbnailer"),
    ]

    assert below_thresholds(fleet) == [
        "checkout: 1 error in 40 invocations, below the errors detector's minimum of 3",
        "checkout: 1 cold start in 40 invocations, below the cold-start detector's minimum of 3",
    ]
    assert below_thresholds(fleet, ["cold_starts", "timeouts"]) == [
        "checkout: 1 cold start in 40 invocations, below the cold-start detector's minimum of 3",
    ]
    assert below_thresholds(fleet, ["timeouts"]) == []
