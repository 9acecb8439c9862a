from __future__ import annotations

from collections.abc import Iterator

import opentelemetry.trace as otel_trace
import pytest
from opentelemetry.util._once import Once

import lambdascope_tracing


def _reset() -> None:
    # OpenTelemetry lets a process set its global provider once; each test starts afresh
    # (the same reset OpenTelemetry's own test utilities do).
    otel_trace._TRACER_PROVIDER_SET_ONCE = Once()
    otel_trace._TRACER_PROVIDER = None
    lambdascope_tracing._created_provider = None
    lambdascope_tracing._cold_start = True


@pytest.fixture(autouse=True)
def fresh_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
        "_X_AMZN_TRACE_ID",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDASCOPE_LISTEN_HOST",
        "LAMBDASCOPE_OTLP_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    _reset()
    try:
        yield
    finally:
        created = lambdascope_tracing._created_provider
        if created is not None:
            created.shutdown()  # stops the batch processor's thread
        provider = otel_trace._TRACER_PROVIDER
        if provider is not None and hasattr(provider, "shutdown"):
            provider.shutdown()
        _reset()
