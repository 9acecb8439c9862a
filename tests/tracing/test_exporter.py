"""The stdlib OTLP/JSON exporter: endpoint parsing, HTTP responses, reconnection."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.otlp import start_receiver
from lambdascope_tracing.exporter import (
    ExportHttpError,
    OtlpJsonSpanExporter,
    encode_spans,
    read_status,
    split_endpoint,
)


def test_endpoints_are_split_without_urllib() -> None:
    assert split_endpoint("http://127.0.0.1:4318/v1/traces") == (
        False,
        "127.0.0.1",
        4318,
        "/v1/traces",
    )
    assert split_endpoint("https://collector.example.com/otlp/v1/traces?x=1") == (
        True,
        "collector.example.com",
        443,
        "/otlp/v1/traces?x=1",
    )
    assert split_endpoint("http://[::1]:4318") == (False, "::1", 4318, "/")
    for bad in ("localhost:4318", "ftp://x/", "http://:80/", "http://host:port/"):
        with pytest.raises(ValueError, match="OTLP endpoint"):
            split_endpoint(bad)


def test_responses_are_read_to_their_end() -> None:
    keep = io.BytesIO(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}NEXT")
    assert read_status(keep) == (200, True) and keep.read() == b"NEXT"
    chunked = io.BytesIO(
        b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT"
    )
    assert read_status(chunked) == (400, True) and chunked.read() == b"NEXT"
    closing = io.BytesIO(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nrest")
    assert read_status(closing) == (200, False)
    assert read_status(io.BytesIO(b"HTTP/1.0 204 No Content\r\n\r\n")) == (204, False)
    with pytest.raises(ExportHttpError):
        read_status(io.BytesIO(b"garbage\r\n\r\n"))
    with pytest.raises(ExportHttpError):
        read_status(io.BytesIO(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))


def _spans() -> list:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t", "1.0")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.set_attribute("n", 3)
        root.set_attribute("ratio", 0.5)
        root.set_attribute("tags", ["a", "b"])
        with tracer.start_as_current_span("child") as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "boom"))
    return list(exporter.get_finished_spans())


def test_encoding_follows_the_otlp_json_mapping() -> None:
    child, root = _spans()
    body = json.loads(encode_spans([child, root]))
    (resource,) = body["resourceSpans"]
    assert {"key": "service.name", "value": {"stringValue": "checkout"}} in resource["resource"][
        "attributes"
    ]
    (scope,) = resource["scopeSpans"]
    assert scope["scope"] == {"name": "t", "version": "1.0"}
    encoded_child, encoded_root = scope["spans"]
    assert encoded_root["kind"] == 2  # SPAN_KIND_SERVER
    assert encoded_child["kind"] == 1  # SPAN_KIND_INTERNAL
    assert len(encoded_root["traceId"]) == 32 and len(encoded_root["spanId"]) == 16
    assert encoded_child["parentSpanId"] == encoded_root["spanId"]
    assert "parentSpanId" not in encoded_root
    assert encoded_child["status"] == {"code": 2, "message": "boom"}
    attributes = {a["key"]: a["value"] for a in encoded_root["attributes"]}
    assert attributes["n"] == {"intValue": "3"}
    assert attributes["ratio"] == {"doubleValue": 0.5}
    assert attributes["tags"] == {
        "arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}
    }
    assert encoded_child["events"][0]["name"] == "retry"
    assert int(encoded_root["endTimeUnixNano"]) >= int(encoded_root["startTimeUnixNano"]) > 0


@pytest.fixture
def receiver_port() -> Iterator[int]:
    server, _handler = start_receiver("127.0.0.1", 0, TelemetryBuffer(), lambda: None, 1 << 20)
    try:
        yield server.port
    finally:
        server.close()


def test_a_connection_closed_while_frozen_is_reopened() -> None:
    """The peer closes the kept-alive connection after each answer without saying so (as an
    idle timeout does while the sandbox is frozen): the next export reconnects once."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    requests: list[bytes] = []

    def serve() -> None:
        for _ in range(2):  # two connections, one request each
            try:
                conn, _peer = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += conn.recv(65536)
                requests.append(body)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    exporter = OtlpJsonSpanExporter(f"http://127.0.0.1:{port}/v1/traces", timeout_s=2)
    try:
        assert exporter.export(_spans()) == SpanExportResult.SUCCESS
        thread.join(timeout=0.2)  # the server has closed the first connection by now
        assert exporter.export(_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
        listener.close()
        thread.join(timeout=5)
    assert len(requests) == 2 and all(json.loads(body)["resourceSpans"] for body in requests)
    assert exporter.exported_spans == 4 and exporter.dropped_spans == 0


def test_rejections_are_counted_as_drops(receiver_port: int) -> None:
    exporter = OtlpJsonSpanExporter(f"http://127.0.0.1:{receiver_port}/v2/nowhere")
    try:
        assert exporter.export(_spans()) == SpanExportResult.FAILURE
        assert exporter.export([]) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert exporter.dropped_spans == 2 and exporter.exported_spans == 0


def test_a_hung_receiver_costs_one_timeout_then_is_skipped_for_a_while() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), never answers
        port = listener.getsockname()[1]
        exporter = OtlpJsonSpanExporter(f"http://127.0.0.1:{port}/v1/traces", timeout_s=0.1)
        try:
            started = time.perf_counter()
            assert exporter.export(_spans()) == SpanExportResult.FAILURE
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(5):
                assert exporter.export(_spans()) == SpanExportResult.FAILURE
            later_s = time.perf_counter() - started
        finally:
            exporter.shutdown()
    assert 0.1 <= first_s < 1.0
    assert later_s < 0.05  # within the backoff nothing waits on the socket
    assert exporter.requests == 1 and exporter.dropped_spans == 12
