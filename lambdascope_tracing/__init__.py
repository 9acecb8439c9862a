"""In-function tracing for AWS Lambda handlers with OpenTelemetry, exporting to the lambdascope
extension's local OTLP receiver.

    import lambdascope_tracing

    @lambdascope_tracing.instrument
    def handler(event, context):
        ...

The decorator opens the invocation span with OpenTelemetry's FaaS conventions, joins the
X-Ray trace of the request (`_X_AMZN_TRACE_ID`), records exceptions (and re-raises them), and,
when the process has no tracer provider of its own, sets one up that exports OTLP/JSON to the
extension (`http://localhost:4318/v1/traces` in Lambda, or OTEL_EXPORTER_OTLP_ENDPOINT). The
spans of an invocation leave in one local POST when the handler returns (a fraction of a
millisecond; the extension forwards them later, off the response path), so nothing waits in
a frozen sandbox. Without `opentelemetry-sdk` it degrades to the no-op tracer; without
`opentelemetry-api` the handler is returned unchanged.

Next to OpenTelemetry's `AwsLambdaInstrumentor`, whose span is already current when this
wrapper runs, the decorator opens a child span instead of a second invocation span.

Optional and off by default, `LAMBDASCOPE_TIMEOUT_CAPTURE=1` (or
`instrument(capture_before_timeout=True)`) captures the handler thread's stack and the open
spans shortly before the deadline, so a timeout comes with where the code was stuck: a line
on stderr in the request's log, an event on the invocation span and a span exported at once.
See `lambdascope_tracing._capture` for the margin and the cost.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, overload

from lambdascope_tracing._capture import (
    DEFAULT_CODE_ROOT,
    EVENT_NAME,
    SPAN_NAME,
    CaptureConfig,
    capture_config,
    capture_delay_ms,
    stuck_line,
    take_capture,
    watchdog,
)
from lambdascope_tracing._faas import (
    XRAY_ENV,
    current_request_id,
    default_traces_endpoint,
    faas_trigger,
    invocation_attributes,
    parse_xray_header,
    resource_attributes,
)

__version__ = "0.1.0"
__all__ = [
    "faas_trigger",
    "instrument",
    "invocation_attributes",
    "parse_xray_header",
    "setup_tracing",
    "stats",
]

FLUSH_TIMEOUT_MS_ENV = "LAMBDASCOPE_TRACING_TIMEOUT_MS"
"""Socket timeout of one export to the local receiver (default 250 ms): bounds what a missing
or stuck receiver can cost an invocation."""

_log = logging.getLogger("lambdascope_tracing")
F = TypeVar("F", bound=Callable[..., Any])

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
    from opentelemetry.trace.status import Status, StatusCode

    _HAVE_API = True
except ImportError:  # tested in a subprocess
    _HAVE_API = False

_in_invocation: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lambdascope_tracing_in_invocation", default=False
)
_cold_start = True
_created_provider: Any = None  # the TracerProvider this module set up, if any
stats: dict[str, Any] = {
    "invocations": 0,
    "last_flush_ms": None,
    "max_flush_ms": 0.0,
    "timeout_captures": 0,
}
"""Figures about this module's own cost (the flush after each invocation), for benchmarks."""


def _is_default_provider(provider: Any) -> bool:
    return isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def setup_tracing(environ: dict[str, str] | None = None) -> Any:
    """Give the process a tracer provider that exports to the extension, unless it already has
    one (the user's own, or OpenTelemetry's Lambda layer's): that one is respected. Returns the
    provider this module created (also on later calls), else None. Never raises."""
    global _created_provider
    if not _HAVE_API:
        return None
    if _created_provider is not None:
        return _created_provider
    if not _is_default_provider(trace.get_tracer_provider()):
        return None
    env = dict(os.environ) if environ is None else environ
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        from lambdascope_tracing.exporter import OtlpJsonSpanExporter
    except ImportError:
        _log.info("lambdascope_tracing: opentelemetry-sdk is not installed; spans are no-ops")
        return None
    try:
        timeout_text = env.get(FLUSH_TIMEOUT_MS_ENV, "")
        timeout_ms = int(timeout_text) if timeout_text.strip().isdigit() else 250
        exporter = OtlpJsonSpanExporter(
            default_traces_endpoint(env), timeout_s=max(timeout_ms, 1) / 1000.0
        )
        # Lambda passes `Sampled=0` for every request of a function without active X-Ray
        # tracing; a parent-based sampler would then drop all spans. OTEL_TRACES_SAMPLER, when
        # set, is the SDK's to apply.
        sampler = None if env.get("OTEL_TRACES_SAMPLER") else ALWAYS_ON
        provider = TracerProvider(
            resource=Resource.create(resource_attributes(env)), sampler=sampler
        )
        # The batch processor's own timer rarely fires in Lambda (the sandbox freezes between
        # invocations); `_flush` exports what is left when the handler returns.
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=4096, schedule_delay_millis=5000)
        )
        trace.set_tracer_provider(provider)
    except Exception as exc:  # noqa: BLE001 - tracing must never break the function's init
        _log.warning("lambdascope_tracing: cannot set up tracing (%r); spans are no-ops", exc)
        return None
    if trace.get_tracer_provider() is not provider:
        return None  # someone set a provider concurrently; theirs wins
    _created_provider = provider
    return provider


@overload
def instrument(
    handler: F,
    *,
    tracer_provider: Any = None,
    flush: bool | None = None,
    capture_before_timeout: bool | None = None,
) -> F: ...
@overload
def instrument(
    handler: None = None,
    *,
    tracer_provider: Any = None,
    flush: bool | None = None,
    capture_before_timeout: bool | None = None,
) -> Callable[[F], F]: ...


def instrument(
    handler: Any = None,
    *,
    tracer_provider: Any = None,
    flush: bool | None = None,
    capture_before_timeout: bool | None = None,
) -> Any:
    """Trace a Lambda handler: `@instrument`, `@instrument(tracer_provider=...)` or
    `instrument(handler)`.

    `tracer_provider`: use this provider instead of the global one (or of one set up here).
    `flush`: export the invocation's spans before returning to the runtime; default: only
    for the provider this module set up (a provider of yours is yours to flush).
    `capture_before_timeout`: capture the handler's stack and open spans shortly before the
    deadline; default: LAMBDASCOPE_TIMEOUT_CAPTURE (off). The margin is
    LAMBDASCOPE_TIMEOUT_CAPTURE_MARGIN_MS, read (like the switch) when the handler is decorated.
    """
    if handler is None:
        return lambda inner: instrument(
            inner,
            tracer_provider=tracer_provider,
            flush=flush,
            capture_before_timeout=capture_before_timeout,
        )
    if not _HAVE_API:
        return handler
    capture = capture_config(os.environ, capture_before_timeout)
    created = setup_tracing() if tracer_provider is None else None
    should_flush = flush if flush is not None else created is not None
    module = getattr(handler, "__module__", "handler")
    handler_name = f"{module}.{getattr(handler, '__qualname__', 'handler')}"

    @functools.wraps(handler)
    def traced(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        if _in_invocation.get():
            return handler(event, context, *args, **kwargs)  # decorated twice: one span
        provider = tracer_provider or trace.get_tracer_provider()
        token = _in_invocation.set(True)
        request_id = getattr(context, "aws_request_id", None)
        request_token = current_request_id.set(request_id if isinstance(request_id, str) else None)
        try:
            return _traced_call(
                provider, handler, handler_name, event, context, args, kwargs, capture
            )
        finally:
            _in_invocation.reset(token)
            try:
                if should_flush:
                    _flush(tracer_provider or created)
            finally:
                current_request_id.reset(request_token)

    return traced


def _parent_context(current_valid: bool) -> Any:
    """The context the invocation span starts in: the current one when a span is already
    open (AwsLambdaInstrumentor's), else the X-Ray header's trace, else a fresh root."""
    if current_valid:
        return None
    parsed = parse_xray_header(os.environ.get(XRAY_ENV))
    if parsed is None:
        return otel_context.Context()  # never inherit a stale span from a previous invocation
    trace_id, span_id, sampled = parsed
    parent = SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())


def _traced_call(
    provider: Any,
    handler: Callable[..., Any],
    handler_name: str,
    event: Any,
    context: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    capture: CaptureConfig | None = None,
) -> Any:
    global _cold_start
    cold = _cold_start and os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") not in (
        "provisioned-concurrency",
        "snap-start",
    )
    _cold_start = False
    stats["invocations"] += 1
    try:
        attributes = invocation_attributes(context, event, cold)
        registry = _open_span_registry(provider) if capture and capture.enabled else None
        tracer = provider.get_tracer("lambdascope_tracing", __version__)
        current_valid = trace.get_current_span().get_span_context().is_valid
        parent = _parent_context(current_valid)
        name = handler_name if current_valid else str(attributes.get("faas.name") or handler_name)
        kind = SpanKind.INTERNAL if current_valid else SpanKind.SERVER
        span_cm = tracer.start_as_current_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        span = span_cm.__enter__()
    except Exception as exc:  # noqa: BLE001 - tracing must never break the handler
        _log.warning("lambdascope_tracing: cannot start the invocation span: %r", exc)
        return handler(event, context, *args, **kwargs)
    armed = _arm_capture(capture, provider, tracer, span, context, registry)
    try:
        try:
            result = handler(event, context, *args, **kwargs)
        finally:
            if armed is not None:
                watchdog().disarm(armed)
    except BaseException as exc:
        try:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            span_cm.__exit__(None, None, None)
        raise
    try:
        _response_attributes(span, result)
    finally:
        span_cm.__exit__(None, None, None)
    return result


def _response_attributes(span: Any, result: Any) -> None:
    """HTTP-triggered handlers answer `{"statusCode": ...}`: record it; 5xx is an error."""
    if isinstance(result, dict):
        status = result.get("statusCode")
        if isinstance(status, int) and not isinstance(status, bool):
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))


def _flush(provider: Any) -> None:
    flush = getattr(provider, "force_flush", None)
    if flush is None:
        return
    started = time.perf_counter()
    try:
        flush()
    except Exception as exc:  # noqa: BLE001 - a failed export is logged by the exporter
        _log.debug("lambdascope_tracing: flush failed: %r", exc)
    spent_ms = (time.perf_counter() - started) * 1000.0
    stats["last_flush_ms"] = spent_ms
    stats["max_flush_ms"] = max(stats["max_flush_ms"], spent_ms)


# Providers that already carry an OpenSpanRegistry (added once: processors cannot be removed).
_registries: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_registries_lock = threading.Lock()


def _open_span_registry(provider: Any) -> Any:
    """The OpenSpanRegistry on `provider`, added at the first call; None for a provider without
    span processors (the API's no-op one)."""
    if not hasattr(provider, "add_span_processor"):
        return None
    try:
        with _registries_lock:
            registry = _registries.get(provider)
            if registry is None:
                from lambdascope_tracing._open_spans import OpenSpanRegistry

                registry = OpenSpanRegistry()
                provider.add_span_processor(registry)
                _registries[provider] = registry
            return registry
    except Exception as exc:  # noqa: BLE001 - open span names are a nicety, never a failure
        _log.debug("lambdascope_tracing: cannot track open spans: %r", exc)
        return None


def _remaining_ms(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    try:
        value = remaining()
    except Exception:  # noqa: BLE001 - a context of the user's making may be anything
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _arm_capture(
    capture: CaptureConfig | None,
    provider: Any,
    tracer: Any,
    span: Any,
    context: Any,
    registry: Any,
) -> int | None:
    """Arm the watchdog for this invocation; returns its token, None when there is nothing to
    arm (capture off, no deadline known). Never raises."""
    if capture is None or not capture.enabled:
        return None
    try:
        remaining_ms = _remaining_ms(context)
        delay_ms = (
            None if remaining_ms is None else capture_delay_ms(remaining_ms, capture.margin_ms)
        )
        if remaining_ms is None or delay_ms is None:
            return None
        # The watchdog thread runs the capture in the handler's context: the request id that
        # tags exports, and the invocation span as the current span.
        handler_context = contextvars.copy_context()
        thread_id = threading.get_ident()
        # Half of what is left after the capture point: the export must finish before the kill.
        flush_timeout_ms = int(max(50.0, min((remaining_ms - delay_ms) / 2.0, 1000.0)))

        def fire() -> None:
            handler_context.run(
                _capture_now, provider, tracer, span, context, thread_id, registry, flush_timeout_ms
            )

        return watchdog().arm(delay_ms / 1000.0, fire)
    except Exception as exc:  # noqa: BLE001 - the capture must never break the handler
        _log.warning("lambdascope_tracing: cannot arm the timeout capture: %r", exc)
        return None


def _capture_now(
    provider: Any,
    tracer: Any,
    span: Any,
    context: Any,
    thread_id: int,
    registry: Any,
    flush_timeout_ms: int,
) -> None:
    """On the watchdog thread: record where the handler is, cheapest and surest output first."""
    request_id = current_request_id.get()
    remaining = _remaining_ms(context)
    open_spans = registry.names() if registry is not None else []
    code_root = os.environ.get("LAMBDA_TASK_ROOT") or DEFAULT_CODE_ROOT
    capture = take_capture(thread_id, request_id, open_spans, int(remaining or 0), code_root)
    stats["timeout_captures"] += 1
    try:
        line = stuck_line(request_id, capture.innermost, capture.code_frame)
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError) as exc:  # a closed stderr must not stop the span export
        _log.debug("lambdascope_tracing: cannot print the timeout capture: %r", exc)
    attributes = capture.attributes()
    if span.is_recording():
        span.add_event(EVENT_NAME, attributes)
    # The invocation span is exported only if the handler returns; a span of its own, ended
    # now and flushed at once, survives the kill at the deadline.
    snapshot_attributes = dict(attributes)
    if request_id:
        snapshot_attributes["faas.invocation_id"] = request_id
    snapshot = tracer.start_span(
        SPAN_NAME, context=trace.set_span_in_context(span), attributes=snapshot_attributes
    )
    snapshot.end()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(timeout_millis=flush_timeout_ms)
