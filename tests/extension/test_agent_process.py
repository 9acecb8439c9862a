"""Functional tests: the real extension process against a fake Lambda API and collector, on
loopback. Each test stops the process it starts."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from pathlib import Path

from tests.extension.fakes import (
    EXTENSION_ID,
    FakeCollector,
    FakeLambdaApi,
    event,
    extension_env,
    invocation_events,
    report_event,
    start_extension,
    stop_process,
)

INIT_EVENTS = [
    event("platform.initStart", {"initializationType": "on-demand", "phase": "init"}),
    event(
        "platform.telemetrySubscription",
        {"name": "lambdascope", "state": "Subscribed", "types": ["platform", "function"]},
    ),
]


def _wait_ready(api: FakeLambdaApi) -> None:
    assert api.wait_next_calls(1), "the extension never called event/next"


def test_registers_under_its_name_and_subscribes_to_telemetry(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    process = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url))
    try:
        _wait_ready(lambda_api)
        headers, body = lambda_api.registrations[0]
        assert headers["Lambda-Extension-Name"] == "lambdascope"
        assert body == {"events": ["INVOKE", "SHUTDOWN"]}
        sub_headers, subscription = lambda_api.subscriptions[0]
        assert sub_headers["Lambda-Extension-Identifier"] == EXTENSION_ID
        assert subscription["schemaVersion"] == "2022-12-13"
        assert subscription["types"] == ["platform", "function", "extension"]
        assert subscription["buffering"] == {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 100}
        assert re.fullmatch(r"http://sandbox\.localdomain:\d+/", subscription["destination"]["URI"])
        assert subscription["destination"]["protocol"] == "HTTP"
        assert lambda_api.next_headers[0]["Lambda-Extension-Identifier"] == EXTENSION_ID
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)


def test_ships_gzip_batches_with_telemetry_and_invoke_records(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    env = extension_env(
        lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url, LAMBDASCOPE_TOKEN="s3cret"
    )
    process = start_extension(env)
    try:
        _wait_ready(lambda_api)
        assert lambda_api.post_telemetry(INIT_EVENTS) == 200
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        lambda_api.invoke("req-1", timeout_ms=3000, trace=trace)
        assert lambda_api.post_telemetry(invocation_events("req-1")) == 200
        assert lambda_api.wait_next_calls(2)
        # Lambda delivers invocation 1's report after it ended, during invocation 2.
        lambda_api.invoke("req-2")
        assert lambda_api.post_telemetry([report_event("req-1")]) == 200
        assert lambda_api.post_telemetry(invocation_events("req-2")) == 200
        assert lambda_api.wait_next_calls(3)
        # Invocation 1's report goes out while invocation 2 runs, not only at SHUTDOWN.
        assert collector.wait_for(
            lambda c: any(e["type"] == "platform.report" for e in c.stored_telemetry())
        )
        assert process.poll() is None
        lambda_api.post_telemetry([report_event("req-2")])
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)

    for headers, _batch in collector.requests:
        assert headers["Content-Encoding"] == "gzip"
        assert headers["Content-Type"] == "application/json"
        assert headers["Authorization"] == "Bearer s3cret"
    expected = (
        INIT_EVENTS
        + invocation_events("req-1")
        + [report_event("req-1")]
        + invocation_events("req-2")
        + [report_event("req-2")]
    )
    assert collector.stored_telemetry() == expected  # exactly once, in delivery order
    batches = collector.stored_batches()
    environment_ids = {b["environment"]["environment_id"] for b in batches}
    assert len(environment_ids) == 1
    for batch in batches:
        assert batch["schema_version"] == 1
        assert re.fullmatch(r"[0-9a-f]{32}", batch["batch_id"])
        assert batch["extension"] == {"name": "lambdascope", "version": "0.1.0"}
        environment = dict(batch["environment"])
        assert re.fullmatch(r"[0-9a-f]{32}", environment.pop("environment_id"))
        assert environment == {
            "function_name": "checkout",
            "function_version": "$LATEST",
            "region": "us-east-1",
            "memory_size_mb": 128,
            "initialization_type": "on-demand",
            "architecture": environment["architecture"],
        }
        assert environment["architecture"] in ("x86_64", "arm64")
        assert batch["sent_at_ms"] > 1_700_000_000_000
    invocations = {r["request_id"]: r for r in collector.stored_invocations()}
    assert set(invocations) == {"req-1", "req-2"}
    first = invocations["req-1"]
    assert first["trace_id"] == trace
    assert first["invoked_function_arn"].endswith(":function:checkout")
    assert 2000 <= first["deadline_ms"] - first["received_at_ms"] <= 3100
    assert invocations["req-2"]["trace_id"] is None


def test_shutdown_waits_for_and_flushes_the_last_report(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    process = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url))
    try:
        _wait_ready(lambda_api)
        lambda_api.invoke("req-last")
        lambda_api.post_telemetry(invocation_events("req-last"))
        assert lambda_api.wait_next_calls(2)
        lambda_api.shutdown_event(budget_ms=2000)
        # The platform produces the last report only after SHUTDOWN went out.
        time.sleep(0.1)
        lambda_api.post_telemetry([report_event("req-last")])
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)
    types = [e["type"] for e in collector.stored_telemetry()]
    assert types[-1] == "platform.report"
    assert [r["request_id"] for r in collector.stored_invocations()] == ["req-last"]


def test_a_batch_refused_with_503_is_retried_with_the_same_batch_id(
    lambda_api: FakeLambdaApi,
) -> None:
    collector = FakeCollector(statuses=[503]).start()
    process = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url))
    try:
        _wait_ready(lambda_api)
        lambda_api.invoke("req-1")
        lambda_api.post_telemetry(invocation_events("req-1"))
        assert lambda_api.wait_next_calls(2)
        lambda_api.invoke("req-2")
        lambda_api.post_telemetry([report_event("req-1")])
        assert collector.wait_for(lambda c: len(c.requests) >= 1)
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
        collector.stop()
    first_id = collector.requests[0][1]["batch_id"]
    retried = [batch for _h, batch in collector.requests[1:] if batch["batch_id"] == first_id]
    assert retried, "the refused batch was not sent again with its batch id"
    assert retried[0]["telemetry"] == collector.requests[0][1]["telemetry"]
    # At SHUTDOWN the retried batch and the newer one go out in parallel, so they may be
    # stored in either order: what matters is that every event is stored exactly once.
    expected = invocation_events("req-1") + [report_event("req-1")]
    assert sorted(collector.stored_telemetry(), key=json.dumps) == sorted(expected, key=json.dumps)
    assert "HTTP 503" in stderr and collector.url in stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_collector_gives_one_clear_line_and_a_clean_exit(
    lambda_api: FakeLambdaApi,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    process = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=url))
    try:
        _wait_ready(lambda_api)
        for number in range(3):
            lambda_api.invoke(f"req-{number}")
            lambda_api.post_telemetry(invocation_events(f"req-{number}"))
            assert lambda_api.wait_next_calls(number + 2)
        lambda_api.shutdown_event(budget_ms=2000)
        started = time.monotonic()
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 2.5  # exits within the SHUTDOWN budget
    finally:
        _stdout, stderr = stop_process(process)
    failures = [line for line in stderr.splitlines() if "cannot send to collector" in line]
    assert len(failures) == 1, stderr
    assert url + "/v1/extension/batches" in failures[0]
    assert "Connection refused" in failures[0] or "ConnectionRefusedError" in failures[0]


def test_without_a_collector_url_it_warns_once_and_keeps_the_function_running(
    lambda_api: FakeLambdaApi,
) -> None:
    process = start_extension(extension_env(lambda_api))
    try:
        _wait_ready(lambda_api)
        lambda_api.invoke("req-1")
        assert lambda_api.post_telemetry(invocation_events("req-1")) == 200
        assert lambda_api.wait_next_calls(2)
        lambda_api.invoke("req-2")
        assert lambda_api.wait_next_calls(3)
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
    assert stderr.count("LAMBDASCOPE_COLLECTOR_URL is not set") == 1


def test_a_malformed_telemetry_post_gets_400_and_the_listener_keeps_working(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    process = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url))
    try:
        _wait_ready(lambda_api)
        assert lambda_api.post_telemetry(b"{not json") == 400
        assert lambda_api.post_telemetry(b'[{"record": {}}]') == 400
        assert lambda_api.post_telemetry(INIT_EVENTS) == 200
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
    assert collector.stored_telemetry() == INIT_EVENTS
    assert "malformed Telemetry API delivery" in stderr


def test_long_invocations_are_flushed_periodically(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    env = extension_env(
        lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url, LAMBDASCOPE_FLUSH_INTERVAL_MS="200"
    )
    process = start_extension(env)
    try:
        _wait_ready(lambda_api)
        lambda_api.invoke("req-long", timeout_ms=60000)
        assert lambda_api.wait_next_calls(2)
        lambda_api.post_telemetry(invocation_events("req-long")[:2])
        # No INVOKE or SHUTDOWN follows: only the periodic flush can deliver these.
        assert collector.wait_for(lambda c: len(c.stored_telemetry()) == 2, timeout=5)
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)


def test_batches_spooled_while_the_collector_is_down_are_sent_by_the_next_process(
    lambda_api: FakeLambdaApi, collector: FakeCollector, tmp_path: Path
) -> None:
    spool_env = {
        "LAMBDASCOPE_SPOOL_DIR": str(tmp_path / "spool"),
        "LAMBDASCOPE_SPOOL_MAX_BYTES": "100000",
    }
    down = f"http://127.0.0.1:{_closed_port()}"
    first = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=down, **spool_env))
    try:
        _wait_ready(lambda_api)
        lambda_api.invoke("req-1")
        lambda_api.post_telemetry(invocation_events("req-1") + [report_event("req-1")])
        assert lambda_api.wait_next_calls(2)
        lambda_api.shutdown_event(reason="timeout")  # e.g. an environment reset
        assert first.wait(timeout=10) == 0
    finally:
        stop_process(first)
    assert list((tmp_path / "spool").iterdir()), "nothing was spooled"

    # The environment restarts (same /tmp) and the collector is back.
    second = start_extension(
        extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url, **spool_env)
    )
    try:
        assert lambda_api.wait_next_calls(3)
        lambda_api.invoke("req-2")
        assert lambda_api.wait_next_calls(4)
        lambda_api.shutdown_event()
        assert second.wait(timeout=10) == 0
    finally:
        stop_process(second)
    telemetry = collector.stored_telemetry()
    assert telemetry[:4] == invocation_events("req-1") + [report_event("req-1")]
    assert {r["request_id"] for r in collector.stored_invocations()} == {"req-1", "req-2"}
    assert not list((tmp_path / "spool").iterdir())
    environment_ids = {b["environment"]["environment_id"] for b in collector.stored_batches()}
    assert len(environment_ids) == 2  # each batch keeps the process that recorded it


def test_sigterm_flushes_and_exits_cleanly(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    process = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url))
    try:
        _wait_ready(lambda_api)
        lambda_api.invoke("req-1")
        lambda_api.post_telemetry(invocation_events("req-1"))
        assert lambda_api.wait_next_calls(2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
    assert "Traceback" not in stderr
    assert collector.stored_telemetry() == invocation_events("req-1")
    assert [r["request_id"] for r in collector.stored_invocations()] == ["req-1"]


def test_end_policy_sends_an_invocations_data_before_calling_next(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    env = extension_env(
        lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url, LAMBDASCOPE_FLUSH_POLICY="end"
    )
    process = start_extension(env)
    try:
        _wait_ready(lambda_api)
        lambda_api.invoke("req-1")
        lambda_api.post_telemetry(invocation_events("req-1")[:2])
        time.sleep(0.2)
        assert len(lambda_api.next_headers) == 1  # still waiting for the runtime to finish
        lambda_api.post_telemetry(invocation_events("req-1")[2:])
        assert lambda_api.wait_next_calls(2)
        # by the time `next` is called, the invocation's data is at the collector
        assert collector.stored_telemetry() == invocation_events("req-1")
        assert [r["request_id"] for r in collector.stored_invocations()] == ["req-1"]
        lambda_api.post_telemetry([event("extension", "bye\n")])  # so SHUTDOWN sends a batch
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)
    stats = collector.stored_batches()[-1]["extension_stats"]
    assert stats["post_runtime_ms_total"] > 0 and stats["invocations"] == 1


def test_register_is_retried_once_the_api_accepts_it(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    lambda_api.register_statuses = [400]  # e.g. the API has not noted the launch yet
    process = start_extension(extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url))
    try:
        _wait_ready(lambda_api)
        assert len(lambda_api.registrations) == 2
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
    assert "register attempt 1 failed" in stderr


def test_a_refused_name_stops_the_extension_with_a_clear_error(
    lambda_api: FakeLambdaApi,
) -> None:
    lambda_api.register_statuses = [403]
    process = start_extension(extension_env(lambda_api))
    try:
        assert process.wait(timeout=10) == 1
    finally:
        _stdout, stderr = stop_process(process)
    assert len(lambda_api.registrations) == 1
    assert "cannot register the extension" in stderr and "'lambdascope'" in stderr
