"""The extension in a Lambda Managed Instances environment: requests overlap, extensions get no
INVOKE event, and the Telemetry API's events open and close the invocation records."""

from __future__ import annotations

import json
import time
from typing import Any

from lambdascope.extension.batch import (
    build_batch_json,
    telemetry_invocation_record,
    telemetry_time_ms,
)
from lambdascope.extension.buffer import TelemetryBuffer, next_open_request_ids
from lambdascope.extension.logfilter import LogFilter
from lambdascope.extension.otlp import OtlpHandler, span_invocation_id
from lambdascope.extension.procstats import EnvironmentSampler
from tests.extension.fakes import (
    FakeCollector,
    FakeLambdaApi,
    extension_env,
    start_extension,
    stop_process,
)

T = "2026-11-24T07:00:00.%03dZ"


def start(request_id: str, ms: int = 0) -> dict[str, Any]:
    return {"time": T % ms, "type": "platform.start", "record": {"requestId": request_id}}


def report(request_id: str, ms: int = 0, status: str = "success") -> dict[str, Any]:
    record = {"requestId": request_id, "status": status, "metrics": {"durationMs": 5.0}}
    return {"time": T % ms, "type": "platform.report", "record": record}


def line(text: str, ms: int = 0) -> dict[str, Any]:
    return {"time": T % ms, "type": "function", "record": text}


def test_windows_open_beside_each_other_and_close_at_their_report() -> None:
    windows: tuple[str, ...] = ()
    for kind, rid in [("platform.start", "a"), ("platform.start", "b"), ("platform.start", "a")]:
        windows = next_open_request_ids(windows, kind, rid)
    assert windows == ("a", "b")
    assert next_open_request_ids(windows, "platform.report", "a") == ("b",)
    assert next_open_request_ids(windows, "platform.report", "zzz") == ("a", "b")


def test_batches_carry_every_window_open_before_their_first_event() -> None:
    buffer = TelemetryBuffer(concurrent=True)
    buffer.append_events([start("a"), start("b"), line("x")])
    first = buffer.take_batch(2, 1 << 20)
    assert first is not None
    assert (first.open_request_id, first.open_request_ids) == (None, ())
    buffer.append_events([start("c"), report("a")])
    second = buffer.take_batch(100, 1 << 20)
    assert second is not None
    assert second.open_request_ids == ("a", "b")
    assert buffer.open_request_ids() == ("b", "c")
    body = json.loads(build_batch_json("id", 1, {}, {}, None, [], [], None, None, ("b", "c")))
    assert body["open_request_ids"] == ["b", "c"]
    # On demand the batch keeps its old shape.
    plain = json.loads(build_batch_json("id", 1, {}, {}, "a", [], []))
    assert "open_request_ids" not in plain and plain["open_request_id"] == "a"


def test_the_lifecycle_hook_hears_starts_and_reports_only() -> None:
    buffer = TelemetryBuffer(concurrent=True)
    heard: list[str] = []
    buffer.on_lifecycle = lambda event: heard.append(event["type"])
    buffer.append_events([start("a"), line("x"), report("a")])
    assert heard == ["platform.start", "platform.report"]


def test_records_come_from_platform_start() -> None:
    event = start("a", 123)
    event["record"]["tracing"] = {"type": "X-Amzn-Trace-Id", "value": "Root=1-abc"}
    record = telemetry_invocation_record(event)
    assert record == {
        "request_id": "a",
        "deadline_ms": None,
        "received_at_ms": 1795503600123,
        "invoked_function_arn": None,
        "trace_id": "Root=1-abc",
    }
    assert telemetry_time_ms("2026-11-24T07:00:00Z") == 1795503600000
    assert telemetry_time_ms("not a time") is None
    assert telemetry_invocation_record({"type": "platform.start", "record": {}}) is None


def test_the_environment_sampler_gives_each_overlapping_request_the_environments_figures() -> None:
    done: list[dict[str, Any]] = []
    sampler = EnvironmentSampler(0.005, sink=done.append).start()
    try:
        for rid in ("a", "b", "c"):
            sampler.open({"request_id": rid})
        for _ in range(200):
            if sampler.open_count() == 3:
                break
            time.sleep(0.005)
        time.sleep(0.03)
        sampler.close("b")
        for _ in range(200):
            if done:
                break
            time.sleep(0.005)
        sampler.finish()
    finally:
        sampler.stop()
    by_id = {r["request_id"]: r["proc"] for r in done}
    assert set(by_id) == {"a", "b", "c"}
    for proc in by_id.values():
        assert proc["scope"] == "environment"
        assert proc["max_concurrent_requests"] == 3
        assert proc["samples"] >= 2


def _attribute(key: bytes, value: bytes) -> bytes:
    any_value = b"\x0a" + bytes([len(value)]) + value
    body = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(any_value)]) + any_value
    return b"\x4a" + bytes([len(body)]) + body  # Span.attributes, field 9


def _traces_pb(*invocation_ids: str) -> bytes:
    spans = b""
    for rid in invocation_ids:
        span = b"\x2a\x04work" + _attribute(b"faas.invocation_id", rid.encode())
        spans += b"\x12" + bytes([len(span)]) + span  # ScopeSpans.spans, field 2
    scope = b"\x12" + bytes([len(spans)]) + spans  # ResourceSpans.scope_spans, field 2
    return b"\x0a" + bytes([len(scope)]) + scope  # resource_spans, field 1


def test_span_invocation_ids_are_read_from_protobuf_and_json() -> None:
    pb = "application/x-protobuf"
    assert span_invocation_id(_traces_pb("req-b"), pb, "", 1 << 20) == "req-b"
    assert span_invocation_id(_traces_pb("req-b", "req-b"), pb, "", 1 << 20) == "req-b"
    assert span_invocation_id(_traces_pb("req-a", "req-b"), pb, "", 1 << 20) is None
    assert span_invocation_id(_traces_pb(), pb, "", 1 << 20) is None
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "attributes": [
                                    {"key": "faas.invocation_id", "value": {"stringValue": "req-j"}}
                                ]
                            }
                        ]
                    }
                ]
            }
        ]
    }
    assert span_invocation_id(json.dumps(body).encode(), "application/json", "", 1 << 20) == (
        "req-j"
    )


def test_otlp_exports_are_tagged_by_their_spans_while_several_requests_are_open() -> None:
    buffer = TelemetryBuffer(concurrent=True)
    opened: tuple[str, ...] = ("req-a", "req-b")
    handler = OtlpHandler(
        buffer,
        lambda: opened[0] if len(opened) == 1 else None,
        1 << 20,
        open_request_ids=lambda: opened,
    )
    headers = {"content-type": "application/x-protobuf"}
    assert handler("POST", "/v1/traces", headers, _traces_pb("req-b"))[0] == 200
    assert handler("POST", "/v1/traces", headers, _traces_pb())[0] == 200
    opened = ("req-a",)
    assert handler("POST", "/v1/traces", headers, _traces_pb())[0] == 200
    batch = buffer.take_batch(100, 1 << 20)
    assert batch is not None
    assert [item["request_id"] for item in batch.otlp] == ["req-b", None, "req-a"]


def test_the_log_filter_samples_a_line_naming_no_request_only_when_one_is_open() -> None:
    # rate 0: a line of a known request is dropped; a line of no known request is kept.
    log_filter = LogFilter(sample_rate=0.0, concurrent=True)
    kept = log_filter.apply([start("a"), line("one open"), start("b"), line("two open")])
    assert [e["record"] for e in kept if e["type"] == "function"] == ["two open"]


def test_registers_for_shutdown_only_and_records_from_telemetry(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    env = extension_env(
        lambda_api,
        LAMBDASCOPE_COLLECTOR_URL=collector.url,
        AWS_LAMBDA_INITIALIZATION_TYPE="lambda-managed-instances",
        LAMBDASCOPE_PROC_SAMPLE_INTERVAL_MS="5",
    )
    process = start_extension(env)
    try:
        assert lambda_api.wait_next_calls(1)
        assert lambda_api.registrations[0][1] == {"events": ["SHUTDOWN"]}
        assert lambda_api.subscriptions[0][1]["schemaVersion"] == "2025-01-29"
        events = [start("r1", 1), start("r2", 2), start("r3", 3), line("print", 4)]
        events += [report("r2", 20), report("r1", 30, "error"), report("r3", 40, "timeout")]
        assert lambda_api.post_telemetry(events) == 200
        time.sleep(0.2)
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)
    records = [r for _h, b in collector.requests for r in b["invocations"]]
    assert sorted(r["request_id"] for r in records) == ["r1", "r2", "r3"]
    for record in records:
        assert record["deadline_ms"] is None
        # The sampler starts on the setup thread: a request that began before it has no
        # figures; one with figures has the environment's.
        if "proc" in record:
            assert record["proc"]["scope"] == "environment"
            assert record["proc"]["max_concurrent_requests"] == 3
