from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from lambdascope.analyzers.fleet import LogLine
from lambdascope.tui.format import clock

LEVEL_STYLE = {
    "CRITICAL": "bold red",
    "FATAL": "bold red",
    "ERROR": "red",
    "WARNING": "yellow",
    "WARN": "yellow",
    "DEBUG": "dim",
    "TRACE": "dim",
}
STREAM_STYLE = {"platform": "cyan", "extension": "magenta"}
HIGHLIGHT = "bold black on yellow"


def pretty_json(message: str) -> list[str] | None:
    """A JSON object line as indented lines; None when the line is not one."""
    stripped = message.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return json.dumps(value, indent=2, ensure_ascii=False).splitlines()


class RequestLog(VerticalScroll):
    """One request's log: levels coloured, JSON lines pretty-printed, and one line (the last
    before a timeout's deadline) highlighted and scrolled into view."""

    DEFAULT_CSS = """
    RequestLog {
        height: 1fr;
        min-height: 4;
    }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._content = Static("", id="request-log-text")
        self.lines: list[LogLine] = []

    def compose(self) -> ComposeResult:
        yield self._content

    @property
    def text(self) -> str:
        rendered = self._content.content
        return rendered.plain if isinstance(rendered, Text) else str(rendered)

    def show(self, lines: list[LogLine], highlight: LogLine | None = None) -> None:
        self.lines = list(lines)
        if not lines:
            self.show_text("No log lines stored for this request.")
            return
        text = Text()
        highlighted_row = 0
        row = 0
        for line in lines:
            marked = highlight is not None and line == highlight
            if marked:
                highlighted_row = row
            style = LEVEL_STYLE.get(line.level, STREAM_STYLE.get(line.stream, ""))
            parts = pretty_json(line.message)
            if parts is None:
                # Tabs render as wide gaps; a stack trace (\n, or \r as awslambdaric joins
                # it) continues on indented lines under its timestamp.
                parts = line.message.replace("\t", "  ").replace("\r", "\n").split("\n")
            for index, part in enumerate(parts):
                prefix = clock(line.timestamp) if index == 0 else " " * 12
                text.append(prefix + "  ", style="dim")
                if index == 0 and line.level:
                    text.append(f"{line.level:<7} ", style=style or "")
                elif index == 0:
                    text.append(" " * 8)
                text.append(part, style=HIGHLIGHT if marked else style)
                if marked and index == 0:
                    text.append("  ◀ last line before the deadline", style="bold yellow")
                text.append("\n")
                row += 1
        text.rstrip()
        self._content.update(text)
        self.scroll_home(animate=False)
        if highlight is not None:
            # Keep a few lines of context above the highlighted one.
            self.call_after_refresh(self.scroll_to, y=max(0, highlighted_row - 3), animate=False)

    def show_text(self, message: str, style: str = "dim") -> None:
        self.lines = []
        self._content.update(Text(message, style=style))
        self.scroll_home(animate=False)
