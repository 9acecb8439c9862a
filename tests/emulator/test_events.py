"""Pure builders and validators: no sockets, no processes."""

from __future__ import annotations

import base64
import re

import pytest

from lambdascope.emulator import events


def subscribe_body(**overrides):
    body = {
        "schemaVersion": "2022-12-13",
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/t"},
        "types": ["platform", "function"],
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize("schema", ["2022-07-01", "2022-12-13", "2025-01-29"])
def test_subscription_accepts_every_schema_version_with_lambdas_defaults(schema):
    sub = events.parse_subscription(subscribe_body(schemaVersion=schema))
    assert (sub.max_items, sub.max_bytes, sub.timeout_ms) == (10_000, 262_144, 1_000)
    assert sub.types == ("platform", "function")


@pytest.mark.parametrize(
    "buffering",
    [
        {"maxItems": 999},
        {"maxItems": 10_001},
        {"maxBytes": 262_143},
        {"maxBytes": 1_048_577},
        {"timeoutMs": 24},
        {"timeoutMs": 30_001},
        {"timeoutMs": "25"},
    ],
)
def test_subscription_rejects_buffering_outside_lambdas_limits(buffering):
    key = next(iter(buffering))
    with pytest.raises(events.SubscriptionError, match=f"buffering.{key}"):
        events.parse_subscription(subscribe_body(buffering=buffering))


def test_subscription_accepts_the_limits_themselves():
    sub = events.parse_subscription(
        subscribe_body(buffering={"maxItems": 1000, "maxBytes": 1_048_576, "timeoutMs": 25})
    )
    assert (sub.max_items, sub.max_bytes, sub.timeout_ms) == (1000, 1_048_576, 25)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"schemaVersion": "2020-08-15"}, "schemaVersion"),
        ({"types": []}, "types"),
        ({"types": ["platform", "logs"]}, "types"),
        ({"destination": {"protocol": "HTTP", "URI": "ftp://x"}}, "destination.URI"),
        ({"destination": "http://x"}, "destination"),
    ],
)
def test_subscription_errors_name_the_field(overrides, field):
    with pytest.raises(events.SubscriptionError, match=re.escape(field)):
        events.parse_subscription(subscribe_body(**overrides))


def test_sandbox_hosts_resolve_to_the_environment_address():
    assert events.resolve_destination("http://sandbox.localdomain:4243/t", "127.77.1.2") == (
        "127.77.1.2",
        4243,
        "/t",
    )
    assert events.resolve_destination("http://sandbox:80", "127.77.1.2")[:2] == ("127.77.1.2", 80)
    with pytest.raises(events.SubscriptionError, match="sandbox.localdomain"):
        events.resolve_destination("http://example.com:80/", "127.77.1.2")


def test_billed_duration_rounds_up_and_bills_init_on_cold_start():
    assert events.billed_duration_ms(15.01, None) == 16
    assert events.billed_duration_ms(15.0, None) == 15
    assert events.billed_duration_ms(15.74, 130.49) == 147


def test_report_record_has_lambdas_fields():
    metrics = events.ReportMetrics(12.3456, 256, 61, init_duration_ms=100.0)
    event = events.report(
        0.0, "rid", status="success", error_type=None, metrics=metrics, trace_id=None
    )
    assert event == {
        "time": "1970-01-01T00:00:00.000Z",
        "type": "platform.report",
        "record": {
            "requestId": "rid",
            "status": "success",
            "metrics": {
                "durationMs": 12.346,
                "billedDurationMs": 113,
                "memorySizeMB": 256,
                "maxMemoryUsedMB": 61,
                "initDurationMs": 100.0,
            },
        },
    }


def test_report_line_matches_cloudwatch():
    line = events.report_line("rid", events.ReportMetrics(15.74, 128, 56, 130.49), "timeout", None)
    assert line == (
        "REPORT RequestId: rid\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 128 MB"
        "\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\tStatus: timeout\t\n"
    )


def test_timeout_line_and_message_use_two_decimals():
    assert events.timeout_line(1.5, "rid", 3) == (
        "1970-01-01T00:00:01.500Z rid Task timed out after 3.00 seconds\n"
    )
    assert (
        events.timeout_message("rid", 0.5)
        == "RequestId: rid Error: Task timed out after 0.50 seconds"
    )


def test_runtime_exit_message_names_the_signal_or_status():
    assert events.runtime_exit_message("r", -9).endswith(
        "Runtime exited with error: signal: killed"
    )
    assert events.runtime_exit_message("r", 1).endswith("Runtime exited with error: exit status 1")


def test_log_records_are_strings_in_text_and_objects_in_json():
    text = events.log_record("function", "hello", 0.0, "Text")
    assert text["record"] == "hello\n" and text["type"] == "function"
    obj = events.log_record("function", '{"level": "INFO", "message": "m"}\n', 0.0, "JSON")
    assert obj["record"] == {"level": "INFO", "message": "m"}
    plain = events.log_record("extension", "not json\n", 0.0, "JSON")
    assert plain["record"] == "not json\n"


def test_log_tail_keeps_the_last_4_kb():
    lines = [f"line {i}\n" for i in range(2000)]
    tail = base64.b64decode(events.log_tail(lines))
    assert len(tail) == 4096 and tail.endswith(b"line 1999\n")


def test_shutdown_reason_is_lower_case_and_invoke_event_has_tracing_only_with_a_trace():
    assert events.shutdown_event("SPINDOWN", 5)["shutdownReason"] == "spindown"
    assert "tracing" not in events.invoke_event("r", 1, "arn", None)
    assert events.invoke_event("r", 1, "arn", "Root=1-x")["tracing"] == {
        "type": "X-Amzn-Trace-Id",
        "value": "Root=1-x",
    }


def test_trace_id_and_log_stream_shapes():
    assert re.fullmatch(
        r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", events.new_trace_id(1e9)
    )
    assert events.log_stream_name(0.0, "$LATEST", "ab" * 16) == "1970/01/01/[$LATEST]" + "ab" * 16


def frame(message: bytes, stamp_us: int = 1_500_000) -> bytes:
    header = b"\xa5\x5a\x00\x03" + len(message).to_bytes(4, "big") + stamp_us.to_bytes(8, "big")
    return header + message


def test_log_frames_split_into_messages_with_their_timestamps():
    from lambdascope.emulator.procs import split_frames, split_lines

    data = frame(b"one\n") + frame(b"two\nlines")
    records, rest = split_frames(data + frame(b"partial")[:10])
    assert records == [(b"one\n", 1.5), (b"two\nlines", 1.5)]
    assert rest == frame(b"partial")[:10]
    assert split_frames(b"not a frame at all\n") == ([(b"not a frame at all\n", None)], b"")
    assert split_lines(b"a\nb\nc") == ([(b"a\n", None), (b"b\n", None)], b"c")


def test_tcp_destinations_need_a_tcp_uri_with_a_port():
    tcp = {"protocol": "TCP", "URI": "tcp://sandbox.localdomain:4244"}
    assert events.parse_subscription(subscribe_body(destination=tcp)).protocol == "TCP"
    no_port = {"protocol": "TCP", "URI": "tcp://sandbox.localdomain"}
    with pytest.raises(events.SubscriptionError, match="needs a port"):
        events.parse_subscription(subscribe_body(destination=no_port))
    with pytest.raises(events.SubscriptionError, match="destination.protocol"):
        events.parse_subscription(subscribe_body(destination={"protocol": "UDP", "URI": "x"}))
