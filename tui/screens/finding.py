"""One finding: what it says, its invocations, and the highlighted request's log."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from lambdascope.analyzers import Finding
from lambdascope.analyzers.fleet import Invocation, finding_invocations, request_log_view
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui.format import error_text
from lambdascope.tui.messages import InvocationsLoaded, LoadFailed, LogsLoaded
from lambdascope.tui.names import figure_line, kind_name
from lambdascope.tui.widgets import InvocationsTable, LogView
from lambdascope.tui.widgets.findings_table import SEVERITY_STYLE


class FindingScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
        Binding("s", "toggle_sql", "SQL"),
    ]

    def __init__(self, client: QueryClient, finding: Finding) -> None:
        super().__init__()
        self.client = client
        self.finding = finding
        self._log_request_id: str | None = None
        self._showing_sql = False

    def compose(self) -> ComposeResult:
        finding = self.finding
        yield Header()
        title = Text()
        title.append(finding.severity, style=SEVERITY_STYLE.get(finding.severity, ""))
        title.append(f"  {kind_name(finding.kind)}  {finding.function_name}")
        if finding.function_version:  # empty: the finding covers every version
            title.append(f" · version {finding.function_version}")
        title.append(f"\n{finding.summary}", style="bold")
        if finding.numbers:
            title.append("\n" + figure_line(finding.numbers), style="dim")
        title.append(f"\n{finding.recommendation}", style="italic")
        total = int(finding.numbers.get("evidence_total", len(finding.evidence_request_ids)))
        if total > len(finding.evidence_request_ids):
            title.append(
                f"\nShowing {len(finding.evidence_request_ids)} of {total} requests.", style="dim"
            )
        yield Static(title, id="finding-summary")
        yield Static("Loading invocations…", id="status")
        yield Label("Invocations", classes="section")
        yield InvocationsTable(id="invocations")
        yield Label("Log of the highlighted request", classes="section")
        yield LogView(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{kind_name(self.finding.kind)}: {self.finding.function_name}"
        self.query_one(InvocationsTable).focus()
        self.load_invocations()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_sql(self) -> None:
        """Show the SQL behind the finding in the log pane, or go back to the request's log."""
        log = self.query_one(LogView)
        if self._showing_sql:
            self._showing_sql = False
            self._log_request_id = None
            request_id = self.highlighted_request_id()
            invocation = self.query_one(InvocationsTable).invocations.get(request_id or "")
            if invocation is not None:
                self.open_log(invocation)
            else:
                log.show_text("No request to show.")
            return
        self._showing_sql = True
        log.show_text(
            "The query behind this finding (press s again for the request's log):\n"
            + self.finding.query.strip(),
            style="",
        )

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
            status.update(
                "None of this finding's requests are in the store any more "
                "(expired, or outside the window)."
            )
            self.query_one(LogView).show_text("No request to show.")
            return
        status.update(f"{len(message.invocations)} invocations. Move to see each request's log.")
        self.open_log(message.invocations[0])

    @on(DataTable.RowHighlighted, "#invocations")
    def highlight_invocation(self, event: DataTable.RowHighlighted) -> None:
        invocation = self.query_one(InvocationsTable).invocations.get(str(event.row_key.value))
        if invocation is not None:
            self.open_log(invocation)

    def open_log(self, invocation: Invocation) -> None:
        # Filling the table highlights its first row too: load each request's log once.
        if invocation.request_id == self._log_request_id:
            return
        self._showing_sql = False
        self._log_request_id = invocation.request_id
        self.query_one(LogView).show_text(f"Loading the log of {invocation.request_id}…")
        self.load_logs(invocation)

    @on(LogsLoaded)
    def show_logs(self, message: LogsLoaded) -> None:
        if self._showing_sql or self.highlighted_request_id() not in (None, message.request_id):
            return  # the user moved on (or reads the SQL); a newer load may be coming
        self.query_one(LogView).show(message.request_id, message.lines)

    def highlighted_request_id(self) -> str | None:
        table = self.query_one(InvocationsTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(LoadFailed)
    def show_error(self, message: LoadFailed) -> None:
        status = self.query_one("#status", Static)
        status.add_class("error")
        status.update(message.text + (" Press r to retry." if message.unavailable else ""))
