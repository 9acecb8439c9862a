"""An OTLP/HTTP JSON span exporter on the standard library (a kept-alive socket; not
`http.client`, whose imports of ssl and email cost ~10 ms of every cold start), so the layer
needs no protobuf or requests. It posts to the lambdascope
extension's local receiver, where an export costs well under a millisecond.

Failures are logged once per streak and never raised into the handler; spans that could not
be sent are counted in `dropped_spans`.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from lambdascope_tracing._faas import REQUEST_ID_HEADER, current_request_id

_log = logging.getLogger("lambdascope_tracing")
MAX_BACKOFF_S = 60.0


def any_value(value: Any) -> dict[str, Any]:
    """An OTLP/JSON AnyValue (64-bit integers as strings, as the JSON mapping asks)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    return {"stringValue": str(value)}


def key_values(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in (attributes or {}).items()]


def _span_json(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    out: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
        "name": span.name,
        # OTLP's SpanKind counts from SPAN_KIND_UNSPECIFIED = 0; the API's from INTERNAL = 0.
        "kind": span.kind.value + 1,
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
        "attributes": key_values(span.attributes),
        "status": {"code": span.status.status_code.value},
    }
    if span.parent is not None and span.parent.span_id:
        out["parentSpanId"] = f"{span.parent.span_id:016x}"
    if context.trace_state:
        out["traceState"] = context.trace_state.to_header()
    if span.status.description:
        out["status"]["message"] = span.status.description
    if span.events:
        out["events"] = [
            {
                "timeUnixNano": str(event.timestamp),
                "name": event.name,
                "attributes": key_values(event.attributes),
            }
            for event in span.events
        ]
    if span.links:
        out["links"] = [
            {
                "traceId": f"{link.context.trace_id:032x}",
                "spanId": f"{link.context.span_id:016x}",
                "attributes": key_values(link.attributes),
            }
            for link in span.links
        ]
    return out


class ExportHttpError(Exception):
    """The endpoint's answer is not a well-formed HTTP/1.1 response."""


def split_endpoint(endpoint: str) -> tuple[bool, str, int, str]:
    """`http://127.0.0.1:4318/v1/traces` -> (tls, host, port, path); ValueError if not
    an http(s) URL."""
    scheme, sep, rest = endpoint.strip().partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError(
            f"OTLP endpoint {endpoint!r} is not an http(s) URL; set "
            "OTEL_EXPORTER_OTLP_ENDPOINT to e.g. http://localhost:4318"
        )
    tls = scheme.lower() == "https"
    hostport, slash, path = rest.partition("/")
    if hostport.startswith("["):
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text.lstrip(":")
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, ""
    if not host or (port_text and not port_text.isdigit()):
        raise ValueError(f"OTLP endpoint {endpoint!r} has no valid host and port")
    port = int(port_text) if port_text else (443 if tls else 80)
    return tls, host, port, "/" + path if slash else "/"


def read_status(rfile: BinaryIO) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; returns (status, whether the connection stays open)."""
    parts = rfile.readline(65537).split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ExportHttpError("bad status line")
    status = int(parts[1])
    length: int | None = None
    keep_alive = parts[0] != b"HTTP/1.0"
    chunked = False
    for _ in range(101):
        line = rfile.readline(65537)
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ExportHttpError("connection closed inside the headers")
        name, _, value = line.partition(b":")
        key, text = name.strip().lower(), value.strip().lower()
        if key == b"content-length" and text.isdigit():
            length = int(text)
        elif key == b"connection":
            keep_alive = text != b"close"
        elif key == b"transfer-encoding":
            chunked = b"chunked" in text
    else:
        raise ExportHttpError("more than 100 header lines")
    if chunked:
        for _ in range(10000):
            size = int(rfile.readline(100).split(b";")[0].strip() or b"0", 16)
            if not size:
                rfile.readline(100)  # the empty trailer line
                break
            rfile.read(size + 2)  # the chunk and its CRLF
    elif length is not None:
        if len(rfile.read(length)) != length:
            raise ExportHttpError("connection closed inside the body")
    elif status not in (204, 304):
        rfile.read(1 << 20)  # no length: the body runs to the end of the connection
        keep_alive = False
    return status, keep_alive


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest in OTLP/JSON, spans grouped by resource and scope."""
    resources: dict[int, tuple[Any, dict[tuple[str, str], list[dict[str, Any]]]]] = {}
    for span in spans:
        resource = span.resource
        scope = span.instrumentation_scope
        scope_key = (scope.name, scope.version or "") if scope is not None else ("", "")
        entry = resources.setdefault(id(resource), (resource, {}))
        entry[1].setdefault(scope_key, []).append(_span_json(span))
    resource_spans = []
    for resource, scopes in resources.values():
        resource_spans.append(
            {
                "resource": {"attributes": key_values(resource.attributes if resource else {})},
                "scopeSpans": [
                    {"scope": {"name": name, "version": version}, "spans": items}
                    for (name, version), items in scopes.items()
                ],
            }
        )
    return json.dumps({"resourceSpans": resource_spans}, separators=(",", ":")).encode("utf-8")


class OtlpJsonSpanExporter(SpanExporter):
    """POSTs spans as OTLP/JSON to `endpoint` (e.g. http://127.0.0.1:4318/v1/traces)."""

    def __init__(self, endpoint: str, timeout_s: float = 1.0) -> None:
        self._tls, self._host, self._port, self._path = split_endpoint(endpoint)
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._rfile: BinaryIO | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0  # monotonic
        self.exported_spans = 0
        self.dropped_spans = 0
        self.requests = 0

    def _connect(self) -> tuple[socket.socket, BinaryIO]:
        if self._sock is None or self._rfile is None:
            sock = socket.create_connection((self._host, self._port), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls:
                import ssl  # only for https endpoints; the local receiver is plain http

                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
            self._sock, self._rfile = sock, sock.makefile("rb")
        return self._sock, self._rfile

    def _close(self) -> None:
        if self._rfile is not None:
            self._rfile.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._rfile = None

    def _post(self, body: bytes) -> int:
        host = self._host if ":" not in self._host else f"[{self._host}]"
        request_id = current_request_id.get()
        tag = f"{REQUEST_ID_HEADER}: {request_id}\r\n" if request_id else ""
        head = (
            f"POST {self._path} HTTP/1.1\r\nHost: {host}:{self._port}\r\n{tag}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        request = head.encode("latin-1") + body
        # One retry on a fresh connection: a kept-alive socket may have been closed while the
        # sandbox was frozen between invocations.
        for attempt in (0, 1):
            sock, rfile = self._connect()
            try:
                sock.sendall(request)
                status, keep_alive = read_status(rfile)
            except (OSError, ExportHttpError, ValueError):
                self._close()
                if attempt:
                    raise
                continue
            if not keep_alive:
                self._close()
            return status
        raise AssertionError("unreachable")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        with self._lock:
            if time.monotonic() < self._retry_at:
                # A receiver that failed is not asked again for a while: a hung one would
                # otherwise cost every invocation the socket timeout.
                self.dropped_spans += len(spans)
                return SpanExportResult.FAILURE
            try:
                status = self._post(encode_spans(spans))
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001 - tracing must never break the handler
                error = f"{type(exc).__name__}: {exc}"
            self.requests += 1
            if error is None:
                self.exported_spans += len(spans)
                self._failures = 0
                return SpanExportResult.SUCCESS
            self.dropped_spans += len(spans)
            if not self._failures:
                _log.warning(
                    "lambdascope_tracing: cannot export spans to %s (%s); is the lambdascope "
                    "extension layer attached? %d span(s) dropped; retrying with backoff",
                    self.endpoint,
                    error,
                    len(spans),
                )
            self._failures += 1
            self._retry_at = time.monotonic() + min(MAX_BACKOFF_S, 2.0 ** (self._failures - 1))
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        with self._lock:
            self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
