from __future__ import annotations

from datetime import datetime, timedelta

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.coldstarts import cold_start_findings
from lambdascope.analyzers.window import Window
from lambdascope.collector.normalize import normalize_batch
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


def _one_environment(init_ms: float, invocations: int = 30) -> fleetdata.Scenario:
    """report_gen: one environment, a slow init, then warm invocations every 30 s."""
    start = NOW - timedelta(minutes=40)
    return fleetdata.Scenario(
        [
            fleetdata.Inv(
                "report_gen",
                f"report-gen-{i:04d}",
                start + timedelta(seconds=30 * i),
                120.0,
                init_duration_ms=init_ms if i == 0 else None,
            )
            for i in range(invocations)
        ]
    )


def test_a_slow_init_is_found_even_with_one_environment_with_its_phases(store):
    store.write(fleetdata.healthy_fleet() + _one_environment(1200.0))

    found = [
        f
        for f in run_detectors(store.reader, since=timedelta(hours=1), now=NOW)
        if f.kind == "cold_starts"
    ]

    (finding,) = found
    assert (finding.function_name, finding.severity) == ("report_gen", "info")  # 1 of 30 paid
    assert finding.numbers["cold_starts"] == 1
    assert finding.numbers["init_p95_ms"] == 1200.0
    assert finding.numbers["runtime_init_p50_ms"] == 1200.0
    assert finding.numbers["extensions_after_runtime_p50_ms"] == 0.0
    assert finding.summary == (
        "1 of 30 invocations of report_gen were cold starts (3.3%), init p95 1.20 s "
        "(median init: 1.20 s until the runtime was ready, waiting for extensions after it "
        "0 ms; the runtime and function code dominate)"
    )
    assert finding.evidence_request_ids == ("report-gen-0000",)


def _shift_inits(batch: dict, by: timedelta) -> None:
    for event in batch["telemetry"]:
        if event["type"].startswith("platform.init"):
            at = datetime.fromisoformat(event["time"].replace("Z", "+00:00")) - by
            event["time"] = fleetdata._iso(at)


def test_proactive_and_provisioned_inits_are_not_cold_starts_users_felt(store):
    # search's environments 0-3 were initialised a minute before their first request
    # (proactively); 4 and 5 are provisioned; 6 and 7 are on-demand cold starts.
    index = {fleetdata.environment_id("search", str(n)): n for n in range(8)}
    for batch in fleetdata.batches(fleetdata.cold_start_fleet()):
        n = index.get(batch["environment"]["environment_id"], 99)
        if n < 4:
            _shift_inits(batch, timedelta(minutes=1))
        elif n < 6:
            for event in batch["telemetry"]:
                if "initializationType" in event["record"]:
                    event["record"]["initializationType"] = "provisioned-concurrency"
        store.store.write(normalize_batch(batch))

    (finding,) = [
        f
        for f in run_detectors(store.reader, since=timedelta(hours=1), now=NOW)
        if f.kind == "cold_starts"
    ]

    assert finding.numbers["cold_starts"] == 2  # environments 6 and 7
    assert finding.numbers["proactive_inits"] == 4
    assert finding.numbers["provisioned_or_snapstart_inits"] == 2
    assert finding.summary.endswith("; 6 inits ahead of demand not counted")
    assert set(finding.evidence_request_ids) == {"search-0030", "search-0035"}


def test_the_runtimes_start_splits_the_init_in_three_and_names_what_dominates():
    row = {
        "function_name": "scan",
        "function_version": "$LATEST",
        "invocations": 10,
        "cold_starts": 2,
        "init_quantiles_ms": [1500.0, 1600.0, 1600.0],
        "max_init_duration_ms": 1600.0,
        "extensions_before_runtime_p50_ms": 900.0,
        "runtime_and_function_p50_ms": 300.0,
        "inits_with_runtime_start": 2,
        "runtime_init_p50_ms": 1200.0,
        "extensions_after_runtime_p50_ms": 250.0,
        "inits_with_phases": 2,
        "cold_start_request_ids": ["scan-1", "scan-2"],
    }

    (finding,) = cold_start_findings([row], Window.ending(NOW, timedelta(hours=1)), {"scan": 30.0})

    assert finding.severity == "warning"  # 20% of the invocations waited 1.6 s
    assert finding.summary.endswith(
        "(median init: extensions starting 900 ms, runtime and function code 300 ms, waiting "
        "for extensions after it 250 ms, lambdascope's own start-up 30 ms; extensions dominate)"
    )
    assert finding.recommendation.startswith("Users wait mostly for extensions")
    assert "runtime_init_p50_ms" not in finding.numbers  # the finer split replaces it
