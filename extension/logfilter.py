"""Redaction and sampling of `function` and `extension` log records before they leave the
sandbox (LAMBDASCOPE_REDACT, LAMBDASCOPE_LOG_SAMPLE_RATE).

Runs on the Telemetry listener's thread, never on the function's path. Patterns are compiled
on first use, not at start-up: importing `re` and compiling cost a few milliseconds that the
cold start should not pay. Sampling is decided per request id by a hash, so every line of an
invocation is kept or every line dropped (an invocation's story is never half-told), and the
same request gives the same answer in every process.
"""

from __future__ import annotations

import threading

from . import log
from .buffer import event_request_id, next_open_request_id, next_open_request_ids

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

REDACTED = "[REDACTED]"

# (pattern, replacement): the replacement keeps the key so a reader still sees what was hidden.
BUILTIN_PATTERNS: tuple[tuple[str, str], ...] = (
    # AWS access key ids (long-term AKIA, temporary ASIA, and the other documented prefixes).
    (r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}\b", REDACTED),
    # AWS secret access keys written as key=value / key: value / "key": "value".
    (
        r"(?i)(aws_?secret_?access_?key|secret_?access_?key)([\"']?\s*[=:]\s*[\"']?)"
        r"[A-Za-z0-9/+=]{40}",
        r"\1\2" + REDACTED,
    ),
    # Bearer tokens (Authorization headers printed by HTTP client debug logs); 8+ characters,
    # so that prose ("the bearer of bad news") is left alone.
    (r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*", r"\1 " + REDACTED),
    # password=..., passwd: ..., "secret": "...", api_key=..., token=...
    (
        r"(?i)\b(password|passwd|pwd|secret|client_secret|api_?key|access_?token|token)"
        r"([\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"'}]+)",
        r"\1\2" + REDACTED,
    ),
)

# Lines kept whatever the sampling decision: they explain failures.
_ALWAYS_KEEP_MARKERS = (
    "[ERROR]",
    "[CRITICAL]",
    "[FATAL]",
    "Traceback (most recent call last)",
    "Task timed out",
    "MemoryError",
    "Runtime.OutOfMemory",
    "signal: killed",
    "Runtime exited with error",
    "out of memory",
)
_ERROR_LEVELS = ("ERROR", "CRITICAL", "FATAL")
_JSON_SKIP_KEYS = ("timestamp", "level", "requestId", "logger", "type")


def request_hash_fraction(request_id: str) -> float:
    """A stable number in [0, 1) for a request id (32-bit FNV-1a; no hashlib import)."""
    value = 0x811C9DC5
    for byte in request_id.encode("utf-8", "replace"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value / 4294967296.0


def keep_request(request_id: str | None, rate: float) -> bool:
    """The sampling decision for one invocation; lines outside any invocation are kept."""
    if rate >= 1.0 or request_id is None:
        return True
    return request_hash_fraction(request_id) < rate


def always_kept(record: Any) -> bool:
    """ERROR-level, traceback, timeout and out-of-memory lines survive sampling."""
    if isinstance(record, dict):
        level = record.get("level")
        if isinstance(level, str) and level.upper() in _ERROR_LEVELS:
            return True
        text = record.get("message")
        if not isinstance(text, str):
            return False
    elif isinstance(record, str):
        text = record
    else:
        return False
    return any(marker in text for marker in _ALWAYS_KEEP_MARKERS)


class Redactor:
    """Applies the built-in and the configured patterns; compiled on first use."""

    def __init__(self, user_patterns: Sequence[str] = ()) -> None:
        self.user_patterns = tuple(user_patterns)
        self._compiled: list[tuple[Any, str]] | None = None
        self._lock = threading.Lock()

    def _compile(self) -> list[tuple[Any, str]]:
        with self._lock:
            if self._compiled is None:
                import re

                compiled = [(re.compile(p), r) for p, r in BUILTIN_PATTERNS]
                for pattern in self.user_patterns:
                    try:
                        compiled.append((re.compile(pattern), REDACTED))
                    except re.error as exc:
                        log.warning(
                            "LAMBDASCOPE_REDACT pattern %r is not a valid regular expression "
                            "(%s); ignored, the other patterns still apply" % (pattern, exc)
                        )
                self._compiled = compiled
            return self._compiled

    def text(self, value: str) -> str:
        for regex, replacement in self._compiled or self._compile():
            value = regex.sub(replacement, value)
        return value

    def record(self, record: Any) -> Any:
        """The record with secrets replaced (a Text line or a JSON-format object)."""
        if isinstance(record, str):
            return self.text(record)
        if isinstance(record, dict):
            cleaned = {}
            for key, value in record.items():
                if isinstance(value, str) and key not in _JSON_SKIP_KEYS:
                    value = self.text(value)
                cleaned[key] = value
            return cleaned
        return record


class LogFilter:
    """Redacts and samples Telemetry API deliveries in order; tracks the open invocation
    window itself, since Text-format `function` lines carry no request id."""

    def __init__(
        self,
        redact_patterns: Sequence[str] = (),
        sample_rate: float = 1.0,
        concurrent: bool = False,
    ) -> None:
        self.redactor = Redactor(redact_patterns)
        self.sample_rate = sample_rate
        # Managed Instances run several requests at once: the open windows are a tuple, and a
        # line naming no request is sampled by its request only while exactly one is open.
        self.concurrent = concurrent
        self._advance: Any = next_open_request_ids if concurrent else next_open_request_id
        self._window: Any = () if concurrent else None
        self._lock = threading.Lock()
        self.redacted_lines = 0
        self.sampled_out_lines = 0

    def apply(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            kept = []
            for event in events:
                kind = event.get("type")
                request_id = event_request_id(event)
                if kind == "function" or kind == "extension":
                    filtered = self._log_event(event, kind)
                    if filtered is not None:
                        kept.append(filtered)
                    continue
                self._window = self._advance(self._window, str(kind), request_id)
                kept.append(event)
            return kept

    def _log_event(self, event: dict[str, Any], kind: str) -> dict[str, Any] | None:
        record = event.get("record")
        if kind == "function" and self.sample_rate < 1.0:
            window = self._window
            if self.concurrent:
                window = window[0] if len(window) == 1 else None
            request_id = event_request_id(event) or window
            if not keep_request(request_id, self.sample_rate) and not always_kept(record):
                self.sampled_out_lines += 1
                return None
        cleaned = self.redactor.record(record)
        if cleaned != record:
            self.redacted_lines += 1
            event = dict(event)
            event["record"] = cleaned
        return event
