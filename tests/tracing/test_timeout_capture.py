"""The optional "stuck where?" capture: shortly before the deadline, the handler's stack and the
open spans go to stderr, to an event on the invocation span, and out at once as a span."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lambdascope_tracing
from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.layer import build_layer_dir
from lambdascope.extension.otlp import start_receiver
from lambdascope_tracing import _capture
from lambdascope_tracing._capture import (
    CAPTURE_ENV,
    MARGIN_MS_ENV,
    WATCHDOG_THREAD_NAME,
    Watchdog,
    capture_config,
    capture_delay_ms,
    default_margin_ms,
    format_stack,
    frame_lines,
)
from tests.extension.fakes import FakeCollector

CAPTURE = "lambdascope.timeout_capture"


class FakeContext:
    """A Lambda context whose deadline is `remaining_ms` from its creation."""

    def __init__(self, request_id: str, remaining_ms: float) -> None:
        self.aws_request_id = request_id
        self.function_name = "orders"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = "128"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:orders"
        self._deadline = time.monotonic() + remaining_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def wait_on_downstream(seconds: float) -> None:
    time.sleep(seconds)


def watchdog_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WATCHDOG_THREAD_NAME]


@pytest.fixture(autouse=True)
def stopped_watchdog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(CAPTURE_ENV, raising=False)
    monkeypatch.delenv(MARGIN_MS_ENV, raising=False)
    try:
        yield
    finally:
        _capture.stop_watchdog()
    assert not watchdog_threads()


@pytest.fixture
def memory() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# ---- pure parts ----


def test_the_switch_and_margin_fall_back_with_one_log_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert capture_config({}) == (False, None)
    assert capture_config({CAPTURE_ENV: "1"}) == (True, None)
    assert capture_config({CAPTURE_ENV: "true", MARGIN_MS_ENV: "800"}) == (True, 800)
    assert capture_config({CAPTURE_ENV: "1"}, enabled=False).enabled is False
    assert capture_config({CAPTURE_ENV: "0"}, enabled=True).enabled is True
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="lambdascope_tracing"):
        assert capture_config({CAPTURE_ENV: "maybe"}) == (False, None)
        assert capture_config({CAPTURE_ENV: "1", MARGIN_MS_ENV: "-5"}) == (True, None)
        assert capture_config({CAPTURE_ENV: "1", MARGIN_MS_ENV: "1.5s"}) == (True, None)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert CAPTURE_ENV in messages[0] and "'maybe'" in messages[0] and "stays off" in messages[0]
    assert MARGIN_MS_ENV in messages[1] and "'-5'" in messages[1] and "default" in messages[1]


def test_the_default_margin_is_lumigos() -> None:
    assert default_margin_ms(3_000) == 500  # min(300, 3000) -> at least 500
    assert default_margin_ms(15_000) == 1_500
    assert default_margin_ms(900_000) == 3_000
    assert capture_delay_ms(700, None) == 200
    assert capture_delay_ms(10_000, 2_000) == 8_000
    # a margin longer than the invocation captures half-way, not at once
    assert capture_delay_ms(400, None) == 200
    assert capture_delay_ms(0, None) is None


def _recurse(depth: int) -> list[str]:
    if depth:
        return _recurse(depth - 1)
    return frame_lines(sys._getframe(), max_frames=10)


def test_stacks_keep_the_innermost_frames_last_and_are_bounded() -> None:
    lines = _recurse(30)
    assert len(lines) == 11 and lines[0].endswith("outer frame(s) omitted")
    assert lines[-1].startswith(__file__ + ":") and lines[-1].endswith(" _recurse")
    text = format_stack([f"/var/task/app.py:{n} f{n}" for n in range(1000)], max_chars=200)
    assert len(text) <= 200 and text.endswith("/var/task/app.py:999 f999")


def explode() -> None:
    raise RuntimeError("a capture that fails")


def test_the_watchdog_fires_once_on_one_reused_thread_unless_disarmed() -> None:
    dog = Watchdog(name="test-watchdog")
    fired: list[str] = []
    try:
        assert not dog.running  # nothing started until the first arm
        kept = dog.arm(0.05, lambda: fired.append("kept"))
        cancelled = dog.arm(0.05, lambda: fired.append("cancelled"))
        assert dog.disarm(cancelled)
        for _ in range(100):
            if fired:
                break
            time.sleep(0.01)
        assert not dog.disarm(kept)  # already ran
        for _ in range(5):
            dog.disarm(dog.arm(10.0, lambda: fired.append("late")))
        assert [t.name for t in threading.enumerate()].count("test-watchdog") == 1
        dog.arm(0.0, explode)  # a failing callback does not kill the thread
        dog.arm(0.02, lambda: fired.append("after failure"))
        for _ in range(100):
            if len(fired) == 2:
                break
            time.sleep(0.01)
    finally:
        dog.stop()
    assert fired == ["kept", "after failure"]
    assert not dog.running


# ---- the decorator ----


def test_a_stuck_handler_is_captured_before_its_deadline(
    memory: tuple[TracerProvider, InMemorySpanExporter], capsys: pytest.CaptureFixture[str]
) -> None:
    provider, exporter = memory
    tracer = provider.get_tracer("app")

    @lambdascope_tracing.instrument(tracer_provider=provider, capture_before_timeout=True)
    def handler(event: Any, context: Any) -> str:
        with tracer.start_as_current_span("query orders"):
            wait_on_downstream(0.6)  # the capture comes at 700 - 500 = 200 ms
        return "late"

    started = time.monotonic()
    assert handler({}, FakeContext("req-stuck", remaining_ms=700)) == "late"
    assert time.monotonic() - started < 1.0

    stderr = capsys.readouterr().err
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("[lambdascope]")]
    assert line.startswith("[lambdascope] invocation req-stuck is about to time out; stuck at ")
    assert line.endswith(" wait_on_downstream") and "test_timeout_capture.py:" in line

    spans = {span.name: span for span in exporter.get_finished_spans()}
    invocation, snapshot = spans["orders"], spans[CAPTURE]
    (event,) = [e for e in invocation.events if e.name == CAPTURE]
    event_attributes: dict[str, Any] = dict(event.attributes or {})
    stack = str(event_attributes["code.stacktrace"]).splitlines()
    assert stack[-1].endswith(" wait_on_downstream")
    assert any(frame.endswith(" handler") for frame in stack[:-1])
    assert list(event_attributes["lambdascope.open_spans"]) == ["orders", "query orders"]
    assert 0 < event_attributes["lambdascope.remaining_ms"] <= 520
    # the snapshot span carries the same, names the request and hangs off the invocation span
    snapshot_attributes = attrs(snapshot)
    assert snapshot_attributes["faas.invocation_id"] == "req-stuck"
    assert snapshot_attributes["code.stacktrace"] == event_attributes["code.stacktrace"]
    assert snapshot.parent is not None and snapshot.parent.span_id == invocation.context.span_id
    assert snapshot.end_time is not None and invocation.end_time is not None
    assert snapshot.end_time < invocation.end_time  # out before the handler gave up
    assert lambdascope_tracing.stats["timeout_captures"] >= 1


def test_a_handler_returning_in_time_leaves_no_trace(
    memory: tuple[TracerProvider, InMemorySpanExporter], capsys: pytest.CaptureFixture[str]
) -> None:
    provider, exporter = memory

    @lambdascope_tracing.instrument(tracer_provider=provider, capture_before_timeout=True)
    def handler(event: Any, context: Any) -> str:
        wait_on_downstream(0.01)
        return "quick"

    for n in range(3):
        assert handler({}, FakeContext(f"req-{n}", remaining_ms=400)) == "quick"
    time.sleep(0.35)  # past the capture points (200 ms) of all three invocations
    assert "[lambdascope]" not in capsys.readouterr().err
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["orders"] * 3
    assert all(not span.events for span in spans)
    dog = _capture.watchdog()
    assert dog.fired == 0
    assert len(watchdog_threads()) == 1  # one thread for all invocations


def test_disabled_starts_no_thread_and_captures_nothing(
    memory: tuple[TracerProvider, InMemorySpanExporter], capsys: pytest.CaptureFixture[str]
) -> None:
    provider, exporter = memory
    processors_before = len(provider._active_span_processor._span_processors)

    @lambdascope_tracing.instrument(tracer_provider=provider)
    def handler(event: Any, context: Any) -> str:
        wait_on_downstream(0.3)  # past where an enabled capture would fire (150 ms)
        return "slow"

    assert handler({}, FakeContext("req-off", remaining_ms=300)) == "slow"
    assert not watchdog_threads()
    assert "[lambdascope]" not in capsys.readouterr().err
    (span,) = exporter.get_finished_spans()
    assert not span.events
    # no processor was added to the provider: spans cost what they did
    assert len(provider._active_span_processor._span_processors) == processors_before


def wait_on_queue(seconds: float) -> None:
    with contextlib.suppress(queue.Empty):
        queue.Queue().get(timeout=seconds)


def test_a_stack_stuck_in_a_library_also_names_the_functions_own_line(
    memory: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider, _exporter = memory
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(Path(__file__).parent))
    handler = lambdascope_tracing.instrument(
        lambda event, context: wait_on_queue(0.4),
        tracer_provider=provider,
        capture_before_timeout=True,
    )
    handler({}, FakeContext("req-lib", remaining_ms=300))
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[lambdascope]")]
    stuck_at, _, called_from = line.partition(" (called from ")
    assert "/threading.py:" in stuck_at and stuck_at.endswith(" wait")  # in the stdlib
    assert called_from.startswith(__file__ + ":") and called_from.endswith(" wait_on_queue)")


def test_the_environment_switch_and_an_invalid_margin(
    memory: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider, exporter = memory
    monkeypatch.setenv(CAPTURE_ENV, "1")
    monkeypatch.setenv(MARGIN_MS_ENV, "soon")
    with caplog.at_level(logging.WARNING, logger="lambdascope_tracing"):

        @lambdascope_tracing.instrument(tracer_provider=provider)
        def handler(event: Any, context: Any) -> None:
            wait_on_downstream(0.4)

        handler({}, FakeContext("req-env-1", remaining_ms=600))
        handler({}, FakeContext("req-env-2", remaining_ms=600))
    warnings = [r.getMessage() for r in caplog.records if MARGIN_MS_ENV in r.getMessage()]
    assert len(warnings) == 1  # read once, when the handler is decorated
    # the default margin applies: 600 - 500 = 100 ms, well inside the 400 ms the handler took
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[lambdascope]")]
    assert [ln.split()[2] for ln in lines] == ["req-env-1", "req-env-2"]
    assert len([s for s in exporter.get_finished_spans() if s.name == CAPTURE]) == 2


def test_an_odd_context_or_a_no_op_provider_never_breaks_the_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def raising() -> int:
        raise RuntimeError("no deadline here")

    @lambdascope_tracing.instrument(
        tracer_provider=otel_trace.NoOpTracerProvider(), capture_before_timeout=True
    )
    def handler(event: Any, context: Any) -> str:
        wait_on_downstream(0.35)  # a capture would come at 150 ms
        return "fine"

    odd = SimpleNamespace(aws_request_id="req-odd", get_remaining_time_in_millis=raising)
    assert handler({}, odd) == "fine"
    assert handler({}, None) == "fine"
    assert not watchdog_threads()  # no deadline: nothing armed
    # with the API's no-op tracer the stderr line still says where the handler was
    assert handler({}, FakeContext("req-noop", remaining_ms=300)) == "fine"
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[lambdascope]")]
    assert "req-noop" in line and line.endswith(" wait_on_downstream")


def test_the_capture_span_reaches_the_extension_receiver_while_the_handler_is_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = TelemetryBuffer()
    server, _handler = start_receiver("127.0.0.1", 0, buffer, lambda: None, 1 << 20)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv(CAPTURE_ENV, "1")
    monkeypatch.setenv(MARGIN_MS_ENV, "300")
    seen_while_stuck: list[dict[str, Any]] = []

    def take() -> list[dict[str, Any]]:
        content = buffer.take_batch(100, 1 << 22)
        return content.otlp if content else []

    @lambdascope_tracing.instrument
    def handler(event: Any, context: Any) -> str:
        wait_on_downstream(0.6)  # the capture comes at 600 - 300 = 300 ms
        seen_while_stuck.extend(take())
        return "done"

    try:
        assert handler({}, FakeContext("req-recv", remaining_ms=600)) == "done"
        after = take()
    finally:
        server.close()
    # exported before the handler returned, tagged with the request by the helper's header
    (item,) = seen_while_stuck
    assert item["request_id"] == "req-recv"
    body = json.loads(base64.b64decode(item["body_b64"]))
    (span,) = [s for r in body["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
    assert span["name"] == CAPTURE
    attributes = {a["key"]: a["value"] for a in span["attributes"]}
    assert attributes["faas.invocation_id"] == {"stringValue": "req-recv"}
    assert attributes["code.stacktrace"]["stringValue"].endswith(" wait_on_downstream")
    assert attributes["lambdascope.open_spans"] == {
        "arrayValue": {"values": [{"stringValue": "orders"}]}
    }
    # the invocation span follows when the handler returns, with the capture as its event
    (final,) = after
    body = json.loads(base64.b64decode(final["body_b64"]))
    (root,) = [s for r in body["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
    assert root["name"] == "orders" and [e["name"] for e in root["events"]] == [CAPTURE]
    assert root["spanId"] == span["parentSpanId"]


# ---- with the emulator: a real timeout ----

STUCK_HANDLER = """
import time
import lambdascope_tracing

def wait_on_downstream():
    time.sleep(30)

@lambdascope_tracing.instrument
def handler(event, context):
    wait_on_downstream()
"""


def test_a_real_timeout_logs_where_it_was_stuck_and_ships_the_capture(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(STUCK_HANDLER)
    layer = tmp_path / "layer"
    build_layer_dir(layer, python_packages=True)
    collector = FakeCollector().start()
    fn = FunctionConfig(
        name="orders",
        handler="app.handler",
        code_dir=code,
        timeout_s=1.0,
        layers=(layer,),
        environment={
            "LAMBDASCOPE_COLLECTOR_URL": collector.url,
            "LAMBDASCOPE_SPOOL_DIR": str(tmp_path / "spool"),
            CAPTURE_ENV: "1",
        },
    )
    try:
        with Emulator([fn]) as emu:
            result = emu.invoke("orders", b"{}", log_type="Tail")
        # leaving the emulator shut the environment down: the extension flushed
    finally:
        collector.stop()
    assert result.function_error == "Unhandled"
    assert b"Task timed out" in result.payload
    log = base64.b64decode(result.log_result or "").decode()
    request_id = result.request_id
    (line,) = [ln for ln in log.splitlines() if "[lambdascope]" in ln]
    assert f"invocation {request_id} is about to time out; stuck at " in line
    assert line.rstrip().endswith("app.py:6 wait_on_downstream")
    # the function log line reached the collector attributed to the request
    function_lines = [
        e
        for e in collector.stored_telemetry()
        if e["type"] == "function" and "[lambdascope]" in str(e["record"])
    ]
    assert len(function_lines) == 1
    # the capture span reached the collector once, tagged with the request, though the
    # invocation span itself died with the process
    names: list[tuple[str | None, str]] = []
    for batch in collector.stored_batches():
        for item in batch.get("otlp", []):
            body = json.loads(base64.b64decode(item["body_b64"]))
            for resource in body["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    names.extend((item["request_id"], s["name"]) for s in scope["spans"])
    assert names == [(request_id, CAPTURE)]
