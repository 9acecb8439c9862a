"""The fleet at a glance: one row per function, and the findings, most severe first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from lambdascope.analyzers import run_detectors
from lambdascope.analyzers.fleet import fleet_summary
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui.format import clock, error_text, span
from lambdascope.tui.messages import FleetLoaded, LoadFailed
from lambdascope.tui.screens.finding import FindingScreen
from lambdascope.tui.widgets import FindingsTable, FleetTable


class MainScreen(Screen[None]):
    BINDINGS = [Binding("r", "refresh", "Refresh")]

    def __init__(
        self, client: QueryClient, *, since: timedelta, now: datetime | None = None
    ) -> None:
        super().__init__()
        self.client = client
        self.since = since
        self.now = now

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading…", id="status")
        yield Label("Fleet", classes="section")
        yield FleetTable(id="fleet")
        yield Label("Findings  (Enter: open evidence)", classes="section")
        yield FindingsTable(id="findings")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"last {span(self.since)}"
        self.load()

    def action_refresh(self) -> None:
        self.query_one("#status", Static).update("Refreshing…")
        self.load()

    @work(thread=True, exclusive=True, group="fleet")
    def load(self) -> None:
        # A fixed clock (tests, replays) or the wall clock at each refresh.
        now = self.now or datetime.now(UTC)
        try:
            fleet = fleet_summary(self.client, since=self.since, now=now)
            findings = run_detectors(self.client, since=self.since, now=now)
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(LoadFailed(error_text(exc), unavailable=unavailable))
            return
        self.post_message(FleetLoaded(fleet, findings, now))

    @on(FleetLoaded)
    def show_fleet(self, message: FleetLoaded) -> None:
        status = self.query_one("#status", Static)
        status.remove_class("error")
        self.query_one(FleetTable).show(message.fleet)
        findings_table = self.query_one(FindingsTable)
        findings_table.show(message.findings)
        window = f"last {span(self.since)} to {clock(message.window_end)} UTC"
        if not message.fleet:
            status.update(
                f"No invocations in the {window}. Point a function's extension at the "
                "collector (LAMBDASCOPE_COLLECTOR_URL) or run `lambdascope demo`."
            )
        elif not message.findings:
            status.update(
                f"{len(message.fleet)} functions, no findings in the {window}: "
                "nothing needs attention."
            )
        else:
            critical = sum(f.severity == "critical" for f in message.findings)
            status.update(
                f"{len(message.fleet)} functions, {len(message.findings)} findings "
                f"({critical} critical) in the {window}."
            )
        if message.findings:
            findings_table.focus()
        else:
            self.query_one(FleetTable).focus()

    @on(LoadFailed)
    def show_error(self, message: LoadFailed) -> None:
        status = self.query_one("#status", Static)
        status.add_class("error")
        hint = " Press r to retry." if message.unavailable else ""
        status.update(message.text + hint)

    @on(DataTable.RowSelected, "#findings")
    def open_finding(self, event: DataTable.RowSelected) -> None:
        finding = self.query_one(FindingsTable).finding_at(event.row_key.value)
        if finding is not None:
            self.app.push_screen(FindingScreen(self.client, finding))
