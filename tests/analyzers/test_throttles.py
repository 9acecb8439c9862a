from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from lambdascope.analyzers import DETECTORS, run_detectors, throttles
from lambdascope.analyzers.throttles import ConcurrencyLimits, throttle_findings
from lambdascope.analyzers.window import Window
from lambdascope.collector.firehose import parse_firehose_request
from lambdascope.collector.otlp import parse_traces
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW

THROTTLE_KINDS = ("throttle", "concurrency_near_limit", "concurrency_starvation", "code_throttle")
START = NOW - timedelta(minutes=30)


def detect(store):
    """This detector alone over the last hour (the others have their own tests)."""
    return run_detectors(
        store.reader,
        since=timedelta(hours=1),
        now=NOW,
        detectors={"throttles": DETECTORS["throttles"]},
    )


def write_metrics(store, records, request_id="delivery-1"):
    delivery = parse_firehose_request(request_id, fleetdata.firehose_body(records, request_id))
    assert delivery.skipped_lines == 0
    store.store.write_metrics(delivery.request_id, delivery.points)


def starvation_metrics():
    """checkout (4 a minute, 2 concurrent) is throttled in the 5 minutes when hog (no
    reserved concurrency) bursts to 950 of the account's 1,000 executions."""
    records = []
    for m in range(10):
        burst = m >= 5
        at = START + timedelta(minutes=m)
        records += fleetdata.function_minutes(
            "checkout", at, 1, invocations=4, concurrency=2, throttles=3 if burst else 0
        )
        records += fleetdata.function_minutes(
            "hog", at, 1, invocations=5000, concurrency=950 if burst else 200
        )
        records += fleetdata.function_minutes("reports", at, 1, invocations=30, concurrency=9)
        total = 961 if burst else 211
        records += fleetdata.account_minutes(
            at, 1, concurrency=total, claimed=total + 1, unreserved=total - 9
        )
    return records


def test_throttles_starvation_and_limits_from_metric_streams(store, monkeypatch):
    store.write(fleetdata.healthy_fleet())
    write_metrics(store, starvation_metrics())
    monkeypatch.setattr(throttles, "LIMITS", ConcurrencyLimits(reserved={"reports": 10}))

    found = detect(store)

    assert [(f.kind, f.severity, f.function_name) for f in found] == [
        ("throttle", "critical", "checkout"),
        ("concurrency_near_limit", "warning", ""),
        ("concurrency_starvation", "warning", "hog"),
        ("concurrency_near_limit", "warning", "reports"),
    ]
    throttle, account, starvation, reports = found
    assert throttle.numbers["throttles"] == 15
    assert throttle.numbers["attempts"] == 55
    assert throttle.numbers["throttle_share"] == pytest.approx(15 / 55)
    assert throttle.numbers["throttled_minutes"] == 5
    assert throttle.summary == (
        "Lambda throttled 15 of 55 requests to checkout (27.3%) in 5 minute(s), while hog "
        "held 98.9% of the account's concurrency"
    )
    assert throttle.evidence_request_ids == ()  # throttled requests never reach a sandbox
    assert "reserved concurrency" in throttle.recommendation
    assert starvation.summary == (
        "hog held 98.9% of the account's concurrency (peak 950) in the 5 minute(s) when "
        "checkout (15 throttles) was throttled"
    )
    assert starvation.numbers["starved_throttles"] == 15
    assert account.numbers["max_claimed_concurrency"] == 962
    assert account.numbers["concurrency_share"] == pytest.approx(0.962)
    assert account.summary.startswith("account 000000000000 in us-east-1: 962 of its 1000")
    assert reports.numbers["concurrency_share"] == pytest.approx(0.9)


def test_throttles_inside_the_code_are_told_apart_from_lambdas(store):
    scenario = fleetdata.healthy_fleet()
    for i in (3, 8, 9, 21):
        inv = scenario.by_id(f"checkout-{i:04d}")
        inv.lines.append(
            "botocore.errorfactory.ProvisionedThroughputExceededException: An error occurred "
            "(ProvisionedThroughputExceededException) when calling the PutItem operation"
        )
    scenario.by_id("checkout-0030").lines.append("retrying: SlowDownload of 3 parts")  # no match
    store.write(scenario)
    span_request = scenario.by_id("checkout-0025")
    spans = parse_traces(
        fleetdata.otlp_spans(
            "checkout",
            [
                {
                    "request_id": span_request.request_id,
                    "start": span_request.start_time,
                    "duration_ms": 120.0,
                    "status_message": "rate exceeded",
                    "exception": ("ThrottlingException", "Rate exceeded for PutEvents"),
                },
                {
                    "request_id": "checkout-0026",
                    "start": span_request.start_time,
                    "duration_ms": 80.0,
                },
            ],
        )
    )
    store.store.write_otlp("otel_traces", spans.rows)

    (finding,) = detect(store)

    assert (finding.kind, finding.severity, finding.function_name) == (
        "code_throttle",
        "warning",
        "checkout",
    )
    assert finding.evidence_request_ids == (
        "checkout-0003",
        "checkout-0008",
        "checkout-0009",
        "checkout-0021",
        "checkout-0025",
    )
    assert finding.numbers["requests"] == 5
    assert finding.numbers["requests_ProvisionedThroughputExceededException"] == 4
    assert finding.numbers["requests_ThrottlingException"] == 1
    assert finding.summary == (
        "5 request(s) of checkout were throttled by a downstream service inside the code "
        "(4 × ProvisionedThroughputExceededException, 1 × ThrottlingException); Lambda itself "
        "did not throttle them"
    )


def test_healthy_fleet_with_metric_streams_is_quiet(store):
    store.write(fleetdata.healthy_fleet())
    records = []
    for name, per_minute in (("checkout", 4), ("thumbnailer", 2), ("report_export", 1)):
        records += fleetdata.function_minutes(
            name, START, 10, invocations=per_minute, concurrency=1
        )
    records += fleetdata.account_minutes(START, 10, concurrency=3, claimed=3, unreserved=3)
    write_metrics(store, records)

    assert detect(store) == []


def row(throttles, invocations, peak=5.0):
    return {
        "function_name": "quiet",
        "throttles": throttles,
        "invocations": invocations,
        "throttled_minutes": 1,
        "max_concurrency": peak,
        "has_concurrency": True,
    }


def test_minimum_traffic_guard_and_datadog_share():
    window = Window.ending(NOW, timedelta(hours=1))

    def kinds(r):
        return [(f.kind, f.severity) for f in throttle_findings([r], [], [], [], window)]

    assert kinds(row(1, 4)) == []  # one stray throttle in a quiet function
    assert kinds(row(3, 2)) == [("throttle", "warning")]  # few requests, but most throttled
    assert kinds(row(1, 99)) == [("throttle", "warning")]  # 1%: any throttle with traffic
    assert kinds(row(12, 88)) == [("throttle", "critical")]  # 12% > Datadog's 10%
    (finding,) = throttle_findings([row(12, 88, peak=40)], [], [], [], window)
    assert "peaking at 40 concurrent executions" in finding.summary
    assert math.isnan(finding.numbers["reserved_concurrency"])


def test_throttled_at_its_own_reservation_is_not_starvation():
    window = Window.ending(NOW, timedelta(hours=1))
    limits = ConcurrencyLimits(reserved={"quiet": 5})
    minutes = [
        {"minute": NOW, "function_name": "quiet", "throttles": 12, "concurrency": 5},
        {"minute": NOW, "function_name": "hog", "throttles": 0, "concurrency": 900},
        {"minute": NOW, "function_name": "", "throttles": 0, "concurrency": 905},
    ]

    (finding,) = throttle_findings([row(12, 88)], [], minutes, [], window, limits)

    assert finding.summary.endswith("at its reserved concurrency of 5")


def test_bad_limits_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="account_concurrency must be a positive"):
        ConcurrencyLimits(account_concurrency=0)
    with pytest.raises(ValueError, match="reserved concurrency of 'x'"):
        ConcurrencyLimits(reserved={"x": -1})


def test_default_rule_pack_alerts_on_the_throttles_and_the_starving_function(store):
    from lambdascope.analyzers.alerts import (
        DEFAULT_RULES_PATH,
        AlertEngine,
        MemoryAlertStateStore,
        load_rules,
    )
    from tests.analyzers.alerts.fakes import Recorder

    store.write(fleetdata.healthy_fleet())
    write_metrics(store, starvation_metrics())
    recorder = Recorder("log")
    engine = AlertEngine(
        load_rules(DEFAULT_RULES_PATH),
        store.reader,
        MemoryAlertStateStore(),
        {"log": recorder},
        collector_url="http://127.0.0.1:4320",
    )

    # The burst is [NOW-25m, NOW-20m): evaluated right after it.
    transitions = engine.evaluate(NOW - timedelta(minutes=20))

    assert sorted((t.rule, t.function_name, t.event) for t in transitions) == [
        ("concurrency-starvation", "hog", "firing"),
        ("throttles", "checkout", "firing"),
    ]
    assert {p["finding"]["kind"] for p in recorder.payloads} == {
        "throttle",
        "concurrency_starvation",
    }


def test_unreserved_pool_near_its_end_is_an_early_warning():
    window = Window.ending(NOW, timedelta(hours=1))
    limits = ConcurrencyLimits(account_concurrency=1000, reserved={"payments": 600})
    account = [
        {
            "account_id": "000000000000",
            "region": "eu-west-1",
            # No ClaimedAccountConcurrency in this stream; 390 in use is 39% of the limit, but
            # 600 are reserved for payments, so 350 unreserved is 87.5% of the 400 left.
            "max_concurrency": 390.0,
            "max_claimed": 0.0,
            "max_unreserved": 350.0,
        }
    ]

    (finding,) = throttle_findings([], account, [], [], window, limits)

    assert finding.kind == "concurrency_near_limit"
    assert finding.summary == (
        "account 000000000000 in eu-west-1: 350 of its 400 unreserved concurrent executions "
        "in use (87.5%)"
    )
    assert throttle_findings([], account, [], [], window, ConcurrencyLimits()) == []


def test_throttled_while_the_account_had_room_is_not_starvation() -> None:
    # The demo's case: a function throttled at a reservation nobody told the detector about,
    # while a busy neighbour used 3 of the account's 1,000 executions.
    minute = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    minutes = [
        {"minute": minute, "function_name": "", "throttles": 0, "concurrency": 4},
        {"minute": minute, "function_name": "thumbnailer", "throttles": 1, "concurrency": 1},
        {"minute": minute, "function_name": "report-export", "throttles": 0, "concurrency": 3},
    ]
    window = Window(start=minute - timedelta(minutes=5), end=minute + timedelta(minutes=5))
    findings = throttle_findings([], [], minutes, [], window)
    assert [f for f in findings if f.kind == "concurrency_starvation"] == []
