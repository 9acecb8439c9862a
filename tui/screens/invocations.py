"""A function's invocations in the window, a page at a time, filtered and ordered by the
store: only the rows on screen are read."""

from __future__ import annotations

import re
from dataclasses import replace

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from lambdascope.analyzers.invocation_view import (
    InvocationFilters,
    InvocationPage,
    invocations_page,
)
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui.format import clock, error_text
from lambdascope.tui.messages import LoadFailed
from lambdascope.tui.screens.invocation import InvocationScreen
from lambdascope.tui.widgets.invocation_list import InvocationList
from lambdascope.tui.widgets.status_line import StatusLine

#: Lines of the screen that are not table rows: header, filter line, status, the table's
#: header, footer, and one spare.
CHROME_LINES = 6
ORDER_NAMES = {"newest": "newest first", "slowest": "slowest first", "failed": "failed first"}
FILTER_HELP = (
    "status:timeout  status:failed  cold  version:7  >500ms  >2s  "
    "and any other words: text in the request's logs"
)
_DURATION = re.compile(r"^>=?(\d+(?:\.\d+)?)(ms|s)?$")


def parse_filters(text: str, order: str = "newest") -> InvocationFilters:
    """Filters from what the user typed: ``status:X``, ``cold``, ``version:X``, ``>N`` (ms,
    or with ``ms``/``s``); the other words are text to find in the request's logs."""
    status, version, cold, min_ms = "", "", False, 0.0
    words = []
    for word in text.split():
        key, _, value = word.partition(":")
        duration = _DURATION.match(word)
        if key.lower() == "status" and value:
            status = value.lower()
        elif key.lower() in ("version", "v") and value:
            version = value
        elif word.lower() in ("cold", "is:cold"):
            cold = True
        elif duration:
            amount = float(duration.group(1))
            min_ms = amount * 1000 if duration.group(2) == "s" else amount
        else:
            words.append(word)
    return InvocationFilters(
        status=status,
        cold_only=cold,
        function_version=version,
        min_duration_ms=min_ms,
        log_text=" ".join(words),
        order=order if order in ORDER_NAMES else "newest",  # type: ignore[arg-type]
    )


def filter_text(filters: InvocationFilters) -> str:
    """The inverse of :func:`parse_filters`, to edit the current filters."""
    words = []
    if filters.status:
        words.append(f"status:{filters.status}")
    if filters.cold_only:
        words.append("cold")
    if filters.function_version:
        words.append(f"version:{filters.function_version}")
    if filters.min_duration_ms:
        words.append(f">{filters.min_duration_ms:g}ms")
    if filters.log_text:
        words.append(filters.log_text)
    return " ".join(words)


class InvocationsScreen(Screen[None]):
    DEFAULT_CSS = """
    InvocationsScreen #filters {
        height: auto;
        padding: 0 1;
    }
    InvocationsScreen #status {
        height: auto;
        padding: 0 1;
    }
    InvocationsScreen #status.error {
        color: $error;
        text-style: bold;
    }
    InvocationsScreen #filter-input {
        display: none;
    }
    InvocationsScreen #filter-input.editing {
        display: block;
    }
    InvocationsScreen #page {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("n", "next_page", "Next page"),
        Binding("p", "previous_page", "Prev page"),
        Binding("s", "order('slowest')", "Slowest"),
        Binding("f", "order('failed')", "Failed"),
        Binding("l", "order('newest')", "Latest"),
        Binding("c", "toggle_cold", "Cold only"),
        Binding("slash", "edit_filters", "Filter"),
        Binding("r", "refresh", "Refresh"),
    ]

    class Loaded(Message):
        def __init__(self, page: InvocationPage, filters: InvocationFilters) -> None:
            super().__init__()
            self.page = page
            self.filters = filters

    def __init__(
        self,
        client: QueryClient,
        function_name: str,
        window: Window,
        *,
        filters: InvocationFilters | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.function_name = function_name
        self.window = window
        self.filters = filters or InvocationFilters()
        self.page_offset = 0
        self.page: InvocationPage | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="filters")
        yield Input(placeholder=FILTER_HELP, id="filter-input")
        yield StatusLine("Loading…", id="status")
        yield InvocationList(id="page")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = (
            f"{self.function_name} · {clock(self.window.start)[:5]}–"
            f"{clock(self.window.end)[:5]} UTC"
        )
        self.query_one(InvocationList).focus()
        self._show_filters()
        self.load()

    @property
    def page_size(self) -> int:
        """As many rows as the table shows at the terminal's height."""
        return max(5, self.app.size.height - CHROME_LINES)

    def on_resize(self, event: events.Resize) -> None:
        page = self.page
        if page is not None and page.limit != self.page_size:
            self.load()

    def action_back(self) -> None:
        field = self.query_one("#filter-input", Input)
        if field.has_class("editing"):
            field.remove_class("editing")
            self.query_one(InvocationList).focus()
            return
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self._status("Refreshing…")
        self.load()

    def action_next_page(self) -> None:
        if self.page is not None and self.page.has_next:
            self.page_offset = self.page.offset + self.page.limit
            self.load()

    def action_previous_page(self) -> None:
        if self.page_offset > 0:
            self.page_offset = max(0, self.page_offset - self.page_size)
            self.load()

    def action_order(self, order: str) -> None:
        self._apply(parse_filters(filter_text(self.filters), order))

    def action_toggle_cold(self) -> None:
        self._apply(replace(self.filters, cold_only=not self.filters.cold_only))

    def action_edit_filters(self) -> None:
        field = self.query_one("#filter-input", Input)
        field.value = filter_text(self.filters)
        field.add_class("editing")
        field.focus()

    @on(Input.Submitted, "#filter-input")
    def filters_entered(self, event: Input.Submitted) -> None:
        event.input.remove_class("editing")
        self.query_one(InvocationList).focus()
        self._apply(parse_filters(event.value, self.filters.order))

    def _apply(self, filters: InvocationFilters) -> None:
        self.filters = filters
        self.page_offset = 0
        self._show_filters()
        self.load()

    def _show_filters(self, page: InvocationPage | None = None) -> None:
        text = Text()
        text.append(ORDER_NAMES[self.filters.order], style="bold")
        described = self.filters.describe()
        text.append(f" · {described}" if described else " · all invocations", style="cyan")
        if page is not None:
            text.append(
                f" · page {page.number} of {page.pages} ({page.total:,} invocations)",
                style="dim",
            )
        text.append("  / filter", style="dim")
        self.query_one("#filters", Static).update(text)

    @work(thread=True, exclusive=True, group="invocations")
    def load(self) -> None:
        filters, offset, limit = self.filters, self.page_offset, self.page_size
        try:
            page = invocations_page(
                self.client, self.function_name, self.window, filters, offset=offset, limit=limit
            )
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(LoadFailed(error_text(exc), unavailable=unavailable))
            return
        self.post_message(self.Loaded(page, filters))

    def _status(self, text: str) -> None:
        self.query_one("#status", StatusLine).say(text)

    @on(LoadFailed)
    def show_error(self, message: LoadFailed) -> None:
        self.query_one("#status", StatusLine).failed(message.text, unavailable=message.unavailable)

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        if message.filters != self.filters:
            return  # the user changed the filters since: a newer load is coming
        page = self.page = message.page
        self.page_offset = page.offset
        self._show_filters(page)
        self.query_one(InvocationList).show(page.invocations)
        if not page.invocations:
            self._status("No invocation matches in this window.")
        else:
            self._status("")

    @on(DataTable.RowSelected, "#page")
    def open_invocation(self, event: DataTable.RowSelected) -> None:
        invocation = self.query_one(InvocationList).invocation_at(event.row_key.value)
        if invocation is not None:
            self.app.push_screen(
                InvocationScreen(
                    self.client, invocation.request_id, self.function_name, self.window
                )
            )
