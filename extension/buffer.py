"""The in-memory buffer between the Telemetry listener and the sender.

Bounded in events and bytes: when full, the oldest events are dropped and counted (new data
is worth more than old, and the drop count is reported to the collector). It also tracks which
invocation window is open at the head of the buffer, so every batch carries `open_request_id`
(docs/architecture.md section 1): Text-format `function` lines have no requestId and the
collector attributes them by the window they fall in, even when a batch splits a window.

A Lambda Managed Instances environment runs several requests at once and its Telemetry API
sends no `platform.runtimeDone`: there the buffer tracks the set of open windows (a start
opens one beside the others, the request's report closes it) and batches carry
`open_request_ids`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def next_open_request_id(
    current: str | None, event_type: str, request_id: str | None
) -> str | None:
    """The open invocation window after an event: `platform.start` opens one, the
    `platform.runtimeDone` of the open request closes it; everything else leaves it."""
    if event_type == "platform.start" and request_id:
        return request_id
    if event_type == "platform.runtimeDone" and (request_id is None or request_id == current):
        return None
    return current


def next_open_request_ids(
    current: tuple[str, ...], event_type: str, request_id: str | None
) -> tuple[str, ...]:
    """The open invocation windows after an event when requests overlap (Managed Instances):
    `platform.start` opens one beside the others; the request's `platform.runtimeDone` or
    `platform.report` closes it (Managed Instances send no runtimeDone)."""
    if not request_id:
        return current
    if event_type == "platform.start":
        return current if request_id in current else current + (request_id,)
    if event_type in ("platform.runtimeDone", "platform.report") and request_id in current:
        return tuple(r for r in current if r != request_id)
    return current


def event_request_id(event: dict[str, Any]) -> str | None:
    record = event.get("record")
    if isinstance(record, dict):
        value = record.get("requestId")
        if isinstance(value, str):
            return value
    return None


class BatchContent:
    """What one batch takes out of the buffer."""

    __slots__ = (
        "open_request_id",
        "telemetry",
        "invocations",
        "telemetry_bytes",
        "otlp",
        "open_request_ids",
    )

    def __init__(
        self,
        open_request_id: str | None,
        telemetry: list[str],
        invocations: list[dict[str, Any]],
        telemetry_bytes: int,
        otlp: list[dict[str, Any]] | None = None,
        open_request_ids: tuple[str, ...] | None = None,
    ) -> None:
        self.open_request_id = open_request_id
        #: Managed Instances: every window open before the first event (None on demand).
        self.open_request_ids = open_request_ids
        self.telemetry = telemetry  # each event as compact JSON text, in delivery order
        self.invocations = invocations
        self.telemetry_bytes = telemetry_bytes
        self.otlp = otlp or []  # OTLP export requests (extension/otlp.py), oldest first


class TelemetryBuffer:
    """Thread-safe: the listener appends, the sender takes batches."""

    def __init__(
        self,
        max_events: int = 10000,
        max_bytes: int = 4 * 1024 * 1024,
        max_invocations: int = 2000,
        otlp_max_bytes: int = 4 * 1024 * 1024,
        concurrent: bool = False,
    ) -> None:
        self.max_events = max_events
        #: Several requests run at once (Managed Instances): windows are a tuple of request
        #: ids, and `on_lifecycle` (set by the agent) hears each platform.start and report.
        self.concurrent = concurrent
        self._advance: Any = next_open_request_ids if concurrent else next_open_request_id
        self.on_lifecycle: Any = None
        self.max_bytes = max_bytes
        self.max_invocations = max_invocations
        self.otlp_max_bytes = otlp_max_bytes
        # entries: (item, size in bytes); bounded apart from the telemetry so that a chatty
        # SDK cannot push the platform events (the invocation records) out, nor the reverse.
        self._otlp: deque[tuple[dict[str, Any], int]] = deque()
        self._otlp_bytes = 0
        self.received_otlp = 0
        self.dropped_otlp = 0
        self.dropped_otlp_bytes = 0
        # entries: (json text, type, request id)
        self._events: deque[tuple[str, str, str | None]] = deque()
        self._invocations: deque[dict[str, Any]] = deque()
        self._bytes = 0
        # The open window before the first buffered event / after the last received one: a
        # request id or None on demand, a tuple of them when requests overlap.
        self._head_open: Any = () if concurrent else None
        self._tail_open: Any = () if concurrent else None
        self._reports: deque[str] = deque(maxlen=64)  # request ids whose platform.report arrived
        self._runtime_done: deque[str] = deque(maxlen=64)  # ... whose platform.runtimeDone did
        self._oldest_at: float | None = None  # monotonic time the buffer became non-empty
        self._cond = threading.Condition()
        self.received_events = 0
        self.received_bytes = 0
        self.dropped_events = 0
        self.dropped_bytes = 0
        self.dropped_invocations = 0

    # -- writers ---------------------------------------------------------------------------

    def become_concurrent(self) -> None:
        """Requests overlap from now on (a platform that refused INVOKE): windows become
        tuples of request ids. Called once, at register, before any event arrived."""
        with self._cond:
            self.concurrent = True
            self._advance = next_open_request_ids
            self._head_open = self._tail_open = ()

    def append_events(self, events: list[dict[str, Any]]) -> None:
        """Add Telemetry API events in delivery order; drops the oldest when over a bound."""
        prepared = []
        for event in events:
            text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            event_type = event.get("type")
            prepared.append(
                (text, event_type if isinstance(event_type, str) else "", event_request_id(event))
            )
        with self._cond:
            wake_waiters = False
            for entry in prepared:
                if not self._events:
                    self._oldest_at = time.monotonic()
                    self._head_open = self._tail_open
                self._events.append(entry)
                self._bytes += len(entry[0])
                self.received_events += 1
                self.received_bytes += len(entry[0])
                self._tail_open = self._advance(self._tail_open, entry[1], entry[2])
                if entry[1] == "platform.report" and entry[2]:
                    self._reports.append(entry[2])
                    wake_waiters = True
                elif entry[1] == "platform.runtimeDone" and entry[2]:
                    self._runtime_done.append(entry[2])
                    wake_waiters = True
            while self._events and (
                len(self._events) > self.max_events or self._bytes > self.max_bytes
            ):
                text, event_type, request_id = self._events.popleft()
                self._bytes -= len(text)
                self.dropped_events += 1
                self.dropped_bytes += len(text)
                self._head_open = self._advance(self._head_open, event_type, request_id)
            if not self._events and not self._invocations and not self._otlp:
                self._oldest_at = None
            if wake_waiters:
                self._cond.notify_all()
        hook = self.on_lifecycle
        if hook is not None:
            # Outside the lock: the hook hands the request to the sampler (Managed Instances
            # give extensions no INVOKE event, so the Telemetry API's events drive records).
            for event in events:
                kind = event.get("type")
                if kind == "platform.start" or kind == "platform.report":
                    hook(event)

    def open_request_ids(self) -> tuple[str, ...]:
        """The requests whose windows are open after the last received event (Managed
        Instances; () on demand)."""
        with self._cond:
            return self._tail_open if self.concurrent else ()

    def add_invocation(self, record: dict[str, Any]) -> None:
        with self._cond:
            if not self._invocations and not self._events:
                self._oldest_at = time.monotonic()
            self._invocations.append(record)
            while len(self._invocations) > self.max_invocations:
                self._invocations.popleft()
                self.dropped_invocations += 1

    def add_otlp(self, item: dict[str, Any]) -> None:
        """Add one OTLP export request (`body_b64` and its tags); drops the oldest beyond
        `otlp_max_bytes` and counts them."""
        size = len(item.get("body_b64") or "") + 160
        with self._cond:
            if not self._invocations and not self._events and not self._otlp:
                self._oldest_at = time.monotonic()
            self._otlp.append((item, size))
            self._otlp_bytes += size
            self.received_otlp += 1
            while len(self._otlp) > 1 and self._otlp_bytes > self.otlp_max_bytes:
                _old, old_size = self._otlp.popleft()
                self._otlp_bytes -= old_size
                self.dropped_otlp += 1
                self.dropped_otlp_bytes += old_size

    # -- readers ---------------------------------------------------------------------------

    def has_data(self) -> bool:
        with self._cond:
            return bool(self._events or self._invocations or self._otlp)

    def oldest_age_s(self) -> float:
        """Seconds since the oldest buffered item arrived (0 when empty)."""
        with self._cond:
            if self._oldest_at is None or not (self._events or self._invocations or self._otlp):
                return 0.0
            return time.monotonic() - self._oldest_at

    def __len__(self) -> int:
        with self._cond:
            return len(self._events)

    @property
    def buffered_bytes(self) -> int:
        with self._cond:
            return self._bytes

    def report_arrived(self, request_id: str) -> bool:
        with self._cond:
            return request_id in self._reports

    def wait_for_report(self, request_id: str | None, timeout_s: float) -> bool:
        """Wait until the `platform.report` of `request_id` arrived, at most `timeout_s`."""
        if request_id is None or timeout_s <= 0:
            return request_id is not None and self.report_arrived(request_id)
        with self._cond:
            return self._cond.wait_for(lambda: request_id in self._reports, timeout=timeout_s)

    def runtime_done_arrived(self, request_id: str) -> bool:
        with self._cond:
            return request_id in self._runtime_done

    def wait_for_runtime_done(self, request_id: str, timeout_s: float) -> bool:
        """Wait until the `platform.runtimeDone` of `request_id` arrived, at most `timeout_s`."""
        with self._cond:
            return self._cond.wait_for(
                lambda: request_id in self._runtime_done, timeout=max(0.0, timeout_s)
            )

    def take_batch(self, max_events: int, max_bytes: int) -> BatchContent | None:
        """Remove the oldest events (at least one, then up to the limits) and every buffered
        invocation record; None when there is nothing to send."""
        with self._cond:
            if not self._events and not self._invocations and not self._otlp:
                return None
            open_request_id = self._head_open
            taken: list[str] = []
            size = 0
            while self._events and len(taken) < max_events:
                text, event_type, request_id = self._events[0]
                if taken and size + len(text) > max_bytes:
                    break
                self._events.popleft()
                taken.append(text)
                size += len(text)
                self._head_open = self._advance(self._head_open, event_type, request_id)
            self._bytes -= size
            invocations = list(self._invocations)
            self._invocations.clear()
            otlp: list[dict[str, Any]] = []
            otlp_size = 0
            while self._otlp:
                item, item_size = self._otlp[0]
                if (taken or otlp) and size + otlp_size + item_size > max_bytes:
                    break
                self._otlp.popleft()
                otlp.append(item)
                otlp_size += item_size
            self._otlp_bytes -= otlp_size
            if not self._events:
                self._head_open = self._tail_open
            if not self._events and not self._otlp:
                self._oldest_at = None
            else:
                self._oldest_at = time.monotonic()
            if self.concurrent:
                windows = open_request_id
                return BatchContent(
                    windows[0] if len(windows) == 1 else None,
                    taken,
                    invocations,
                    size,
                    otlp,
                    open_request_ids=windows,
                )
            return BatchContent(open_request_id, taken, invocations, size, otlp)
