"""The "stuck where?" capture: shortly before an invocation's deadline, capture the handler
thread's Python stack and the open spans, so a timeout comes with where the code was stuck.

Off by default. Turn it on with `LAMBDASCOPE_TIMEOUT_CAPTURE=1` or
`instrument(capture_before_timeout=True)`. The capture point is
`context.get_remaining_time_in_millis() - margin`, with the margin from
`LAMBDASCOPE_TIMEOUT_CAPTURE_MARGIN_MS` or, by default, Lumigo's rule
max(500 ms, min(remaining / 10, 3 s)); a margin as long as the whole invocation captures half-way.

When it fires, the capture is recorded three ways, cheapest and surest first, because Lambda
SIGKILLs the process at the deadline:
1. one line on stderr, which Lambda writes to the function's log during the request:
   `[lambdascope] invocation <request id> is about to time out; stuck at <file:line function>`;
2. an event `lambdascope.timeout_capture` on the invocation span (`code.stacktrace`,
   `lambdascope.open_spans`, `lambdascope.remaining_ms`), which is exported only if the
   handler still returns;
3. a separate span `lambdascope.timeout_capture`, child of the invocation span, carrying the same
   attributes and `faas.invocation_id`, flushed at once with a short timeout.

Cost: nothing when disabled (no thread, no span processor). Enabled: one daemon thread for the
life of the process (not one per invocation), one span processor keeping the set of open spans,
and a lock plus a notify per invocation. A handler that returns before the capture point leaves
no trace. Nothing here raises into the function.

This module imports no OpenTelemetry: the parts that touch spans take them as arguments.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, NamedTuple

CAPTURE_ENV = "LAMBDASCOPE_TIMEOUT_CAPTURE"
"""`1`/`true`/`yes`/`on` turns the capture on (default off)."""
MARGIN_MS_ENV = "LAMBDASCOPE_TIMEOUT_CAPTURE_MARGIN_MS"
"""How long before the deadline to capture, in ms (a positive integer; default: Lumigo's rule)."""

EVENT_NAME = "lambdascope.timeout_capture"
SPAN_NAME = "lambdascope.timeout_capture"
STACKTRACE_ATTR = "code.stacktrace"
OPEN_SPANS_ATTR = "lambdascope.open_spans"
REMAINING_MS_ATTR = "lambdascope.remaining_ms"
WATCHDOG_THREAD_NAME = "lambdascope-timeout-capture"

MAX_FRAMES = 64
"""Innermost frames kept: where the code is stuck is at the inner end of the stack."""
MAX_STACK_CHARS = 8192
MAX_OPEN_SPANS = 100
DEFAULT_CODE_ROOT = "/var/task"
"""Where Lambda puts the function's code (LAMBDA_TASK_ROOT)."""
MIN_MARGIN_MS = 500
MAX_DEFAULT_MARGIN_MS = 3000

_log = logging.getLogger("lambdascope_tracing")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class CaptureConfig(NamedTuple):  # not a dataclass: `dataclasses` costs ~5 ms of cold start
    enabled: bool
    margin_ms: int | None  # None: Lumigo's rule, from the remaining time


def capture_config(environ: Mapping[str, str], enabled: bool | None = None) -> CaptureConfig:
    """The capture settings from the environment; `enabled` (the decorator's argument) wins over
    LAMBDASCOPE_TIMEOUT_CAPTURE. An invalid value costs one log line and falls back to the
    default."""
    if enabled is None:
        text = environ.get(CAPTURE_ENV, "").strip().lower()
        if text in _TRUE:
            enabled = True
        elif text in _FALSE:
            enabled = False
        else:
            _log.warning(
                "lambdascope_tracing: %s=%r is not 1 or 0; the timeout capture stays off "
                "(set %s=1 to turn it on)",
                CAPTURE_ENV,
                environ.get(CAPTURE_ENV),
                CAPTURE_ENV,
            )
            enabled = False
    if not enabled:
        return CaptureConfig(False, None)
    margin_text = environ.get(MARGIN_MS_ENV, "").strip()
    margin_ms: int | None = None
    if margin_text:
        if margin_text.isdigit() and int(margin_text) > 0:
            margin_ms = int(margin_text)
        else:
            _log.warning(
                "lambdascope_tracing: %s=%r is not a positive number of milliseconds; using "
                "the default margin max(500 ms, min(remaining / 10, 3 s))",
                MARGIN_MS_ENV,
                environ.get(MARGIN_MS_ENV),
            )
    return CaptureConfig(True, margin_ms)


def default_margin_ms(remaining_ms: float) -> int:
    """Lumigo's rule: max(500 ms, min(remaining / 10, 3 s))."""
    return int(max(MIN_MARGIN_MS, min(remaining_ms / 10.0, MAX_DEFAULT_MARGIN_MS)))


def capture_delay_ms(remaining_ms: float, margin_ms: int | None) -> float | None:
    """How long after now to capture: `remaining - margin`, or half the remaining time when the
    margin is longer than the invocation (a 600 ms timeout would otherwise capture at once).
    None when no time remains."""
    if remaining_ms <= 0:
        return None
    margin = default_margin_ms(remaining_ms) if margin_ms is None else margin_ms
    delay = remaining_ms - margin
    return delay if delay > 0 else remaining_ms / 2.0


def frame_lines(frame: FrameType | None, max_frames: int = MAX_FRAMES) -> list[str]:
    """`file:line function` for each frame, innermost last; the outermost ones beyond
    `max_frames` are summarised in a first line."""
    lines: list[str] = []
    skipped = 0
    current = frame
    while current is not None:
        if len(lines) < max_frames:
            code = current.f_code
            lines.append(f"{code.co_filename}:{current.f_lineno} {code.co_name}")
        else:
            skipped += 1
        current = current.f_back
    lines.reverse()
    if skipped:
        lines.insert(0, f"... {skipped} outer frame(s) omitted")
    return lines


def format_stack(lines: list[str], max_chars: int = MAX_STACK_CHARS) -> str:
    """The lines joined, cut from the outer end to `max_chars`, so the innermost frame stays."""
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    marker = "... (outer frames cut)\n"
    return marker + text[len(text) - (max_chars - len(marker)) :]


def code_frame_line(
    frame: FrameType | None, code_root: str, max_frames: int = MAX_FRAMES * 8
) -> str | None:
    """The innermost frame of the function's own code (files under `code_root`, Lambda's
    LAMBDA_TASK_ROOT): a stack stuck in `socket.py` says more with the handler line that
    called it."""
    root = code_root.rstrip("/") + "/"
    current = frame
    for _ in range(max_frames):
        if current is None:
            return None
        code = current.f_code
        if code.co_filename.startswith(root):
            return f"{code.co_filename}:{current.f_lineno} {code.co_name}"
        current = current.f_back
    return None


def stuck_line(request_id: str | None, innermost: str, code_frame: str | None = None) -> str:
    """The line printed to stderr, which Lambda writes to the request's function log."""
    called_from = f" (called from {code_frame})" if code_frame and code_frame != innermost else ""
    return (
        f"[lambdascope] invocation {request_id or 'unknown'} is about to time out; "
        f"stuck at {innermost}{called_from}"
    )


class TimeoutCapture(NamedTuple):
    request_id: str | None
    stack_lines: list[str]
    open_spans: list[str]
    remaining_ms: int
    code_frame: str | None = None

    @property
    def innermost(self) -> str:
        return self.stack_lines[-1] if self.stack_lines else "<no Python frame>"

    def attributes(self) -> dict[str, Any]:
        return {
            STACKTRACE_ATTR: format_stack(self.stack_lines),
            OPEN_SPANS_ATTR: list(self.open_spans),
            REMAINING_MS_ATTR: self.remaining_ms,
        }


def take_capture(
    thread_id: int,
    request_id: str | None,
    open_spans: list[str],
    remaining_ms: int,
    code_root: str = DEFAULT_CODE_ROOT,
) -> TimeoutCapture:
    """Snapshot the stack of thread `thread_id` (empty when the thread is gone)."""
    frame = sys._current_frames().get(thread_id)
    try:
        lines = frame_lines(frame)
        code_frame = code_frame_line(frame, code_root)
    finally:
        del frame  # a frame reference would keep the handler's locals alive
    return TimeoutCapture(request_id, lines, open_spans[-MAX_OPEN_SPANS:], remaining_ms, code_frame)


class Watchdog:
    """One reusable daemon thread that runs callbacks at deadlines unless they are disarmed
    first: a `threading.Timer` without a thread per invocation."""

    def __init__(self, name: str = WATCHDOG_THREAD_NAME) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, Callable[[], None]] = {}
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.fired = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def arm(self, delay_s: float, callback: Callable[[], None]) -> int:
        """Run `callback` on the watchdog thread in `delay_s` seconds; returns a token for
        `disarm`. Starts the thread at the first call."""
        with self._cond:
            token = next(self._tokens)
            self._armed[token] = callback
            heapq.heappush(self._heap, (time.monotonic() + max(delay_s, 0.0), token))
            if not self.running:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """True if the callback had not started yet (and now never will)."""
        with self._cond:
            return self._armed.pop(token, None) is not None

    def stop(self, timeout_s: float = 2.0) -> None:
        """End the thread (tests; a Lambda process just exits)."""
        with self._cond:
            self._stopping = True
            self._armed.clear()
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        self._thread = None

    def _next_due(self) -> Callable[[], None] | None:
        """Under the lock: wait until a callback is due (or the watchdog stops)."""
        while not self._stopping:
            while self._heap and self._heap[0][1] not in self._armed:
                heapq.heappop(self._heap)  # disarmed
            if not self._heap:
                self._cond.wait()
                continue
            due, token = self._heap[0]
            wait_s = due - time.monotonic()
            if wait_s > 0:
                self._cond.wait(wait_s)
                continue
            heapq.heappop(self._heap)
            return self._armed.pop(token)
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                callback = self._next_due()
            if callback is None:
                return
            self.fired += 1
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - the watchdog must outlive a bad capture
                _log.warning("lambdascope_tracing: timeout capture failed: %r", exc)


_watchdog: Watchdog | None = None
_watchdog_lock = threading.Lock()


def watchdog() -> Watchdog:
    """The process's watchdog, created (not started) at the first call."""
    global _watchdog
    with _watchdog_lock:
        if _watchdog is None:
            _watchdog = Watchdog()
        return _watchdog


def stop_watchdog(timeout_s: float = 2.0) -> None:
    """Stop the process's watchdog thread, if any (for tests)."""
    global _watchdog
    with _watchdog_lock:
        current, _watchdog = _watchdog, None
    if current is not None:
        current.stop(timeout_s)
