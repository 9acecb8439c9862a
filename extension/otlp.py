"""The local OTLP/HTTP receiver: the function's OpenTelemetry SDK exports to the extension on
loopback instead of across the network, so an export costs the function well under a
millisecond and nothing is lost when the sandbox freezes.

Payloads are checked (so a broken exporter hears 400 at once, as the OTLP/HTTP specification
asks) but forwarded WITHOUT decoding: the raw body goes into the batch as base64 with its
content type and encoding, tagged with the request id of the INVOKE open when it arrived. In a
Lambda Managed Instances environment several requests are open at once: a trace export is
tagged with the `faas.invocation_id` its spans carry (one id among them), else with the open
request only when exactly one is open. The collector decodes it. Nothing is logged per request
(this process's stderr is telemetry).
"""

from __future__ import annotations

import json
import time

from . import httpio, log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from .buffer import TelemetryBuffer

#: The OpenTelemetry semantic-conventions attribute naming a span's Lambda request id.
INVOCATION_ID_KEY = "faas.invocation_id"
SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
# Sent by lambdascope_tracing with the exports it makes while serving a request: exact, where
# the last INVOKE this process saw may lag a handler that exports within a millisecond.
REQUEST_ID_HEADER = "x-lambdascope-request-id"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ENCODINGS = ("", "identity", "gzip")
BAD_REQUEST_LOG_INTERVAL_S = 10.0
# google.rpc.Code values the OTLP/HTTP specification puts in the error Status message.
_RPC_INVALID_ARGUMENT = 3
_RPC_RESOURCE_EXHAUSTED = 8


class PayloadTooLarge(ValueError):
    """The (decompressed) body is larger than the receiver's bound."""


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return content_type.split(";", 1)[0].strip().lower()


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 70, 7):
        if position >= len(data):
            raise ValueError("truncated varint at byte %d" % position)
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
    raise ValueError("varint longer than 10 bytes at byte %d" % position)


def check_protobuf(data: bytes) -> None:
    """Walk the top-level fields of a protobuf message; raises ValueError naming the first
    malformed one. Cheap (no decoding of the nested spans), and catches bodies that are not
    protobuf at all (e.g. JSON sent with the protobuf content type)."""
    position = 0
    for _ in range(len(data) + 1):
        if position >= len(data):
            return
        key, position = _varint(data, position)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0 at byte %d" % position)
        if wire_type == 0:
            _value, position = _varint(data, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            position += length
        elif wire_type == 5:
            position += 4
        else:
            raise ValueError("field %d has unsupported wire type %d" % (field, wire_type))
        if position > len(data):
            raise ValueError("field %d runs past the end of the body" % field)


def decompressed(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """The body without its Content-Encoding; raises ValueError for a broken gzip stream and
    PayloadTooLarge beyond `max_bytes` (a gzip bomb must not exhaust the sandbox's memory)."""
    if encoding in ("", "identity"):
        return body
    import zlib  # on the receiver's thread, only once a gzip export arrives

    inflater = zlib.decompressobj(31)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError("body is not valid gzip: %s" % exc) from None
    if len(data) > max_bytes:
        raise PayloadTooLarge("decompressed body larger than %d bytes" % max_bytes)
    if not inflater.eof:
        raise ValueError("gzip stream is truncated")
    return data


def check_payload(body: bytes, content_type: str, encoding: str, max_bytes: int) -> None:
    """Raise ValueError (400) or PayloadTooLarge (413) when the body cannot be an OTLP export
    request of `content_type`."""
    data = decompressed(body, encoding, max_bytes)
    if content_type == PROTOBUF:
        check_protobuf(data)
        return
    if not data.strip():
        raise ValueError("empty JSON body; expected an export request object")
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ValueError("body is not JSON: %s" % exc) from None
    if not isinstance(value, dict):
        raise ValueError(
            "body is a JSON %s, expected an export request object" % type(value).__name__
        )


def otlp_item(
    signal: str,
    content_type: str,
    content_encoding: str,
    request_id: str | None,
    received_at_ms: int,
    body: bytes,
) -> dict[str, Any]:
    """The batch's `otlp[]` entry for one export request (extension/README.md)."""
    import base64  # on the receiver's thread, once the first export arrives

    return {
        "signal": signal,
        "content_type": content_type,
        "content_encoding": content_encoding or None,
        "request_id": request_id,
        "received_at_ms": int(received_at_ms),
        "body_b64": base64.b64encode(body).decode("ascii"),
    }


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each top-level field of a protobuf message; the
    value of a length-delimited field is its bytes, of the others None."""
    position = 0
    for _ in range(len(data) + 1):
        if position >= len(data):
            return
        key, position = _varint(data, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _value, position = _varint(data, position)
            yield field, wire_type, None
        elif wire_type == 1:
            position += 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            yield field, wire_type, data[position : position + length]
            position += length
        elif wire_type == 5:
            position += 4
        else:
            return


def _protobuf_invocation_ids(data: bytes, found: set[str]) -> None:
    """ExportTraceServiceRequest: resource_spans(1) > scope_spans(2) > spans(2) >
    attributes(9) KeyValue{key(1), value(2) AnyValue{string_value(1)}}."""
    key_bytes = INVOCATION_ID_KEY.encode()
    for f1, w1, resource_spans in _fields(data):
        if f1 != 1 or w1 != 2:
            continue
        for f2, w2, scope_spans in _fields(resource_spans):
            if f2 != 2 or w2 != 2:
                continue
            for f3, w3, span in _fields(scope_spans):
                if f3 != 2 or w3 != 2 or key_bytes not in span:
                    continue
                for f4, w4, attribute in _fields(span):
                    if f4 != 9 or w4 != 2:
                        continue
                    parts = {f: v for f, w, v in _fields(attribute) if w == 2}
                    if parts.get(1) == key_bytes and parts.get(2) is not None:
                        for f5, w5, text in _fields(parts[2]):
                            if f5 == 1 and w5 == 2:
                                found.add(text.decode("utf-8", "replace"))


def _json_invocation_ids(value: Any, found: set[str]) -> None:
    for resource_spans in value.get("resourceSpans") or ():
        for scope_spans in (resource_spans or {}).get("scopeSpans") or ():
            for span in (scope_spans or {}).get("spans") or ():
                for attribute in (span or {}).get("attributes") or ():
                    if isinstance(attribute, dict) and attribute.get("key") == INVOCATION_ID_KEY:
                        text = (attribute.get("value") or {}).get("stringValue")
                        if isinstance(text, str) and text:
                            found.add(text)


def span_invocation_id(body: bytes, content_type: str, encoding: str, max_bytes: int) -> str | None:
    """The `faas.invocation_id` the spans of a trace export carry, when they carry exactly
    one; None when none or several (an export batching several requests' spans)."""
    found: set[str] = set()
    try:
        data = decompressed(body, encoding, max_bytes)
        if content_type == PROTOBUF:
            _protobuf_invocation_ids(data, found)
        else:
            value = json.loads(data)
            if isinstance(value, dict):
                _json_invocation_ids(value, found)
    except (ValueError, AttributeError, TypeError):
        return None
    return found.pop() if len(found) == 1 else None


def request_id_from(headers: dict[str, str]) -> str | None:
    """The exporter's own tag, if it sent a plausible one (printable, at most 128 chars)."""
    value = headers.get(REQUEST_ID_HEADER, "").strip()
    if value and len(value) <= 128 and value.isprintable():
        return value
    return None


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    for _ in range(10):
        low = value & 0x7F
        value >>= 7
        out.append(low | (0x80 if value else 0))
        if not value:
            break
    return bytes(out)


def _status_body(content_type: str, code: int, message: str) -> bytes:
    """A google.rpc.Status in the request's encoding, as the OTLP/HTTP specification asks."""
    if content_type == PROTOBUF:
        text = message.encode("utf-8")
        return b"\x08" + _encode_varint(code) + b"\x12" + _encode_varint(len(text)) + text
    return json.dumps({"code": code, "message": message}).encode("utf-8")


class OtlpHandler:
    """The receiver's request handler (callable for `httpio.HttpServer`)."""

    def __init__(
        self,
        buffer: TelemetryBuffer,
        current_request_id: Callable[[], str | None],
        max_bytes: int = 4 * 1024 * 1024,
        clock_ms: Callable[[], int] | None = None,
        open_request_ids: Callable[[], tuple[str, ...]] | None = None,
    ) -> None:
        self.buffer = buffer
        self.current_request_id = current_request_id
        #: Managed Instances: the requests open now. Given, a trace export naming no request
        #: in its header is read for its spans' `faas.invocation_id` while several are open.
        self.open_request_ids = open_request_ids
        self.max_bytes = max_bytes
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.accepted = 0
        self.rejected = 0
        self._last_bad_log = -BAD_REQUEST_LOG_INTERVAL_S

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        signal = SIGNALS.get(path.split("?", 1)[0].rstrip("/") or "/")
        if signal is None:
            return 404, b'{"error": "unknown path; use /v1/traces, /v1/logs or /v1/metrics"}', JSON
        if method != "POST":
            return 405, b'{"error": "OTLP/HTTP takes POST"}', JSON
        content_type = media_type(headers.get("content-type", ""))
        if content_type not in (PROTOBUF, JSON):
            self._bad("unsupported Content-Type %r" % content_type)
            message = "Content-Type must be %s or %s" % (PROTOBUF, JSON)
            return 415, _status_body(JSON, _RPC_INVALID_ARGUMENT, message), JSON
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ENCODINGS:
            self._bad("unsupported Content-Encoding %r" % encoding)
            message = "Content-Encoding must be gzip or none, not %r" % encoding
            return 415, _status_body(content_type, _RPC_INVALID_ARGUMENT, message), content_type
        if len(body) > self.max_bytes:
            message = "body larger than %d bytes" % self.max_bytes
            self._bad("%s export: %s" % (signal, message))
            return 413, _status_body(content_type, _RPC_RESOURCE_EXHAUSTED, message), content_type
        try:
            check_payload(body, content_type, encoding, self.max_bytes)
        except PayloadTooLarge as exc:
            self._bad("%s export: %s" % (signal, exc))
            return 413, _status_body(content_type, _RPC_RESOURCE_EXHAUSTED, str(exc)), content_type
        except ValueError as exc:
            self._bad("%s export: %s" % (signal, exc))
            return 400, _status_body(content_type, _RPC_INVALID_ARGUMENT, str(exc)), content_type
        request_id = request_id_from(headers)
        if (
            request_id is None
            and self.open_request_ids is not None
            and signal == "traces"
            and len(self.open_request_ids()) > 1
        ):
            request_id = span_invocation_id(body, content_type, encoding, self.max_bytes)
        item = otlp_item(
            signal,
            content_type,
            "gzip" if encoding == "gzip" else "",
            request_id or self.current_request_id(),
            self._clock_ms(),
            body,
        )
        self.buffer.add_otlp(item)
        self.accepted += 1
        # An empty Export<Signal>ServiceResponse: no bytes in protobuf, `{}` in JSON.
        return 200, (b"" if content_type == PROTOBUF else b"{}"), content_type

    def _bad(self, message: str) -> None:
        self.rejected += 1
        now = time.monotonic()
        if now - self._last_bad_log >= BAD_REQUEST_LOG_INTERVAL_S:
            self._last_bad_log = now
            log.warning(
                "OTLP receiver refused a request (%d so far): %s" % (self.rejected, message)
            )


def start_receiver(
    host: str,
    port: int,
    buffer: TelemetryBuffer,
    current_request_id: Callable[[], str | None],
    max_bytes: int,
    open_request_ids: Callable[[], tuple[str, ...]] | None = None,
) -> tuple[httpio.HttpServer, OtlpHandler]:
    handler = OtlpHandler(buffer, current_request_id, max_bytes, open_request_ids=open_request_ids)
    # The transport bound sits above the handler's so that an oversized body still gets the
    # handler's OTLP status message; beyond twice the bound the socket layer answers 413.
    server = httpio.HttpServer(
        host, port, handler, max_body_bytes=2 * max_bytes, name="lambdascope-otlp"
    )
    return server.start(), handler
