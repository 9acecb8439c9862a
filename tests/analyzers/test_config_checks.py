from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers import DETECTORS, run_detectors
from lambdascope.analyzers.config_checks import init_failure_findings
from lambdascope.analyzers.window import Window
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.otlp import parse_traces
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, SLOW_HTTP_REQUESTS


def detect(store):
    """This detector alone over the last hour (the others have their own tests)."""
    return run_detectors(
        store.reader,
        since=timedelta(hours=1),
        now=NOW,
        detectors={"config_checks": DETECTORS["config_checks"]},
    )


def test_init_errors_and_timeouts_with_the_requests_that_waited_for_them(store):
    store.write(fleetdata.healthy_fleet())
    start = NOW - timedelta(minutes=20)
    for batch in (
        fleetdata.failed_init_batch(
            "importer",
            "a",
            start,
            status="error",
            error_type="Runtime.ImportModuleError",
            request_id="importer-0001",
            retry_status="error",
            init_duration_ms=229.0,
        ),
        fleetdata.failed_init_batch(
            "importer",
            "b",
            start + timedelta(minutes=5),
            status="timeout",
            error_type=None,
            request_id="importer-0002",
        ),
    ):
        store.store.write(normalize_batch(batch))

    (finding,) = detect(store)

    assert (finding.kind, finding.severity, finding.function_name) == (
        "init_failure",
        "critical",
        "importer",
    )
    assert finding.evidence_request_ids == ("importer-0001", "importer-0002")
    assert finding.numbers["failed_inits"] == 3  # a: init and its retry; b: init
    assert finding.numbers["init_errors"] == 2
    assert finding.numbers["init_timeouts"] == 1
    assert finding.numbers["suppressed_inits"] == 2
    assert finding.numbers["retried_inits_failed"] == 1
    assert finding.numbers["failed_first_requests"] == 1
    assert finding.numbers["max_init_duration_ms"] == 10000.0
    assert finding.summary == (
        "3 init(s) of importer failed (2 × Runtime.ImportModuleError, 1 × timeout) in 2 "
        "environment(s); the retry inside the first invocation failed too 1×"
    )
    assert "import" in finding.recommendation


def test_http_function_with_a_timeout_above_api_gateways_limit(store):
    scenario = fleetdata.http_fleet()
    store.write(scenario)
    for name in ("api", "webhook"):
        store.store.write_otlp(
            "otel_traces", parse_traces(fleetdata.http_spans(scenario, name)).rows
        )

    (finding,) = detect(store)

    assert (finding.kind, finding.severity, finding.function_name) == (
        "api_gateway_timeout",
        "critical",
        "api",
    )
    assert finding.evidence_request_ids == SLOW_HTTP_REQUESTS  # slowest first
    assert finding.numbers["timeout_ms"] == 60000.0
    assert finding.numbers["over_limit"] == 2
    assert finding.summary == (
        "api is called over HTTP but its timeout is 60.0 s, above API Gateway's 29.0 s limit: "
        "2 of 20 invocations ran past it (the caller got a 504)"
    )


def test_unknown_trigger_and_healthy_fleet_are_quiet(store):
    store.write(fleetdata.http_fleet())  # long timeouts, but no spans say HTTP

    assert detect(store) == []


def test_a_suppressed_init_alone_is_not_a_failure():
    window = Window.ending(NOW, timedelta(hours=1))
    row = {
        "function_name": "importer",
        "function_version": "$LATEST",
        "environment_id": "e1",
        "phase": "invoke",
        "status": "success",
        "error_type": "success",
        "start_time": NOW,
        "init_duration_ms": 300.0,
    }

    assert init_failure_findings([row], [], window) == []
