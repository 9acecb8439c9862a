"""The `instrument` decorator: spans, attributes, exceptions, the X-Ray parent, provider
set-up, and export to a real local OTLP receiver (the extension's)."""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import opentelemetry.trace as otel_trace
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import lambdascope_tracing
from lambdascope.collector.otlp import parse_traces
from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.httpio import HttpServer
from lambdascope.extension.otlp import start_receiver

REPO_ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:lambda:us-east-1:123456789012:function:checkout"
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
API_EVENT = {"version": "2.0", "requestContext": {"http": {"method": "GET"}}}


def lambda_context(request_id: str) -> SimpleNamespace:
    return SimpleNamespace(
        aws_request_id=request_id,
        function_name="checkout",
        function_version="$LATEST",
        log_stream_name="2026/11/24/[$LATEST]0123",
        memory_limit_in_mb="256",
        invoked_function_arn=ARN,
    )


@pytest.fixture
def memory() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


class Receiver:
    """The extension's OTLP receiver on loopback, with the request id it tags payloads with."""

    def __init__(self) -> None:
        self.buffer = TelemetryBuffer()
        self.request_id: str | None = None
        self.server: HttpServer
        self.server, _handler = start_receiver(
            "127.0.0.1", 0, self.buffer, lambda: self.request_id, 1 << 20
        )
        self.endpoint = f"http://127.0.0.1:{self.server.port}"

    def items(self) -> list[dict[str, Any]]:
        content = self.buffer.take_batch(100, 1 << 22)
        return content.otlp if content else []


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    fake = Receiver()
    try:
        yield fake
    finally:
        fake.server.close()


def test_invocation_span_has_the_faas_attributes(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = memory

    @lambdascope_tracing.instrument(tracer_provider=provider)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        return {"statusCode": 201}

    assert handler(API_EVENT, lambda_context("req-1")) == {"statusCode": 201}
    assert handler({"n": 2}, lambda_context("req-2")) == {"statusCode": 201}
    first, second = exporter.get_finished_spans()
    assert first.name == "checkout" and first.kind == SpanKind.SERVER
    attributes = dict(first.attributes or {})
    assert attributes["faas.invocation_id"] == "req-1"
    assert attributes["faas.coldstart"] is True
    assert attributes["faas.name"] == "checkout"
    assert attributes["faas.version"] == "$LATEST"
    assert attributes["faas.instance"] == "2026/11/24/[$LATEST]0123"
    assert attributes["faas.max_memory"] == 256 * 1024 * 1024
    assert attributes["cloud.resource_id"] == ARN
    assert attributes["faas.trigger"] == "http"
    assert attributes["http.response.status_code"] == 201
    second_attributes = dict(second.attributes or {})
    assert second_attributes["faas.coldstart"] is False
    assert second_attributes["faas.trigger"] == "other"
    # each invocation is its own trace when there is no X-Ray header
    assert first.context.trace_id != second.context.trace_id
    assert first.parent is None and second.parent is None


def test_exceptions_are_recorded_and_re_raised(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = memory

    @lambdascope_tracing.instrument(tracer_provider=provider)
    def handler(event: Any, context: Any) -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        handler({}, lambda_context("req-err"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ValueError: bad input"
    assert (span.attributes or {})["error.type"] == "ValueError"
    (event,) = span.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "ValueError"


def test_x_ray_header_becomes_the_parent(
    memory: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, exporter = memory
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)
    handler = lambdascope_tracing.instrument(lambda event, context: "ok", tracer_provider=provider)
    assert handler({}, lambda_context("req-x")) == "ok"
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == 0x5759E988BD862E3FE1BE46A994272793
    assert span.parent is not None and span.parent.span_id == 0x53995C3F42CD8AD8
    assert span.parent.is_remote


def test_inside_an_instrumentor_span_a_child_is_opened_not_a_second_invocation_span(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = memory
    tracer = provider.get_tracer("opentelemetry.instrumentation.aws_lambda")

    @lambdascope_tracing.instrument(tracer_provider=provider)
    @lambdascope_tracing.instrument(tracer_provider=provider)  # decorated twice: still one span
    def handler(event: Any, context: Any) -> str:
        return "ok"

    # what AwsLambdaInstrumentor does around the handler it wraps
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER):
        assert handler({}, lambda_context("req-i")) == "ok"
    inner, outer = exporter.get_finished_spans()
    assert outer.kind == SpanKind.SERVER and inner.kind == SpanKind.INTERNAL
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == outer.context.trace_id
    assert (inner.attributes or {})["faas.invocation_id"] == "req-i"
    assert inner.name.endswith("handler")


def test_a_users_global_provider_is_respected(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = memory
    otel_trace.set_tracer_provider(provider)
    handler = lambdascope_tracing.instrument(lambda event, context: 1)
    assert lambdascope_tracing._created_provider is None
    assert handler({}, lambda_context("req-u")) == 1
    spans = exporter.get_finished_spans()
    assert [(s.attributes or {})["faas.invocation_id"] for s in spans] == ["req-u"]


def test_without_a_provider_spans_reach_the_extension_receiver(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "checkout")

    @lambdascope_tracing.instrument
    def handler(event: Any, context: Any) -> str:
        with otel_trace.get_tracer("app").start_as_current_span("charge card"):
            pass
        return "done"

    assert lambdascope_tracing._created_provider is otel_trace.get_tracer_provider()
    for request_id in ("req-1", "req-2"):
        # the extension has not seen this INVOKE yet (a fast handler can beat it): the
        # helper's X-Lambdascope-Request-Id header tags the export exactly all the same
        receiver.request_id = "req-0"
        assert handler({"n": 1}, lambda_context(request_id)) == "done"
        # flushed before the handler returned: nothing waits in a frozen sandbox
        items = receiver.items()
        assert [(i["signal"], i["request_id"]) for i in items] == [("traces", request_id)]
        body = json.loads(base64.b64decode(items[0]["body_b64"]))
        parsed = parse_traces(body)  # the collector's own parser takes it
        assert parsed.rejected == 0 and len(parsed.rows) == 2
        spans = [
            span
            for resource in body["resourceSpans"]
            for scope in resource["scopeSpans"]
            for span in scope["spans"]
        ]
        by_name = {span["name"]: span for span in spans}
        root = by_name["checkout"]
        assert by_name["charge card"]["parentSpanId"] == root["spanId"]
        attributes = {a["key"]: a["value"] for a in root["attributes"]}
        assert attributes["faas.invocation_id"] == {"stringValue": request_id}
        assert attributes["faas.max_memory"] == {"intValue": str(256 * 1024 * 1024)}
        resource = {
            a["key"]: a["value"] for a in body["resourceSpans"][0]["resource"]["attributes"]
        }
        assert resource["service.name"] == {"stringValue": "checkout"}
    # the cost the handler pays for its spans: one loopback POST
    assert lambdascope_tracing.stats["last_flush_ms"] < 50


def test_unsampled_x_ray_requests_are_still_traced_by_the_provider_set_up_here(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER.replace("Sampled=1", "Sampled=0"))
    handler = lambdascope_tracing.instrument(lambda event, context: None)
    handler({}, lambda_context("req-0"))
    (item,) = receiver.items()
    span = json.loads(base64.b64decode(item["body_b64"]))["resourceSpans"][0]["scopeSpans"][0]
    assert span["spans"][0]["traceId"] == "5759e988bd862e3fe1be46a994272793"
    assert span["spans"][0]["parentSpanId"] == "53995c3f42cd8ad8"


def test_a_missing_receiver_costs_a_log_line_not_the_invocation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    handler = lambdascope_tracing.instrument(lambda event, context: "still works")
    with caplog.at_level(logging.WARNING, logger="lambdascope_tracing"):
        started = time.perf_counter()
        for n in range(3):
            assert handler({}, lambda_context(f"req-{n}")) == "still works"
        elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    warnings = [r.getMessage() for r in caplog.records if "cannot export spans" in r.getMessage()]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0]


def test_without_the_sdk_the_decorator_is_a_harmless_no_op() -> None:
    script = (
        "import sys; sys.modules['opentelemetry.sdk'] = None\n"
        "import lambdascope_tracing\n"
        "@lambdascope_tracing.instrument\n"
        "def handler(event, context):\n"
        "    return event['n'] * 2\n"
        "assert lambdascope_tracing._created_provider is None\n"
        "print(handler({'n': 21}, None))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42" and "Traceback" not in result.stderr


def test_without_the_api_the_handler_is_returned_unchanged() -> None:
    script = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import lambdascope_tracing\n"
        "def handler(event, context):\n"
        "    return 'plain'\n"
        "assert lambdascope_tracing.instrument(handler) is handler\n"
        "print(handler(None, None))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "plain"
