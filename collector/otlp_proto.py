"""OTLP/HTTP bodies in either encoding: protobuf or JSON in, rows out, and the replies the
OTLP/HTTP specification asks for, in the request's encoding. Pure functions, no I/O.

Protobuf requests are decoded with the ``opentelemetry-proto`` classes and turned into the
OTLP/JSON shape with ``MessageToDict``, so both encodings go through the one parser in
:mod:`otlp`. Two differences of the protobuf JSON mapping are undone here: ids are
bytes (base64 in ``MessageToDict``'s output, hex in OTLP/JSON) and enums come as numbers
(``use_integers_for_enums``); 64-bit integers arrive as strings, which the parser accepts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from lambdascope.collector import otlp

__all__ = [
    "JSON",
    "PROTOBUF",
    "SIGNALS",
    "Signal",
    "media_type",
    "parse_payload",
    "request_to_dict",
    "response_body",
    "status_body",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)

#: google.rpc.Code values for the error Status the OTLP/HTTP specification puts in replies.
RPC_INVALID_ARGUMENT = 3
RPC_UNAUTHENTICATED = 16
RPC_RESOURCE_EXHAUSTED = 8
RPC_UNAVAILABLE = 14

_ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId"))

Parsed = otlp.ParsedSpans | otlp.ParsedLogs | otlp.ParsedMetrics


@dataclass(frozen=True)
class Signal:
    """One OTLP signal: where its rows go and how its replies are spelled."""

    name: str
    table: str
    parse: Callable[[Any], Parsed]
    request: type[Message]
    response: type[Message]
    partial_success: type[Message]
    #: The partial-success counter: ``rejected_spans`` (protobuf) / ``rejectedSpans`` (JSON).
    rejected_field: str
    #: What one rejected item is called in messages.
    unit: str

    @property
    def rejected_json_key(self) -> str:
        head, *rest = self.rejected_field.split("_")
        return head + "".join(part.title() for part in rest)


SIGNALS: dict[str, Signal] = {
    "traces": Signal(
        "traces",
        "otel_traces",
        otlp.parse_traces,
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
        trace_service_pb2.ExportTracePartialSuccess,
        "rejected_spans",
        "spans",
    ),
    "logs": Signal(
        "logs",
        "otel_logs",
        otlp.parse_logs,
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
        logs_service_pb2.ExportLogsPartialSuccess,
        "rejected_log_records",
        "log records",
    ),
    "metrics": Signal(
        "metrics",
        "otel_metrics",
        otlp.parse_metrics,
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
        metrics_service_pb2.ExportMetricsPartialSuccess,
        "rejected_data_points",
        "data points",
    ),
}


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; none means JSON."""
    return (content_type or JSON).split(";", 1)[0].strip().lower() or JSON


def _hex_ids(value: Any) -> Any:
    """Turn the base64 ids of ``MessageToDict``'s output into OTLP/JSON's hex, in place."""
    if isinstance(value, list):
        for item in value:
            _hex_ids(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                value[key] = base64.b64decode(item).hex()
            elif isinstance(item, dict | list):
                _hex_ids(item)
    return value


def request_to_dict(signal: Signal, data: bytes) -> dict[str, Any]:
    """A protobuf ``Export*ServiceRequest`` as the OTLP/JSON object :mod:`otlp`
    parses; raises :class:`otlp.OtlpError` when ``data`` is not one."""
    message = signal.request()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise otlp.OtlpError(
            f"body is not a protobuf {signal.request.__name__}: {exc}; "
            "send application/json for OTLP/JSON"
        ) from None
    result: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    return _hex_ids(result)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise otlp.OtlpError(f"body is not UTF-8 JSON: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise otlp.OtlpError(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise otlp.OtlpError("body is not valid JSON: nested too deeply") from None


def parse_payload(signal: Signal, data: bytes, media: str) -> Parsed:
    """Rows from one export request body (already without its Content-Encoding).

    Raises :class:`otlp.OtlpError` for a body that is not an export request of ``media``, or
    a media type other than protobuf and JSON.
    """
    if media == PROTOBUF:
        return signal.parse(request_to_dict(signal, data))
    if media == JSON:
        return signal.parse(_json(data))
    raise otlp.OtlpError(f"content type {media!r} is not OTLP: use {PROTOBUF} or {JSON}")


def response_body(signal: Signal, media: str, rejected: int, error_message: str) -> bytes:
    """The ``Export*ServiceResponse``, with a partial success when items were rejected."""
    if media == PROTOBUF:
        response = signal.response()
        if rejected:
            partial = signal.partial_success(error_message=error_message)
            setattr(partial, signal.rejected_field, rejected)
            response.partial_success.CopyFrom(partial)
        return response.SerializeToString()
    if not rejected:
        return b"{}"
    body = {"partialSuccess": {signal.rejected_json_key: rejected, "errorMessage": error_message}}
    return json.dumps(body, separators=(",", ":")).encode()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def status_body(media: str, code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (code, message) in ``media``: the body of an OTLP refusal.

    Written by hand: it is two fields, and googleapis-common-protos is not worth a dependency.
    """
    if media == PROTOBUF:
        text = message.encode("utf-8", "replace")
        return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()


def rpc_code(http_status: int) -> int:
    """The google.rpc.Code that goes with an HTTP refusal."""
    if http_status == 401:
        return RPC_UNAUTHENTICATED
    if http_status == 413:
        return RPC_RESOURCE_EXHAUSTED
    if http_status in (429, 502, 503, 504):
        return RPC_UNAVAILABLE
    return RPC_INVALID_ARGUMENT
