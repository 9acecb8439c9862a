from __future__ import annotations

from datetime import timedelta

import pytest

from lambdascope.analyzers import DETECTORS, run_detectors
from lambdascope.analyzers.memory_leak import fit_leak
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW


def detect(store):
    """This detector alone over the last hour (the others have their own tests)."""
    return run_detectors(
        store.reader,
        since=timedelta(hours=1),
        now=NOW,
        detectors={"memory_leak": DETECTORS["memory_leak"]},
    )


def test_growing_memory_in_one_environment_is_a_leak_and_a_plateau_is_not(store):
    store.write(fleetdata.leak_fleet())

    (finding,) = detect(store)

    leaky = fleetdata.environment_id(*fleetdata.LEAKING_ENVIRONMENT)
    assert (finding.kind, finding.severity, finding.function_name) == (
        "memory_leak",
        "critical",
        "sessions",
    )
    assert leaky in finding.summary
    assert 1.4 <= finding.numbers["slope_mb_per_invocation"] <= 1.6
    assert finding.numbers["r_squared"] >= 0.99
    # Warm invocations 1..39 climb from 72 to 127 MB of 256: ~87 invocations left.
    assert finding.numbers["last_memory_used_mb"] == 127
    assert 80 <= finding.numbers["invocations_left"] <= 90
    assert finding.numbers["leaking_environments"] == 1
    assert finding.numbers["environments_checked"] == 2  # the plateau was fitted, and rejected
    # The cold start is not part of the series; every warm request of the environment is.
    assert finding.evidence_request_ids == tuple(f"sessions-leaky-{i:04d}" for i in range(1, 40))
    assert finding.summary.startswith(
        "Memory of sessions grows 1.5 MB per warm invocation in environment "
    )
    assert finding.summary.endswith(
        "(72 to 127 MB over 39 invocations): out of memory at 256 MB in about "
        f"{finding.numbers['invocations_left']:.0f} more invocations"
    )


def test_healthy_fleet_has_no_leak(store):
    store.write(fleetdata.healthy_fleet())

    assert detect(store) == []


def test_plateau_noise_and_short_series_are_not_leaks():
    assert fit_leak([70 + 2 * min(i, 12) for i in range(40)]) is None  # fills, then flat
    assert fit_leak([100, 140, 90, 150, 95, 160, 100, 150, 90, 170, 99, 140]) is None  # noise
    assert fit_leak([70 + 3 * i for i in range(9)]) is None  # too few invocations
    assert fit_leak([70 + 0.3 * i for i in range(60)]) is None  # slower than 0.5 MB/invocation
    late = [70.0] * 15 + [70 + 2 * i for i in range(30)]  # starts leaking late: still a leak
    leak = fit_leak(late)
    assert leak is not None and leak.last_third_slope >= 1.9


def test_a_leak_with_a_plateau_at_the_end_is_not_reported():
    climbing_then_flat = [70 + i for i in range(30)] + [100] * 15
    assert fit_leak(climbing_then_flat) is None


def test_a_fast_leak_over_a_few_seconds_is_found(store):
    # 150 invocations 60 ms apart, 3 MB more each: a busy function leaking in one
    # environment. Epoch milliseconds this close together made the regression's sums lose
    # every digit (a NaN slope) before the times were taken from the window's start.
    scenario = fleetdata.healthy_fleet()
    start = NOW - timedelta(minutes=5)
    for i in range(150):
        scenario.invocations.append(
            fleetdata.Inv(
                "sessions",
                f"fast-{i:04d}",
                start + timedelta(milliseconds=60 * i),
                20.0,
                environment="fast",
                memory_size_mb=1024,
                max_memory_used_mb=19 + 3 * i,
                init_duration_ms=250.0 if i == 0 else None,
            )
        )
    store.write(scenario)

    (leak,) = [
        f
        for f in run_detectors(store.reader, since=timedelta(hours=1), now=NOW)
        if f.kind == "memory_leak"
    ]
    assert leak.numbers["slope_mb_per_invocation"] == pytest.approx(3.0)
