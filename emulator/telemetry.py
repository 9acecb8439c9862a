"""Telemetry API delivery: one buffer and one thread per subscriber, so a slow or broken
subscriber never blocks the invocation or another subscriber.

A batch is POSTed (JSON array) when it reaches maxItems or maxBytes, or timeoutMs after its
first event. A failed POST loses that batch (counted in `failed_batches` / `lost_events`).
Buffers are bounded: past the bound, `function`/`extension` records are dropped and counted,
then reported to the subscriber as `platform.logsDropped`.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

from lambdascope.emulator import events
from lambdascope.emulator.events import Event, Subscription

log = logging.getLogger(__name__)

POST_TIMEOUT_S = 5.0
# Events for Logs API subscribers only: the Telemetry API has no such type.
LOGS_API_ONLY = ("platform.logsSubscription",)
# Per-subscriber buffer bound, in events (a few full batches).
MAX_BUFFERED_EVENTS = 50_000


@dataclass
class _Queued:
    event: Event
    size: int


class Subscriber:
    """Delivers the events of the subscribed types to one destination, from its own thread."""

    def __init__(self, name: str, subscription: Subscription, host: str, port: int, path: str):
        self.name = name
        self.subscription = subscription
        self.host, self.port, self.path = host, port, path
        self.delivered_batches = 0
        self.delivered_events = 0
        self.failed_batches = 0
        self.lost_events = 0
        self.dropped_records = 0
        self.dropped_bytes = 0
        self._buffer: deque[_Queued] = deque()
        self._buffered_bytes = 0
        self._first_at: float | None = None
        self._inflight = False
        self._flush_requested = 0
        self._stopped = False
        self._cv = threading.Condition()
        self._conn: http.client.HTTPConnection | None = None
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name=f"telemetry-{name}", daemon=True)
        self._thread.start()

    def wants(self, event: Event) -> bool:
        return event["type"] not in LOGS_API_ONLY and (
            events.category(event) in self.subscription.types
        )

    def put(self, event: Event) -> None:
        size = len(json.dumps(event, separators=(",", ":")).encode("utf-8"))
        with self._cv:
            if self._stopped:
                return
            if len(self._buffer) >= MAX_BUFFERED_EVENTS and events.category(event) != "platform":
                self.dropped_records += 1
                self.dropped_bytes += size
                return
            was_empty = not self._buffer
            if self.dropped_records and len(self._buffer) < MAX_BUFFERED_EVENTS:
                self._append_dropped_notice()
            self._append(event, size)
            # The sender thread sleeps until the buffering timeout of the first event: wake it
            # only when that starts or a size limit is reached, not for every event a busy
            # function emits (each wake-up is GIL time taken from the invocation being served).
            sub = self.subscription
            if (
                was_empty
                or len(self._buffer) >= sub.max_items
                or self._buffered_bytes >= sub.max_bytes
            ):
                self._cv.notify_all()

    def _append_dropped_notice(self) -> None:
        dropped = events.logs_dropped(time.time(), self.dropped_records, self.dropped_bytes)
        self._append(dropped, 200)
        self.dropped_records = self.dropped_bytes = 0

    def _append(self, event: Event, size: int) -> None:
        if not self._buffer:
            self._first_at = time.monotonic()
        self._buffer.append(_Queued(event, size))
        self._buffered_bytes += size

    def flush(self, timeout_s: float) -> bool:
        """Send everything buffered now; True when it all went out (or failed) in time."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            self._flush_requested += 1
            self._cv.notify_all()
            try:
                while self._buffer or self._inflight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopped:
                        return False
                    self._cv.wait(remaining)
                return True
            finally:
                self._flush_requested -= 1

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        # Short: a POST stuck on a hung listener ends by its own timeout; the thread is a
        # daemon and exits after it, so shutdown never waits on a broken subscriber.
        self._thread.join(timeout=0.5)

    def _ready(self) -> bool:
        sub = self.subscription
        if not self._buffer:
            return False
        if self._flush_requested:
            return True
        if len(self._buffer) >= sub.max_items or self._buffered_bytes >= sub.max_bytes:
            return True
        assert self._first_at is not None
        return time.monotonic() - self._first_at >= sub.timeout_ms / 1000.0

    def _run(self) -> None:
        sub = self.subscription
        while True:
            with self._cv:
                while not self._stopped and not self._ready():
                    if self._buffer and self._first_at is not None:
                        wait = self._first_at + sub.timeout_ms / 1000.0 - time.monotonic()
                        self._cv.wait(max(wait, 0.001))
                    else:
                        self._cv.wait()
                if self._stopped:
                    self._close_connections()
                    return
                batch: list[Event] = []
                size = 0
                while self._buffer and len(batch) < sub.max_items and size < sub.max_bytes:
                    item = self._buffer.popleft()
                    batch.append(item.event)
                    size += item.size
                    self._buffered_bytes -= item.size
                if self.dropped_records and len(self._buffer) < MAX_BUFFERED_EVENTS:
                    # Room again: tell the subscriber what it missed, as Lambda does.
                    self._append_dropped_notice()
                self._first_at = time.monotonic() if self._buffer else None
                self._inflight = True
            ok = self._post(batch)
            with self._cv:
                self._inflight = False
                if ok:
                    self.delivered_batches += 1
                    self.delivered_events += len(batch)
                else:
                    self.failed_batches += 1
                    self.lost_events += len(batch)
                self._cv.notify_all()

    def _post(self, batch: list[Event]) -> bool:
        if self.subscription.protocol == "TCP":
            return self._send_tcp(batch)
        body = json.dumps(batch, separators=(",", ":")).encode("utf-8")
        for attempt in range(2):  # a kept-alive connection may have been closed: retry once
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(
                        self.host, self.port, timeout=POST_TIMEOUT_S
                    )
                self._conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                response = self._conn.getresponse()
                response.read()
                if response.will_close:
                    self._conn.close()
                    self._conn = None
                if 200 <= response.status < 300:
                    return True
                log.warning(
                    "telemetry subscriber %s answered %s; batch of %d events lost",
                    self.name,
                    response.status,
                    len(batch),
                )
                return False
            except (OSError, http.client.HTTPException) as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                if attempt == 1 or isinstance(exc, TimeoutError):
                    log.warning(
                        "telemetry subscriber %s at %s:%s unreachable (%s); batch of %d lost",
                        self.name,
                        self.host,
                        self.port,
                        exc,
                        len(batch),
                    )
                    return False
        return False

    def _close_connections(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send_tcp(self, batch: list[Event]) -> bool:
        """TCP destinations get newline-delimited JSON on one kept-open connection."""
        data = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in batch)
        for attempt in range(2):  # the listener may have dropped the kept-open connection
            try:
                if self._sock is None:
                    self._sock = socket.create_connection(
                        (self.host, self.port), timeout=POST_TIMEOUT_S
                    )
                self._sock.sendall(data)
                return True
            except OSError as exc:
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                if attempt == 1:
                    log.warning(
                        "telemetry subscriber %s at tcp %s:%s unreachable (%s); %d events lost",
                        self.name,
                        self.host,
                        self.port,
                        exc,
                        len(batch),
                    )
        return False


class TelemetryHub:
    """Fans an environment's events out to its subscribers.

    Until subscriptions close (end of init) it keeps every event so a late subscriber gets the
    ones it missed (initStart, other extensions' subscriptions), as Lambda replays them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, Subscriber] = {}
        self._history: list[Event] | None = []
        self.emitted: list[Event] = []  # everything, for tests and the CloudWatch-style log
        self._keep_emitted = 10_000

    def emit(self, event: Event) -> None:
        with self._lock:
            if self._history is not None:
                self._history.append(event)
            self.emitted.append(event)
            if len(self.emitted) > self._keep_emitted:
                del self.emitted[: len(self.emitted) - self._keep_emitted]
            # Under the lock, so every subscriber sees events in emission order, replayed
            # ones first (put() only appends to the subscriber's buffer: it never blocks).
            for sub in self._subscribers.values():
                if sub.wants(event):
                    sub.put(event)

    def subscribe(self, extension_name: str, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers[extension_name] = subscriber
            for event in self._history or []:
                if subscriber.wants(event):
                    subscriber.put(event)

    def is_subscribed(self, extension_name: str) -> bool:
        with self._lock:
            return extension_name in self._subscribers

    def subscriber(self, extension_name: str) -> Subscriber | None:
        """The extension's subscription, Telemetry API or Logs API (one at most)."""
        with self._lock:
            return self._subscribers.get(extension_name)

    def close_subscriptions(self) -> None:
        with self._lock:
            self._history = None

    def subscribers(self) -> list[Subscriber]:
        with self._lock:
            return list(self._subscribers.values())

    def flush(self, timeout_s: float) -> bool:
        """Flush every subscriber in parallel, all within `timeout_s`."""
        subs = self.subscribers()
        results: list[bool] = []
        threads = [
            threading.Thread(target=lambda s=s: results.append(s.flush(timeout_s)), daemon=True)
            for s in subs
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout_s
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0))
        return len(results) == len(subs) and all(results)

    def stop(self) -> None:
        for sub in self.subscribers():
            sub.stop()
