"""Request-level helpers of the collector's HTTP service, kept apart from sockets so they are
tested as plain functions: body decoding with bounds, bearer tokens, JSON replies, metrics."""

from __future__ import annotations

import hmac
import json
import threading
import zlib
from typing import Any

import orjson

__all__ = [
    "HttpError",
    "Metrics",
    "bearer_matches",
    "decode_body",
    "parse_json",
]


class HttpError(Exception):
    """A request the collector refuses: ``status`` and a message that names the problem."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.payload = payload
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON reply: ``{"error": ...}``, or the endpoint's own format (``payload``)."""
        if self.payload is not None:
            return self.payload
        return {"error": self.message, **self.extra}


def bearer_matches(authorization: str | None, token: str | None) -> bool:
    """True when no token is configured, or the header is ``Bearer <token>`` (constant time)."""
    if token is None:
        return True
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def decode_body(raw: bytes, content_encoding: str | None, max_decompressed_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (identity or gzip), refusing more than the bound (a gzip bomb).

    Raises :class:`HttpError` 400 for a corrupt or truncated gzip stream, 413 past the bound,
    415 for an encoding the collector does not speak.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise HttpError(
            415, f"Content-Encoding {content_encoding!r} is not supported: send gzip or identity"
        )
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(raw, max_decompressed_bytes + 1)
    except zlib.error as exc:
        raise HttpError(400, f"body is not valid gzip: {exc}") from None
    if len(out) > max_decompressed_bytes or decompressor.unconsumed_tail:
        raise HttpError(
            413,
            f"body decompresses to more than {max_decompressed_bytes} bytes: send smaller batches",
        )
    if not decompressor.eof:
        raise HttpError(400, "body is not valid gzip: the stream is truncated")
    return out


def parse_json(data: bytes) -> Any:
    """Parse a JSON body, answering 400 with where it broke."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # The standard parser says where a body broke in the words the answers use, and
        # reads what orjson refuses but a batch may carry: NaN, lone surrogates, integers
        # past 64 bits. normalize.py then rejects such values by their field.
        pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, f"body is not UTF-8 JSON: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HttpError(
            400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise HttpError(400, "body is not valid JSON: nested too deeply") from None


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


class Metrics:
    """The collector's own counters, rendered in Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._gauges: dict[str, float] = {}

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        with self._lock:
            key = (name, tuple(sorted(labels.items())))
            self._counters[key] = self._counters.get(key, 0) + value

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0)

    def render(self) -> str:
        with self._lock:
            counters = sorted(self._counters.items())
            gauges = sorted(self._gauges.items())
        lines: list[str] = []
        typed: set[str] = set()
        for (name, labels), value in counters:
            if name not in typed:
                lines.append(f"# TYPE {name} counter")
                typed.add(name)
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
        for name, value in gauges:
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
