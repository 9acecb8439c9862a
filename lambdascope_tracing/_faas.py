"""Pure helpers: the FaaS attributes of an invocation, the trigger from the event's shape, and
the X-Ray trace header. No OpenTelemetry import here, so they are tested without it."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from typing import Any

XRAY_ENV = "_X_AMZN_TRACE_ID"
MB = 1024 * 1024
REQUEST_ID_HEADER = "X-Lambdascope-Request-Id"
"""Sent with the exports made while a request is served, so the extension tags them exactly
(its own notion of the open invocation may lag a fast handler by a fraction of a ms)."""

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lambdascope_tracing_request_id", default=None
)


def faas_trigger(event: object) -> str:
    """OpenTelemetry's `faas.trigger` from the shape of a Lambda event.

    http: API Gateway (REST and HTTP APIs), function URLs, ALB; pubsub: SQS, SNS, Kinesis,
    EventBridge events other than schedules; datasource: S3, DynamoDB streams; timer:
    EventBridge / CloudWatch scheduled events and EventBridge Scheduler; other: the rest.
    """
    if not isinstance(event, Mapping):
        return "other"
    request_context = event.get("requestContext")
    if "httpMethod" in event or (
        isinstance(request_context, Mapping)
        and (
            "http" in request_context or "elb" in request_context or "httpMethod" in request_context
        )
    ):
        return "http"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        first = records[0]
        source = str(first.get("eventSource") or first.get("EventSource") or "").lower()
        if source in ("aws:s3", "aws:dynamodb"):
            return "datasource"
        if source in ("aws:sqs", "aws:sns", "aws:kinesis", "aws:mq", "aws:kafka"):
            return "pubsub"
    event_source = event.get("source")
    if event.get("detail-type") == "Scheduled Event" or event_source == "aws.scheduler":
        return "timer"
    if isinstance(event_source, str) and "detail-type" in event:
        return "pubsub"
    return "other"


def parse_xray_header(value: str | None) -> tuple[int, int, bool] | None:
    """`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1` ->
    (trace id, parent span id, sampled). None when the header has no usable Root and Parent
    (Lambda sets only Root when the caller had no trace: nothing to join then)."""
    if not value:
        return None
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, text = part.strip().partition("=")
        if sep:
            fields[key.strip().lower()] = text.strip()
    root = fields.get("root", "").split("-")
    parent = fields.get("parent", "")
    if len(root) != 3 or root[0] != "1" or len(root[1]) != 8 or len(root[2]) != 24:
        return None
    if len(parent) != 16:
        return None
    try:
        trace_id = int(root[1] + root[2], 16)
        span_id = int(parent, 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, fields.get("sampled") == "1"


def _memory_bytes(context: object, environ: Mapping[str, str]) -> int | None:
    raw = getattr(context, "memory_limit_in_mb", None) or environ.get(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
    )
    try:
        return int(raw) * MB if raw is not None else None
    except (TypeError, ValueError):
        return None


def invocation_attributes(
    context: object, event: object, cold_start: bool, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The invocation span's attributes (OpenTelemetry FaaS semantic conventions), from the
    Lambda context object, falling back to Lambda's environment variables."""
    env = os.environ if environ is None else environ
    arn = getattr(context, "invoked_function_arn", None)
    attributes: dict[str, Any] = {
        "faas.invocation_id": getattr(context, "aws_request_id", None),
        "faas.coldstart": cold_start,
        "faas.name": getattr(context, "function_name", None) or env.get("AWS_LAMBDA_FUNCTION_NAME"),
        "faas.version": getattr(context, "function_version", None)
        or env.get("AWS_LAMBDA_FUNCTION_VERSION"),
        "faas.instance": getattr(context, "log_stream_name", None)
        or env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        "faas.max_memory": _memory_bytes(context, env),
        "faas.trigger": faas_trigger(event),
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        "cloud.resource_id": arn,
    }
    if isinstance(arn, str) and arn.count(":") >= 5:
        attributes["cloud.account.id"] = arn.split(":")[4]
    return {key: value for key, value in attributes.items() if value is not None}


def resource_attributes(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Attributes of the process (set once on the tracer provider we create)."""
    env = os.environ if environ is None else environ
    name = env.get("AWS_LAMBDA_FUNCTION_NAME")
    attributes: dict[str, Any] = {
        "service.name": env.get("OTEL_SERVICE_NAME") or name or "unknown_service",
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        "faas.name": name,
        "faas.version": env.get("AWS_LAMBDA_FUNCTION_VERSION"),
        "faas.instance": env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        "faas.max_memory": _memory_bytes(None, env),
        "telemetry.distro.name": "lambdascope_tracing",
    }
    return {key: value for key, value in attributes.items() if value is not None}


def default_traces_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is), else
    OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else the extension's receiver on the Runtime
    API's host (127.0.0.1 in Lambda, i.e. localhost; the environment's own loopback address
    under the lambdascope emulator) at LAMBDASCOPE_OTLP_PORT (4318): the same address the
    extension binds (LAMBDASCOPE_LISTEN_HOST when set)."""
    env = os.environ if environ is None else environ
    explicit = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    if explicit:
        return explicit
    base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    if base:
        return base.rstrip("/") + "/v1/traces"
    runtime_api = (env.get("AWS_LAMBDA_RUNTIME_API") or "").strip()
    host = (env.get("LAMBDASCOPE_LISTEN_HOST") or "").strip()
    if not host and ":" in runtime_api:
        host = runtime_api.rpartition(":")[0]
    port = (env.get("LAMBDASCOPE_OTLP_PORT") or "").strip()
    if not port.isdigit():
        port = "4318"
    return "http://{}:{}/v1/traces".format(host or "localhost", port)
