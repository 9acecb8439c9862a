"""The live tail: every function's log lines (or one function's) as they arrive, by request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from lambdascope.analyzers.tail import PAGE_SIZE, TailCursor, TailPage, tail_lines
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui.format import error_text
from lambdascope.tui.widgets.tail_log import TailBuffer, TailLog

__all__ = ["TailFailed", "TailRead", "TailScreen", "parse_filter"]

#: Lines kept on screen; older ones are dropped (and counted) as new ones arrive.
MAX_LINES = 2000
#: How far back the tail starts: the last minute, so a quiet fleet does not open empty.
LOOKBACK = timedelta(minutes=1)


class TailRead(Message):
    def __init__(self, generation: int, page: TailPage) -> None:
        super().__init__()
        self.generation = generation
        self.page = page


class TailFailed(Message):
    def __init__(self, generation: int, text: str, *, unavailable: bool) -> None:
        super().__init__()
        self.generation = generation
        self.text = text
        self.unavailable = unavailable


def parse_filter(value: str, function_names: set[str]) -> tuple[str | None, str]:
    """Pure: ``(function_name, text)`` from what was typed after ``/``.

    ``function:NAME words`` picks a function and text; a known function's bare name picks it;
    anything else is text to look for.
    """
    value = value.strip()
    if value.startswith("function:"):
        name, _, text = value.removeprefix("function:").partition(" ")
        return (name or None), text.strip()
    if value in function_names:
        return value, ""
    return None, value


class TailScreen(Screen[None]):
    """``function_name`` follows one function, ``None`` all; ``start`` pins where the tail
    begins (tests, replays; the last minute otherwise), ``interval_s`` the polling period."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("space", "toggle_pause", "Pause/resume"),
        Binding("slash", "filter", "Filter"),
        Binding("c", "clear", "Clear"),
        Binding("r", "retry", "Retry"),
    ]

    # The log, not the (hidden) filter box: space and c are the tail's keys, not text.
    AUTO_FOCUS = "TailLog"

    DEFAULT_CSS = """
    TailScreen #tail-filter {
        display: none;
        height: 3;
    }
    TailScreen #tail-filter.shown {
        display: block;
    }
    """

    def __init__(
        self,
        client: QueryClient,
        function_name: str | None = None,
        *,
        start: datetime | None = None,
        interval_s: float = 2.0,
        max_lines: int = MAX_LINES,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__()
        self.client = client
        self.start = start
        self.interval_s = interval_s
        self.page_size = page_size
        self.function_name = function_name
        self.text = ""
        self.paused = False
        self.buffer = TailBuffer(max_lines)
        self.error: str | None = None
        self._cursor = self._starting_cursor()
        # Bumped when the filter changes: a read started before it is not shown.
        self._generation = 0
        self._reading = False
        # Every function the tail has shown a line of: a bare name typed after / picks one.
        self._functions_seen: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Starting…", id="status")
        yield Input(
            placeholder="text to look for, a function's name, or function:NAME text",
            id="tail-filter",
        )
        yield TailLog(id="tail")
        yield Footer()

    def on_mount(self) -> None:
        self._update_status()
        self.set_interval(self.interval_s, self.poll)
        self.poll()

    def _starting_cursor(self) -> TailCursor:
        return TailCursor.starting_at(self.start or datetime.now(UTC) - LOOKBACK)

    # Reading --------------------------------------------------------------------------------

    def poll(self) -> None:
        """Read the next page unless paused, failed, or a read is still running."""
        if self.paused or self.error is not None or self._reading:
            return
        self._reading = True
        self.read_page(self._generation, self._cursor, self.function_name, self.text)

    @work(thread=True, group="tail")
    def read_page(
        self, generation: int, cursor: TailCursor, function_name: str | None, text: str
    ) -> None:
        try:
            page = tail_lines(
                self.client, cursor, function_name=function_name, text=text, limit=self.page_size
            )
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(TailFailed(generation, error_text(exc), unavailable=unavailable))
            return
        self.post_message(TailRead(generation, page))

    @on(TailRead)
    def show_page(self, message: TailRead) -> None:
        if message.generation != self._generation:
            return  # read under a filter since changed
        self._reading = False
        page = message.page
        self._cursor = page.cursor
        self._functions_seen.update(line.function_name for line in page.lines)
        if page.lines or not self.buffer.groups:
            self.buffer.add(page.lines)
            self.query_one(TailLog).show(self.buffer, self._empty_text(), self.text)
        if page.late_lines_skipped:
            self.notify("More late lines arrived than one read holds; some were not shown.")
        self._update_status()
        if page.more:
            self.poll()  # a burst: catch up without waiting for the timer

    @on(TailFailed)
    def show_error(self, message: TailFailed) -> None:
        if message.generation != self._generation:
            return
        self._reading = False
        self.error = message.text + " Press r to retry."
        self.refresh_bindings()
        self._update_status()

    # Keys -----------------------------------------------------------------------------------

    def action_back(self) -> None:
        filter_input = self.query_one("#tail-filter", Input)
        if filter_input.has_class("shown"):
            self._hide_filter()
            return
        self.app.pop_screen()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self._update_status()
        self.poll()

    def action_clear(self) -> None:
        self.buffer.clear()
        self.query_one(TailLog).show(self.buffer, self._empty_text())
        self._update_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """r is dimmed in the footer while there is nothing to retry."""
        if action == "retry" and self.error is None:
            return None
        return True

    def action_retry(self) -> None:
        if self.error is None:
            return
        self.error = None
        self.refresh_bindings()
        self._update_status()
        self.poll()

    def action_filter(self) -> None:
        filter_input = self.query_one("#tail-filter", Input)
        filter_input.add_class("shown")
        filter_input.focus()

    @on(Input.Submitted, "#tail-filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        known = self._functions_seen | {self.function_name or ""}
        function_name, text = parse_filter(event.value, known - {""})
        self._hide_filter()
        self.function_name = function_name
        self.text = text
        # Start over under the new filter, from where the tail began.
        self._generation += 1
        self._reading = False
        self._cursor = self._starting_cursor()
        self.buffer.clear()
        self.query_one(TailLog).show(self.buffer, "Reading…")
        self._update_status()
        self.poll()

    def _hide_filter(self) -> None:
        self.query_one("#tail-filter", Input).remove_class("shown")
        self.query_one(TailLog).focus()

    # What the screen says -------------------------------------------------------------------

    def _scope(self) -> str:
        scope = self.function_name or "all functions"
        if self.text:
            scope += f", lines with '{self.text}'"
        return scope

    def _empty_text(self) -> str:
        return f"No log lines yet from {self._scope()}. New lines appear here as they arrive."

    def _update_status(self) -> None:
        self.sub_title = f"tail: {self._scope()} ({'paused' if self.paused else 'live'})"
        status = self.query_one("#status", Static)
        if self.error is not None:
            status.add_class("error")
            status.update(self.error)
            return
        status.remove_class("error")
        buffer = self.buffer
        parts = [
            "Paused (space to resume)" if self.paused else "Following",
            f"{buffer.line_count:,} lines in {len(buffer.groups):,} groups",
        ]
        if buffer.dropped:
            parts.append(
                f"{buffer.dropped:,} older lines dropped (keeping the last {buffer.max_lines:,})"
            )
        status.update(" · ".join(parts))
