"""The local OTLP/HTTP receiver: pure checks, the handler, and real HTTP against the agent."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket

import pytest

from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.otlp import (
    OtlpHandler,
    PayloadTooLarge,
    check_protobuf,
    decompressed,
    start_receiver,
)
from tests.extension.fakes import (
    FakeCollector,
    FakeLambdaApi,
    extension_env,
    start_extension,
    stop_process,
)

# ExportTraceServiceRequest{resource_spans: [ResourceSpans{scope_spans: [ScopeSpans{}]}]}
TRACES_PB = b"\x0a\x04\x12\x02\x0a\x00"
TRACES_JSON = b'{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}'
PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


def _handler(request_id: str | None = "req-1", max_bytes: int = 4096) -> OtlpHandler:
    return OtlpHandler(TelemetryBuffer(), lambda: request_id, max_bytes, clock_ms=lambda: 1234)


def _taken_otlp(buffer: TelemetryBuffer) -> list[dict]:
    content = buffer.take_batch(100, 1 << 20)
    return content.otlp if content else []


def test_protobuf_walk_accepts_messages_and_names_broken_fields() -> None:
    check_protobuf(b"")
    check_protobuf(TRACES_PB)
    check_protobuf(b"\x08\x96\x01\x11" + b"\x00" * 8 + b"\x1d" + b"\x00" * 4)
    with pytest.raises(ValueError, match="runs past the end"):
        check_protobuf(b"\x0a\x10\x00")
    with pytest.raises(ValueError, match="wire type"):
        check_protobuf(b"\x0b")
    with pytest.raises(ValueError, match="field number 0"):
        check_protobuf(b"\x00\x00")
    with pytest.raises(ValueError):
        check_protobuf(b'{"resourceSpans": []}')  # JSON sent as protobuf


def test_gzip_is_checked_and_bounded() -> None:
    assert decompressed(gzip.compress(TRACES_JSON), "gzip", 1000) == TRACES_JSON
    with pytest.raises(ValueError, match="not valid gzip"):
        decompressed(b"not gzip at all", "gzip", 1000)
    with pytest.raises(ValueError, match="truncated"):
        decompressed(gzip.compress(TRACES_JSON)[:-12], "gzip", 1000)
    bomb = gzip.compress(b"\x00" * 100_000)
    with pytest.raises(PayloadTooLarge):
        decompressed(bomb, "gzip", 4096)


def test_accepted_payloads_are_kept_raw_and_tagged_with_the_open_request() -> None:
    handler = _handler()
    body = gzip.compress(TRACES_PB)
    assert handler("POST", "/v1/traces", {**PB, "content-encoding": "gzip"}, body) == (
        200,
        b"",
        "application/x-protobuf",
    )
    status, reply, content_type = handler(
        "POST", "/v1/logs", {"content-type": "application/json; charset=utf-8"}, TRACES_JSON
    )
    assert (status, reply, content_type) == (200, b"{}", "application/json")
    # the exporter's own tag wins over the open INVOKE; a malformed one is ignored
    tagged = {**JS, "x-lambdascope-request-id": "req-exact"}
    assert handler("POST", "/v1/traces", tagged, TRACES_JSON)[0] == 200
    junk = {**JS, "x-lambdascope-request-id": "x" * 200}
    assert handler("POST", "/v1/traces", junk, TRACES_JSON)[0] == 200
    items = _taken_otlp(handler.buffer)
    assert [i["request_id"] for i in items[2:]] == ["req-exact", "req-1"]
    items = items[:2]
    assert [i["signal"] for i in items] == ["traces", "logs"]
    assert items[0] == {
        "signal": "traces",
        "content_type": "application/x-protobuf",
        "content_encoding": "gzip",
        "request_id": "req-1",
        "received_at_ms": 1234,
        "body_b64": base64.b64encode(body).decode(),
    }
    assert items[1]["content_encoding"] is None
    assert base64.b64decode(items[1]["body_b64"]) == TRACES_JSON


def test_bad_requests_get_otlp_status_codes_and_are_not_buffered() -> None:
    handler = _handler(max_bytes=2048)
    status, reply, content_type = handler("POST", "/v1/traces", PB, b"\x0a\x10\x00")
    assert status == 400 and content_type == "application/x-protobuf"
    assert reply.startswith(b"\x08\x03\x12") and b"runs past the end" in reply
    status, reply, _ = handler("POST", "/v1/metrics", JS, b"[1, 2]")
    assert status == 400 and json.loads(reply)["code"] == 3
    assert "expected an export request object" in json.loads(reply)["message"]
    assert handler("POST", "/v1/traces", {"content-type": "text/plain"}, b"x")[0] == 415
    assert handler("POST", "/v1/traces", {**JS, "content-encoding": "br"}, b"{}")[0] == 415
    assert handler("POST", "/v1/traces", JS, b"{" + b" " * 3000 + b"}")[0] == 413
    bomb = gzip.compress(b"{" + b" " * 100_000 + b"}")
    assert handler("POST", "/v1/traces", {**JS, "content-encoding": "gzip"}, bomb)[0] == 413
    assert handler("POST", "/v2/spans", JS, b"{}")[0] == 404
    assert handler("GET", "/v1/traces", {}, b"")[0] == 405
    assert handler.rejected == 6
    assert _taken_otlp(handler.buffer) == []


def test_otlp_buffer_is_bounded_and_counts_drops() -> None:
    buffer = TelemetryBuffer(otlp_max_bytes=4096)
    handler = OtlpHandler(buffer, lambda: None, 1 << 20)
    payload = b'{"resourceLogs": [], "pad": "' + b"x" * 1000 + b'"}'
    for _ in range(10):
        assert handler("POST", "/v1/logs", JS, payload)[0] == 200
    assert buffer.dropped_otlp == 8
    items = _taken_otlp(buffer)
    assert len(items) == 2 and items[0]["request_id"] is None


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_receiver_answers_real_http_quickly_with_keep_alive() -> None:
    buffer = TelemetryBuffer()
    server, _handler = start_receiver("127.0.0.1", 0, buffer, lambda: "req-9", 1 << 20)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            for _ in range(3):  # the SDK's exporter reuses its connection
                connection.request("POST", "/v1/traces", TRACES_PB, dict(PB))
                response = connection.getresponse()
                assert (response.status, response.read()) == (200, b"")
                assert response.getheader("Content-Type") == "application/x-protobuf"
        finally:
            connection.close()
        oversized = b"{" + b" " * (3 << 19) + b"}"  # 1.5 MiB: read, then refused
        assert _post(server.port, "/v1/logs", oversized, dict(JS))[0] == 413
    finally:
        server.close()
    assert [i["request_id"] for i in _taken_otlp(buffer)] == ["req-9"] * 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_agent_forwards_exports_to_the_collector_tagged_with_the_invocation(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    port = _free_port()
    env = extension_env(
        lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url, LAMBDASCOPE_OTLP_PORT=str(port)
    )
    process = start_extension(env)
    try:
        assert lambda_api.wait_next_calls(1)
        # during init no invocation is open
        assert _post(port, "/v1/metrics", b'{"resourceMetrics": []}', dict(JS))[0] == 200
        lambda_api.invoke("req-1")
        assert lambda_api.wait_next_calls(2)
        body = gzip.compress(TRACES_PB)
        reply = _post(port, "/v1/traces", body, {**PB, "Content-Encoding": "gzip"})
        assert reply == (200, "application/x-protobuf", b"")
        assert _post(port, "/v1/traces", b"garbage", dict(PB))[0] == 400
        lambda_api.invoke("req-2")
        assert lambda_api.wait_next_calls(3)
        assert _post(port, "/v1/logs", TRACES_JSON, dict(JS))[0] == 200
        lambda_api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
    assert "Traceback" not in stderr
    items = [item for batch in collector.stored_batches() for item in batch.get("otlp", [])]
    assert [(i["signal"], i["request_id"]) for i in items] == [
        ("metrics", None),
        ("traces", "req-1"),
        ("logs", "req-2"),
    ]
    assert base64.b64decode(items[1]["body_b64"]) == body
    assert items[1]["content_encoding"] == "gzip"
    stats = collector.stored_batches()[-1]["extension_stats"]
    assert stats["otlp_received"] == 3 and stats["otlp_rejected"] == 1
    assert stats["otlp_dropped"] == 0


def test_a_taken_otlp_port_is_a_log_line_not_a_crash(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        env = extension_env(
            lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url, LAMBDASCOPE_OTLP_PORT=str(port)
        )
        process = start_extension(env)
        try:
            assert lambda_api.wait_next_calls(1)
            lambda_api.shutdown_event()
            assert process.wait(timeout=10) == 0
        finally:
            _stdout, stderr = stop_process(process)
    assert f"cannot listen for OTLP on 127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr
