"""Pure builders of what the sandbox says: Telemetry API events, extension events, log lines,
Invoke API error bodies, trace ids. No sockets, no clocks read here: times are parameters.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
TELEMETRY_TYPES = ("platform", "function", "extension")
# Lambda's buffering limits: (default, min, max).
BUFFERING_LIMITS = {
    "maxItems": (10_000, 1_000, 10_000),
    "maxBytes": (262_144, 262_144, 1_048_576),
    "timeoutMs": (1_000, 25, 30_000),
}
SANDBOX_HOSTS = ("sandbox.localdomain", "sandbox")
TAIL_BYTES = 4096

Event = dict[str, Any]


def iso_ms(t: float) -> str:
    """Epoch seconds -> '2022-10-12T00:00:15.064Z' (Lambda's millisecond ISO-8601 UTC)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def envelope(event_type: str, record: Any, t: float) -> Event:
    return {"time": iso_ms(t), "type": event_type, "record": record}


def category(event: Event) -> str:
    """'platform', 'function' or 'extension': the subscription type an event belongs to."""
    return str(event["type"]).split(".", 1)[0]


def ms(seconds: float) -> float:
    """Seconds -> milliseconds rounded to 3 decimals (Lambda reports e.g. 15.738)."""
    return round(seconds * 1000.0, 3)


def span(name: str, start: float, duration_s: float) -> dict[str, Any]:
    return {"name": name, "start": iso_ms(start), "durationMs": ms(duration_s)}


def tracing(trace_id: str | None) -> dict[str, str] | None:
    return {"type": "X-Amzn-Trace-Id", "value": trace_id} if trace_id else None


def _with(record: dict[str, Any], **optional: Any) -> dict[str, Any]:
    record.update({k: v for k, v in optional.items() if v is not None})
    return record


def init_start(
    t: float,
    *,
    initialization_type: str,
    phase: str,
    function_name: str,
    function_version: str,
    instance_id: str,
    memory_size_mb: int,
    runtime_version: str,
) -> Event:
    return envelope(
        "platform.initStart",
        {
            "initializationType": initialization_type,
            "phase": phase,
            "runtimeVersion": runtime_version,
            "runtimeVersionArn": f"arn:aws:lambda:local::runtime:{runtime_version}",
            "functionName": function_name,
            "functionVersion": function_version,
            "instanceId": instance_id,
            "instanceMaxMemory": memory_size_mb * 1024 * 1024,
        },
        t,
    )


def telemetry_subscription(t: float, name: str, types: list[str]) -> Event:
    return envelope(
        "platform.telemetrySubscription",
        {"name": name, "state": "Subscribed", "types": list(types)},
        t,
    )


def init_runtime_done(
    t: float, *, initialization_type: str, phase: str, status: str, error_type: str | None
) -> Event:
    record = {"initializationType": initialization_type, "phase": phase, "status": status}
    return envelope("platform.initRuntimeDone", _with(record, errorType=error_type), t)


def extension_state(
    t: float, name: str, state: str, events: list[str], error_type: str | None = None
) -> Event:
    record = {"name": name, "state": state, "events": list(events)}
    return envelope("platform.extension", _with(record, errorType=error_type), t)


def init_report(
    t: float,
    *,
    initialization_type: str,
    phase: str,
    status: str,
    error_type: str | None,
    duration_s: float,
) -> Event:
    record = {
        "initializationType": initialization_type,
        "phase": phase,
        "status": status,
        "metrics": {"durationMs": ms(duration_s)},
    }
    return envelope("platform.initReport", _with(record, errorType=error_type), t)


def start(
    t: float, request_id: str, *, version: str, function_arn: str, trace_id: str | None
) -> Event:
    record = {"requestId": request_id, "version": version, "functionArn": function_arn}
    return envelope("platform.start", _with(record, tracing=tracing(trace_id)), t)


def runtime_done(
    t: float,
    request_id: str,
    *,
    status: str,
    error_type: str | None,
    duration_s: float,
    produced_bytes: int | None,
    spans: list[dict[str, Any]] | None,
    trace_id: str | None,
) -> Event:
    metrics: dict[str, Any] = {"durationMs": ms(duration_s)}
    if produced_bytes is not None:
        metrics["producedBytes"] = produced_bytes
    record = {"requestId": request_id, "status": status, "metrics": metrics}
    _with(record, errorType=error_type, spans=spans or None, tracing=tracing(trace_id))
    return envelope("platform.runtimeDone", record, t)


def billed_duration_ms(duration_ms: float, init_duration_ms: float | None) -> int:
    """Whole ms; an on-demand cold start bills init too (Lambda, since 2025-08-01)."""
    return math.ceil(duration_ms + (init_duration_ms or 0.0))


@dataclass(frozen=True)
class ReportMetrics:
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None

    def as_record(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            "durationMs": round(self.duration_ms, 3),
            "billedDurationMs": billed_duration_ms(self.duration_ms, self.init_duration_ms),
            "memorySizeMB": self.memory_size_mb,
            "maxMemoryUsedMB": self.max_memory_used_mb,
        }
        if self.init_duration_ms is not None:
            metrics["initDurationMs"] = round(self.init_duration_ms, 3)
        return metrics


def report(
    t: float,
    request_id: str,
    *,
    status: str,
    error_type: str | None,
    metrics: ReportMetrics,
    trace_id: str | None,
) -> Event:
    record = {"requestId": request_id, "status": status, "metrics": metrics.as_record()}
    _with(record, errorType=error_type, tracing=tracing(trace_id))
    return envelope("platform.report", record, t)


def logs_dropped(t: float, dropped_records: int, dropped_bytes: int) -> Event:
    return envelope(
        "platform.logsDropped",
        {
            "droppedBytes": dropped_bytes,
            "droppedRecords": dropped_records,
            "reason": "Consumer seems to have fallen behind as it has not acknowledged receipt "
            "of logs.",
        },
        t,
    )


def log_record(stream: str, line: str, t: float, log_format: str) -> Event:
    """A `function` or `extension` record: the raw line (newline kept) in Text format; in JSON
    format a line that is a JSON object is passed as the object."""
    record: Any = line if line.endswith("\n") else line + "\n"
    if log_format == "JSON":
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            record = parsed
    return envelope(stream, record, t)


def record_text(record: Any) -> str:
    """A log record as one text line with newline (for Tail and CloudWatch-style logs)."""
    text = record if isinstance(record, str) else json.dumps(record, separators=(",", ":"))
    return text if text.endswith("\n") else text + "\n"


# --- lines Lambda writes to the function's log -------------------------------------------


def timeout_message(request_id: str, timeout_s: float) -> str:
    return f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"


def timeout_line(t: float, request_id: str, timeout_s: float) -> str:
    return f"{iso_ms(t)} {request_id} Task timed out after {timeout_s:.2f} seconds\n"


def runtime_exit_message(request_id: str, returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        import signal

        try:
            how = f"signal: {signal.Signals(-returncode).name[3:].lower()}"
        except ValueError:
            how = f"signal: {-returncode}"
        if returncode == -9:
            how = "signal: killed"
    else:
        how = f"exit status {returncode}"
    return f"RequestId: {request_id} Error: Runtime exited with error: {how}"


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str, metrics: ReportMetrics, status: str, error_type: str | None
) -> str:
    m = metrics.as_record()
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {m['durationMs']:.2f} ms",
        f"Billed Duration: {m['billedDurationMs']} ms",
        f"Memory Size: {m['memorySizeMB']} MB",
        f"Max Memory Used: {m['maxMemoryUsedMB']} MB",
    ]
    if "initDurationMs" in m:
        parts.append(f"Init Duration: {m['initDurationMs']:.2f} ms")
    if status != "success":
        parts.append(f"Status: {status}")
        if error_type:
            parts.append(f"Error Type: {error_type}")
    return "\t".join(parts) + "\t\n"


def log_tail(lines: list[str]) -> str:
    """The last 4 KB of an invocation's log, base64 (X-Amz-Log-Result)."""
    data = "".join(lines).encode("utf-8")[-TAIL_BYTES:]
    return base64.b64encode(data).decode("ascii")


# --- extension events ---------------------------------------------------------------------


def invoke_event(
    request_id: str, deadline_ms: int, function_arn: str, trace_id: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventType": "INVOKE",
        "deadlineMs": deadline_ms,
        "requestId": request_id,
        "invokedFunctionArn": function_arn,
    }
    return _with(body, tracing=tracing(trace_id))


def shutdown_event(reason: str, deadline_ms: int) -> dict[str, Any]:
    return {"eventType": "SHUTDOWN", "deadlineMs": deadline_ms, "shutdownReason": reason.lower()}


def new_trace_id(t: float) -> str:
    """An X-Ray trace header as Lambda passes it when active tracing is off (Sampled=0)."""
    return f"Root=1-{int(t):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def log_stream_name(t: float, version: str, instance_hex: str) -> str:
    day = datetime.fromtimestamp(t, UTC).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{instance_hex}"


# --- Telemetry API subscriptions ------------------------------------------------------------


class SubscriptionError(ValueError):
    """A Telemetry API subscribe request is invalid (400 ValidationError)."""


@dataclass(frozen=True)
class Subscription:
    schema_version: str
    protocol: str
    uri: str
    types: tuple[str, ...]
    max_items: int
    max_bytes: int
    timeout_ms: int


def parse_subscription(body: Any) -> Subscription:
    """Validate a `PUT /2022-07-01/telemetry` body against Lambda's rules."""
    if not isinstance(body, dict):
        raise SubscriptionError("request body must be a JSON object")
    schema = body.get("schemaVersion")
    if schema not in SCHEMA_VERSIONS:
        raise SubscriptionError(f"schemaVersion {schema!r} is not one of {list(SCHEMA_VERSIONS)}")
    types = body.get("types")
    if (
        not isinstance(types, list)
        or not types
        or any(t not in TELEMETRY_TYPES for t in types)
        or len(set(types)) != len(types)
    ):
        raise SubscriptionError(
            f"types {types!r} must be a non-empty subset of {list(TELEMETRY_TYPES)}"
        )
    destination = body.get("destination")
    if not isinstance(destination, dict):
        raise SubscriptionError("destination must be an object with protocol and URI")
    protocol = destination.get("protocol")
    uri = destination.get("URI")
    if protocol not in ("HTTP", "TCP"):
        raise SubscriptionError(f"destination.protocol {protocol!r} must be 'HTTP' or 'TCP'")
    scheme = "http" if protocol == "HTTP" else "tcp"
    if not isinstance(uri, str) or urlsplit(uri).scheme != scheme or not urlsplit(uri).hostname:
        raise SubscriptionError(f"destination.URI {uri!r} must be a {scheme}:// URI")
    if protocol == "TCP" and urlsplit(uri).port is None:
        raise SubscriptionError(f"destination.URI {uri!r} needs a port")
    buffering = body.get("buffering") or {}
    if not isinstance(buffering, dict):
        raise SubscriptionError("buffering must be an object")
    values = {}
    for key, (default, low, high) in BUFFERING_LIMITS.items():
        value = buffering.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SubscriptionError(f"buffering.{key} {value!r} must be an integer in {low}-{high}")
        values[key] = value
    return Subscription(
        schema_version=schema,
        protocol=protocol,
        uri=uri,
        types=tuple(types),
        max_items=values["maxItems"],
        max_bytes=values["maxBytes"],
        timeout_ms=values["timeoutMs"],
    )


def resolve_destination(uri: str, sandbox_address: str) -> tuple[str, int, str]:
    """(host, port, path) to POST to; `sandbox.localdomain`/`sandbox` mean the environment's
    own address. Other hosts must be loopback: telemetry never leaves the machine."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if host in SANDBOX_HOSTS:
        host = sandbox_address
    elif host != "localhost" and not host.startswith("127."):
        raise SubscriptionError(
            f"destination.URI host {host!r} must be sandbox.localdomain (the environment)"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, parts.port or 80, path


# --- Invoke API errors ----------------------------------------------------------------------


def error_body(error_type: str, message: str) -> bytes:
    """A failed invocation's payload as its caller gets it (with `X-Amz-Function-Error`)."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def aws_error(error_type: str, message: str, **extra: Any) -> bytes:
    body = {"Type": "User", "message": message, **extra}
    return json.dumps(body).encode("utf-8")
