from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.errors import error_findings
from lambdascope.analyzers.window import Window
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import FAILED, NOW


def test_failing_function_gives_one_errors_finding_with_the_error_types(store):
    store.write(fleetdata.error_fleet())

    (finding,) = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert (finding.kind, finding.severity, finding.function_name) == (
        "errors",
        "critical",
        "checkout",
    )
    assert finding.evidence_request_ids == FAILED
    assert finding.summary == (
        "4 of 40 invocations of checkout failed (10.0%): 3 × KeyError, 1 × Runtime.ExitError"
    )
    assert finding.numbers["errors_KeyError"] == 3
    assert "KeyError" in finding.recommendation


def test_out_of_memory_kills_are_not_reported_again_as_errors(store):
    store.write(fleetdata.oom_fleet())

    found = run_detectors(store.reader, since=timedelta(hours=1), now=NOW)

    assert "errors" not in {f.kind for f in found}


def test_two_errors_or_a_low_rate_stay_quiet():
    window = Window.ending(NOW, timedelta(hours=1))
    rows = [
        {
            "function_name": "quiet",
            "function_version": "$LATEST",
            "invocations": 4,
            "errors": 2,
            "error_request_ids": ["a", "b"],
        },
        {
            "function_name": "busy",
            "function_version": "$LATEST",
            "invocations": 1000,
            "errors": 9,
            "error_request_ids": ["c"],
        },
    ]

    assert error_findings(rows, [], window) == []
