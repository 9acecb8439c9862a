from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from lambdascope.analyzers.fleet import LogLine
from lambdascope.tui.format import clock

STREAM_STYLE = {"platform": "cyan", "extension": "magenta", "function": ""}


class LogView(VerticalScroll):
    """One request's log: START, its lines in order, END and REPORT.

    The whole log is one ``Static`` replaced on each show, so a late load can never leave
    lines of two requests interleaved (a request's log is bounded by the read model's limit).
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.messages: list[str] = []
        self._content = Static("", id="log-text")

    def compose(self) -> ComposeResult:
        yield self._content

    @property
    def text(self) -> str:
        """What the view shows, as plain text."""
        rendered = self._content.content
        return rendered.plain if isinstance(rendered, Text) else str(rendered)

    def show(self, request_id: str, lines: list[LogLine]) -> None:
        self.messages = [line.message for line in lines]
        if not lines:
            self._set(Text(f"No log lines stored for {request_id}.", style="dim"))
            return
        text = Text()
        for line in lines:
            failed = line.level in ("ERROR", "CRITICAL", "FATAL")
            style = "red" if failed else STREAM_STYLE.get(line.stream, "")
            # Tabs in Lambda's lines would render as wide gaps; a stack trace (\n, or \r as
            # awslambdaric joins it) continues on indented lines under its timestamp.
            parts = line.message.replace("\t", "  ").replace("\r", "\n").split("\n")
            for index, part in enumerate(parts):
                prefix = clock(line.timestamp) if index == 0 else " " * 12
                text.append(prefix + "  ", style="dim")
                text.append(part, style=style)
                text.append("\n")
        text.rstrip()
        self._set(text)

    def show_text(self, text: str, style: str = "dim") -> None:
        self.messages = []
        self._set(Text(text, style=style))

    def _set(self, text: Text) -> None:
        self._content.update(text)
        self.scroll_home(animate=False)
