"""One finding: what it says, its invocations, and the highlighted request's log.

At 80x24 what matters is seen without scrolling: the finding in two or three lines (its
figures and what to do behind ``m``), a few invocations, and the log in the rest. From 40
rows the figures and the advice show too; from 140 columns the invocations and the log sit
side by side.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from lambdascope.analyzers import Finding
from lambdascope.analyzers.fleet import Invocation, finding_invocations, request_log_view
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui.format import error_text
from lambdascope.tui.messages import InvocationsLoaded, LoadFailed, LogsLoaded
from lambdascope.tui.names import figure_line, kind_name
from lambdascope.tui.screens.invocation import InvocationScreen
from lambdascope.tui.sql_text import bind_for_display
from lambdascope.tui.widgets import InvocationsTable, LogView
from lambdascope.tui.widgets.findings_table import SEVERITY_STYLE

#: From this height the figures and the advice show without pressing m.
TALL = 40
#: From this width the invocations and the log sit side by side.
WIDE = 140


def finding_title(finding: Finding) -> Text:
    """``critical  Timeout  checkout · version 7`` and the summary under it."""
    title = Text()
    title.append(finding.severity, style=SEVERITY_STYLE.get(finding.severity, ""))
    title.append(f"  {kind_name(finding.kind)}", style="bold")
    if finding.function_name:  # account-wide findings belong to no one function
        title.append(f"  {finding.function_name}")
    if finding.function_version:  # empty: the finding covers every version
        title.append(f" · version {finding.function_version}")
    title.append(f"\n{finding.summary}")
    return title


def finding_details(finding: Finding) -> Text:
    """The figures and the recommendation: behind ``m`` on a small terminal."""
    details = Text()
    if finding.numbers:
        details.append(figure_line(finding.numbers), style="dim")
    if finding.recommendation:
        details.append(("\n" if details else "") + finding.recommendation, style="italic")
    return details


def sql_parameters(finding: Finding) -> tuple[dict[str, Any], bool]:
    """The values to write into the finding's query, and whether they are the ones it ran
    with; a finding that did not record them gets its own window and function instead."""
    if finding.parameters:
        return dict(finding.parameters), True
    window = Window(finding.window_start, finding.window_end)
    parameters = window.parameters(finding.function_name or None)
    if finding.function_name:
        parameters["function_names"] = [finding.function_name]
    return parameters, False


def sql_text(finding: Finding) -> str:
    if not finding.query.strip():
        return "This finding's detector did not record its query (press s for the log)."
    parameters, recorded = sql_parameters(finding)
    source = (
        "the values it ran with"
        if recorded
        else "this finding's window and function (the detector did not record its values)"
    )
    return (
        f"The query behind this finding, with {source} written in for reading; the store "
        "binds them itself. Press s again for the request's log.\n\n"
        + bind_for_display(finding.query.strip(), parameters)
    )


class FindingScreen(Screen[None]):
    DEFAULT_CSS = """
    FindingScreen #finding-summary {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    FindingScreen #finding-details {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    FindingScreen #evidence {
        layout: vertical;
        height: 1fr;
    }
    FindingScreen #invocations-pane {
        height: auto;
    }
    FindingScreen #invocations {
        height: auto;
        max-height: 6;
    }
    FindingScreen.tall #invocations {
        max-height: 12;
    }
    FindingScreen #log-pane {
        height: 1fr;
    }
    FindingScreen #finding-log {
        height: 1fr;
        border: none;
        padding: 0 1;
    }
    FindingScreen.wide #evidence {
        layout: horizontal;
    }
    FindingScreen.wide #invocations-pane {
        width: 1fr;
        height: 100%;
    }
    FindingScreen.wide #invocations {
        height: 1fr;
        max-height: 100%;
    }
    FindingScreen.wide #log-pane {
        width: 2fr;
        height: 100%;
        border-left: vkey $panel;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
        Binding("s", "toggle_sql", "SQL"),
        Binding("m", "toggle_details", "Figures/advice"),
    ]

    def __init__(self, client: QueryClient, finding: Finding) -> None:
        super().__init__()
        self.client = client
        self.finding = finding
        self._log_request_id: str | None = None
        self._showing_sql = False
        #: None until the user presses m: the terminal's height decides.
        self._details_wanted: bool | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(finding_title(self.finding), id="finding-summary")
        yield Static(finding_details(self.finding), id="finding-details")
        yield Static("Loading invocations…", id="status")
        with Horizontal(id="evidence"):
            with Vertical(id="invocations-pane"):
                yield Label("Invocations  (Enter: open)", classes="section")
                yield InvocationsTable(id="invocations")
            with Vertical(id="log-pane"):
                yield Label("Log of the highlighted request", classes="section", id="log-label")
                yield LogView(id="finding-log")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{kind_name(self.finding.kind)}: {self.finding.function_name}"
        self._fit(self.app.size.width, self.app.size.height)
        self.query_one(InvocationsTable).focus()
        self.load_invocations()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        self.set_class(height >= TALL, "tall")
        self.set_class(width >= WIDE and height >= TALL, "wide")
        self._show_details()

    @property
    def details_shown(self) -> bool:
        if self._details_wanted is not None:
            return self._details_wanted
        return self.has_class("tall")

    def _show_details(self) -> None:
        details = self.query_one("#finding-details", Static)
        details.display = self.details_shown and bool(finding_details(self.finding))

    def action_toggle_details(self) -> None:
        self._details_wanted = not self.details_shown
        self._show_details()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_sql(self) -> None:
        """Show the SQL behind the finding in the log pane, or go back to the request's log."""
        log = self.query_one(LogView)
        label = self.query_one("#log-label", Label)
        if self._showing_sql:
            self._showing_sql = False
            self._log_request_id = None
            label.update("Log of the highlighted request")
            invocation = self.query_one(InvocationsTable).invocation_at(
                self.highlighted_request_id()
            )
            if invocation is not None:
                self.open_log(invocation)
            else:
                log.show_text("No request to show.")
            return
        self._showing_sql = True
        label.update("The query behind this finding")
        log.show_text(sql_text(self.finding), style="")

    def action_refresh(self) -> None:
        self._log_request_id = None
        self.load_invocations()

    @work(thread=True, exclusive=True, group="invocations")
    def load_invocations(self) -> None:
        try:
            invocations = finding_invocations(self.client, self.finding)
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(LoadFailed(error_text(exc), unavailable=unavailable))
            return
        self.post_message(InvocationsLoaded(invocations))

    @work(thread=True, exclusive=True, group="logs")
    def load_logs(self, invocation: Invocation) -> None:
        try:
            lines = request_log_view(self.client, invocation)
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(LoadFailed(error_text(exc), unavailable=unavailable))
            return
        self.post_message(LogsLoaded(invocation.request_id, lines))

    @on(InvocationsLoaded)
    def show_invocations(self, message: InvocationsLoaded) -> None:
        status = self.query_one("#status", Static)
        status.remove_class("error")
        table = self.query_one(InvocationsTable)
        table.show(message.invocations)
        if not message.invocations:
            # The detector read these ids from the store over this very window, so the only
            # way they are gone is the store's retention having dropped them since.
            status.update(
                "The store no longer holds this finding's requests: they are older than it "
                "keeps invocations (its retention period). Run the detectors again over a "
                "recent window."
            )
            self.query_one(LogView).show_text("No request to show.")
            return
        shown = len(message.invocations)
        total = int(self.finding.numbers.get("evidence_total", shown) or shown)
        count = f"{shown} of {total} requests" if total > shown else f"{shown} requests"
        status.update(f"{count}. Move to read each one's log; Enter opens it.")
        self.open_log(message.invocations[0])

    @on(DataTable.RowHighlighted, "#invocations")
    def highlight_invocation(self, event: DataTable.RowHighlighted) -> None:
        invocation = self.query_one(InvocationsTable).invocation_at(event.row_key.value)
        if invocation is not None:
            self.open_log(invocation)

    @on(DataTable.RowSelected, "#invocations")
    def open_invocation(self, event: DataTable.RowSelected) -> None:
        invocation = self.query_one(InvocationsTable).invocation_at(event.row_key.value)
        if invocation is None:
            return
        # The finding's window holds its evidence; widened in case a request began just
        # before it (the detectors count a request where it ended).
        start = min(self.finding.window_start, invocation.start_time)
        end = max(self.finding.window_end, invocation.start_time)
        self.app.push_screen(
            InvocationScreen(
                self.client,
                invocation.request_id,
                invocation.function_name or self.finding.function_name,
                Window(start, end),
            )
        )

    def open_log(self, invocation: Invocation) -> None:
        # Filling the table highlights its first row too: load each request's log once.
        if invocation.request_id == self._log_request_id:
            return
        self._showing_sql = False
        self.query_one("#log-label", Label).update("Log of the highlighted request")
        self._log_request_id = invocation.request_id
        self.query_one(LogView).show_text(f"Loading the log of {invocation.request_id}…")
        self.load_logs(invocation)

    @on(LogsLoaded)
    def show_logs(self, message: LogsLoaded) -> None:
        if self._showing_sql or self.highlighted_request_id() not in (None, message.request_id):
            return  # the user moved on (or reads the SQL); a newer load may be coming
        self.query_one(LogView).show(message.request_id, message.lines)

    def highlighted_request_id(self) -> str | None:
        return self.query_one(InvocationsTable).cursor_key

    @on(LoadFailed)
    def show_error(self, message: LoadFailed) -> None:
        status = self.query_one("#status", Static)
        status.add_class("error")
        status.update(message.text + (" Press r to retry." if message.unavailable else ""))
