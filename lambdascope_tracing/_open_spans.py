"""The set of spans started and not yet ended, kept by a span processor: OpenTelemetry's API has
no way to list open spans, and a timeout capture wants their names. Loaded only when the
timeout capture is on, so a disabled capture costs no processor call per span."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

MAX_TRACKED = 1000
"""Spans that are never ended (a leak in the code) must not grow the set without bound."""


class OpenSpanRegistry(SpanProcessor):
    """Tracks open spans of the provider it is added to; `names()` lists them, oldest first."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, Span] = {}  # insertion order = start order
        self._max_tracked = max_tracked
        self.untracked = 0

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        with self._lock:
            if len(self._open) >= self._max_tracked:
                self.untracked += 1
                return
            self._open[id(span)] = span

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._open.pop(id(span), None)

    def names(self) -> list[str]:
        with self._lock:
            return [span.name for span in self._open.values()]

    def shutdown(self) -> None:
        with self._lock:
            self._open.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
