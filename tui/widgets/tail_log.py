"""The live tail's log: lines grouped by request as they arrive, and how each line looks.

:class:`TailBuffer` is pure (the screen feeds it pages, tests feed it lines); :class:`TailLog`
shows one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from lambdascope.analyzers.tail import TailLine
from lambdascope.tui.format import clock

__all__ = ["LEVEL_STYLE", "RequestGroup", "TailBuffer", "TailLog", "compact_json", "line_text"]

LEVEL_STYLE = {
    "CRITICAL": "bold red",
    "ERROR": "red",
    "WARNING": "yellow",
    "DEBUG": "dim",
    "TRACE": "dim",
}
STREAM_STYLE = {"platform": "cyan", "extension": "magenta"}
STATUS_STYLE = {"success": "green", "error": "red", "failure": "red", "timeout": "red"}

_DURATION = re.compile(r"\bDuration: ([0-9.]+) ms")
_STATUS = re.compile(r"\bStatus: (\w+)")
# Keys a JSON logger repeats that the tail already shows (time, level, request id).
_SHOWN_KEYS = frozenset(
    ("timestamp", "time", "@timestamp", "level", "levelname", "severity", "log.level")
    + ("requestId", "request_id", "aws_request_id", "AWSRequestId")
)
_MESSAGE_KEYS = ("message", "msg")


@dataclass
class RequestGroup:
    """One request's lines (or a run of lines that belong to no request) and its outcome."""

    function_name: str
    request_id: str
    lines: list[TailLine] = field(default_factory=list)
    status: str | None = None
    duration_ms: float | None = None

    def add(self, line: TailLine) -> None:
        self.lines.append(line)
        message = line.message
        if line.stream == "platform" and message.startswith("REPORT RequestId:"):
            if (duration := _DURATION.search(message)) is not None:
                self.duration_ms = float(duration.group(1))
            status = _STATUS.search(message)
            self.status = status.group(1).lower() if status else "success"
        elif "Task timed out after" in message and self.status is None:
            self.status = "timeout"

    def header(self) -> Text:
        text = Text()
        text.append(self.function_name, style="bold")
        text.append("  ")
        text.append(self.request_id or "(no request)", style="bold" if self.request_id else "dim")
        if self.status is not None:
            text.append("  ")
            text.append(self.status, style=STATUS_STYLE.get(self.status, "yellow"))
        if self.duration_ms is not None:
            text.append(f"  {self.duration_ms:,.0f} ms")
        return text


class TailBuffer:
    """The last ``max_lines`` lines, grouped by request in order of their first line.

    A request's later lines join its group however long ago it started, so its lines stay
    together; lines without a request id form a group per run of them.
    """

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self.groups: list[RequestGroup] = []
        self._by_request: dict[tuple[str, str], RequestGroup] = {}
        self.line_count = 0
        #: Lines dropped to stay within ``max_lines`` since the last clear.
        self.dropped = 0

    def add(self, lines: Iterable[TailLine]) -> None:
        for line in lines:
            self._group_for(line).add(line)
            self.line_count += 1
        while self.line_count > self.max_lines:
            self._drop_oldest()

    def clear(self) -> None:
        self.groups.clear()
        self._by_request.clear()
        self.line_count = 0
        self.dropped = 0

    def _group_for(self, line: TailLine) -> RequestGroup:
        if not line.request_id:
            last = self.groups[-1] if self.groups else None
            if last is None or last.request_id or last.function_name != line.function_name:
                last = RequestGroup(line.function_name, "")
                self.groups.append(last)
            return last
        key = (line.function_name, line.request_id)
        group = self._by_request.get(key)
        if group is None:
            group = self._by_request[key] = RequestGroup(line.function_name, line.request_id)
            self.groups.append(group)
        return group

    def _drop_oldest(self) -> None:
        group = self.groups[0]
        group.lines.pop(0)
        self.line_count -= 1
        self.dropped += 1
        if not group.lines:
            self.groups.pop(0)
            if self._by_request.get((group.function_name, group.request_id)) is group:
                del self._by_request[(group.function_name, group.request_id)]

    def render(self, highlight: str = "") -> Text:
        """The groups as text; ``highlight`` (the text filter) marked wherever it appears."""
        text = Text()
        for group in self.groups:
            text.append_text(group.header())
            text.append("\n")
            for line in group.lines:
                text.append_text(line_text(line))
                text.append("\n")
        text.rstrip()
        if highlight:
            text.highlight_words([highlight], style="reverse", case_sensitive=False)
        return text


def compact_json(message: str) -> str | None:
    """A JSON object's line on one line: its message, then its other keys as ``key=value``;
    ``None`` when the line is not a JSON object."""
    stripped = message.strip()
    if not stripped.startswith("{"):
        return None
    try:
        record = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    head = next((str(record[key]) for key in _MESSAGE_KEYS if key in record), "")
    rest = [
        f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in record.items()
        if key not in _SHOWN_KEYS and key not in _MESSAGE_KEYS
    ]
    return "  ".join(part for part in (head, " ".join(rest)) if part)


def line_text(line: TailLine) -> Text:
    """``  12:00:01.250  ERROR    message``: time, level in its colour, the message; a stack
    trace continues on indented lines."""
    level = line.level.upper()
    style = LEVEL_STYLE.get(level) or STREAM_STYLE.get(line.stream, "")
    message = compact_json(line.message) or line.message
    # Tabs render as wide gaps; awslambdaric joins a traceback's lines with \r.
    parts = message.rstrip().replace("\t", "  ").replace("\r", "\n").split("\n")
    text = Text()
    for index, part in enumerate(parts):
        if index == 0:
            text.append(f"  {clock(line.timestamp)}  ", style="dim")
            text.append(f"{level:<8} " if level else " " * 9, style=style or "dim")
        else:
            text.append("\n" + " " * 25)
        text.append(part, style=style)
    if line.attributes:
        pairs = (f"{key}={value}" for key, value in sorted(line.attributes.items()))
        text.append("  " + " ".join(pairs), style="dim")
    return text


class TailLog(VerticalScroll):
    """The tail's lines; follows the newest while the user has not scrolled up."""

    DEFAULT_CSS = """
    TailLog {
        height: 1fr;
        border: round $panel;
    }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._content = Static("", id="tail-text")

    def compose(self) -> ComposeResult:
        yield self._content

    @property
    def text(self) -> str:
        """What the view shows, as plain text."""
        rendered = self._content.content
        return rendered.plain if isinstance(rendered, Text) else str(rendered)

    def show(self, buffer: TailBuffer, empty: str, highlight: str = "") -> None:
        following = self.scroll_y >= self.max_scroll_y
        shown = buffer.render(highlight) if buffer.groups else Text(empty, style="dim")
        self._content.update(shown)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)
