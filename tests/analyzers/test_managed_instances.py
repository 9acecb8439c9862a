"""Analyzers over a Lambda Managed Instances environment: 8 requests at once in one
environment, mixed success, error and timeout."""

from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers.function_view import EnvironmentMemory, function_overview
from lambdascope.analyzers.memory_leak import detect_memory_leaks
from lambdascope.analyzers.window import Window
from lambdascope.collector.normalize import normalize_batch
from lambdascope.tui.widgets.environment_memory import environment_lines
from tests.analyzers import managed_instances_fleet as mi
from tests.analyzers.fleetdata import NOW, Inv, Scenario, environment_id

HOUR = Window.ending(NOW, timedelta(hours=1))


def _write(store, batches) -> None:
    for batch in batches:
        store.store.write(normalize_batch(batch))


def test_each_request_keeps_its_own_status_and_duration(store):
    _write(store, mi.managed_instances_batches())
    rows = store.reader.query(
        "SELECT request_id, status, duration_ms, error_type FROM invocations"
        " WHERE function_name = {fn:String} ORDER BY request_id",
        {"fn": mi.FUNCTION},
    ).dicts()
    assert [r["status"] for r in rows] == list(mi.STATUSES)
    assert [r["error_type"] for r in rows] == [mi.ERROR_TYPES.get(s, "") for s in mi.STATUSES]
    assert rows[2]["duration_ms"] == 3000.0 and rows[0]["duration_ms"] == 400.0
    # The environment's init row says what it is; no request was a cold start.
    init = store.reader.query(
        "SELECT initialization_type FROM cold_starts WHERE function_name = {fn:String}",
        {"fn": mi.FUNCTION},
    ).dicts()
    assert [r["initialization_type"] for r in init] == ["lambda-managed-instances"]


def test_the_function_view_shows_the_peak_of_requests_in_flight_per_environment(store):
    _write(store, mi.managed_instances_batches(waves=2))
    start = NOW - timedelta(minutes=30)
    # An on-demand function beside it: one request at a time, back to back.
    store.write(
        Scenario(
            [Inv("resize", f"resize-{n}", start + timedelta(seconds=n), 500.0) for n in range(5)]
        )
    )

    (environment,) = function_overview(store.reader, mi.FUNCTION, HOUR).environments
    assert environment.environment_id == environment_id(mi.FUNCTION, mi.ENVIRONMENT)
    assert (environment.invocations, environment.max_in_flight) == (16, 8)
    (sequential,) = function_overview(store.reader, "resize", HOUR).environments
    assert sequential.max_in_flight == 1


def test_a_leak_across_concurrent_invocations_is_the_environments(store):
    _write(store, mi.managed_instances_batches(waves=4, leak_mb_per_wave=40))

    (finding,) = detect_memory_leaks(store.reader, HOUR, mi.FUNCTION)

    assert finding.kind == "memory_leak"
    assert finding.numbers["max_concurrent_requests"] == 8
    assert finding.numbers["warm_invocations"] == 32
    assert "shared by up to 8 requests at once" in finding.summary
    assert finding.evidence_request_ids[0] == mi.request_id(0, 0)


def test_flat_memory_shared_by_concurrent_requests_is_no_leak(store):
    _write(store, mi.managed_instances_batches(waves=4, leak_mb_per_wave=0))

    assert detect_memory_leaks(store.reader, HOUR, mi.FUNCTION) == []


def _env(in_flight: int) -> EnvironmentMemory:
    return EnvironmentMemory("a" * 32, 700, 2048, 16, NOW, NOW, max_in_flight=in_flight)


def test_the_memory_lines_say_how_many_requests_shared_it_only_when_several_did():
    lines = [line.plain for line in environment_lines([_env(8)], 1, 100)]
    assert "16 invocations · 8 at once" in lines[1]
    on_demand = [line.plain for line in environment_lines([_env(1)], 1, 100)]
    assert "at once" not in on_demand[1]
