"""The Telemetry API listener: answers 200 at once and only appends to the buffer.

Nothing is logged per event: this process's stderr is itself `extension` telemetry, so a log
line per delivery would feed itself. A malformed delivery gets 400 and at most one log line per
`BAD_BODY_LOG_INTERVAL_S`.
"""

from __future__ import annotations

import json
import threading
import time

from . import httpio, log
from .buffer import TelemetryBuffer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .logfilter import LogFilter

SANDBOX_HOSTNAME = "sandbox.localdomain"
BAD_BODY_LOG_INTERVAL_S = 10.0


def parse_telemetry_body(body: bytes) -> tuple[list[dict[str, Any]], int]:
    """A Telemetry API delivery: a JSON array of events `{time, type, record}`.

    Returns the events (kept as delivered, unknown fields too) and how many array items were
    skipped for not being an event (an object with a string `type`): one odd item must not cost
    the rest of the delivery. Raises ValueError, naming what is wrong, when the body is not a
    JSON array or holds no event at all.
    """
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ValueError("body is not JSON: %s" % exc) from None
    if isinstance(value, dict):
        value = [value]  # lenient: a single event object
    if not isinstance(value, list):
        raise ValueError("body is a JSON %s, expected an array of events" % type(value).__name__)
    events = [e for e in value if isinstance(e, dict) and isinstance(e.get("type"), str)]
    skipped = len(value) - len(events)
    if skipped and not events:
        first = value[0]
        if not isinstance(first, dict):
            raise ValueError("event 0 is a JSON %s, expected an object" % type(first).__name__)
        raise ValueError("event 0 has no string field 'type'")
    return events, skipped


def resolve_with_timeout(hostname: str, timeout_s: float = 0.2) -> bool:
    """Whether `hostname` resolves, without letting a hung DNS stall the cold start."""
    import socket

    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.getaddrinfo(hostname, None, 0, socket.SOCK_STREAM)
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, name="lambdascope-resolve", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def choose_listen_host(
    explicit: str | None,
    runtime_api_host: str,
    resolves: Callable[[str], bool] = resolve_with_timeout,
) -> str:
    """docs/architecture.md section 6: LAMBDASCOPE_LISTEN_HOST, else sandbox.localdomain if it
    resolves, else the host of AWS_LAMBDA_RUNTIME_API."""
    if explicit:
        return explicit
    if resolves(SANDBOX_HOSTNAME):
        return SANDBOX_HOSTNAME
    return runtime_api_host or "127.0.0.1"


class TelemetryHandler:
    """The listener's request handler (callable for `httpio.HttpServer`)."""

    def __init__(self, buffer: TelemetryBuffer, log_filter: LogFilter | None = None) -> None:
        self.buffer = buffer
        self.log_filter = log_filter
        self.bad_deliveries = 0
        self.deliveries = 0
        self.skipped_items = 0
        self._last_bad_log = -BAD_BODY_LOG_INTERVAL_S

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if method != "POST":
            return (200, b'{"status":"ok"}') if method == "GET" else (405, b'{"error":"POST only"}')
        try:
            events, skipped = parse_telemetry_body(body)
        except ValueError as exc:
            self.bad_deliveries += 1
            self._log_bad(
                "ignored a malformed Telemetry API delivery (%d so far): %s"
                % (self.bad_deliveries, exc)
            )
            return 400, json.dumps({"error": str(exc)}).encode()
        self.deliveries += 1
        if skipped:
            self.skipped_items += skipped
            self._log_bad(
                "skipped %d Telemetry API item(s) that are not events (%d so far)"
                % (skipped, self.skipped_items)
            )
        if self.log_filter is not None:
            try:
                events = self.log_filter.apply(events)
            except Exception as exc:  # noqa: BLE001 - a filter bug must not lose the platform events
                self._log_bad("log redaction/sampling failed, lines dropped: %r" % (exc,))
                events = [e for e in events if e.get("type") not in ("function", "extension")]
        self.buffer.append_events(events)
        return 200, b""

    def _log_bad(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_bad_log >= BAD_BODY_LOG_INTERVAL_S:
            self._last_bad_log = now
            log.warning(message)


def start_listener(
    host: str,
    port: int,
    buffer: TelemetryBuffer,
    log_filter: LogFilter | None = None,
    niceness: int = 0,
) -> tuple[httpio.HttpServer, TelemetryHandler]:
    handler = TelemetryHandler(buffer, log_filter)
    server = httpio.HttpServer(host, port, handler, name="lambdascope-telemetry", niceness=niceness)
    return server.start(), handler
