"""The fleet at a glance: one row per function, and the findings, most severe first."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Protocol, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from lambdascope.analyzers import Detector, Finding, Window, run_detectors
from lambdascope.analyzers.fleet import FunctionSummary, fleet_summary
from lambdascope.analyzers.thresholds import below_thresholds
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui.format import error_text
from lambdascope.tui.messages import FleetLoaded, LoadFailed, OpenFunction
from lambdascope.tui.screens.finding import FindingScreen
from lambdascope.tui.timewindow import TimeWindow, range_text
from lambdascope.tui.widgets import CommandLine, FindingsTable, FleetTable


class FleetHost(Protocol):
    """What the screen needs of the app (named here so the screen need not import it)."""

    time_window: TimeWindow
    refresh_interval: float
    detectors: dict[str, Detector] | None

    def clock(self) -> datetime: ...
    def resolve(self) -> Window: ...
    def show_window(self, window: Window) -> None: ...
    def pause(self) -> None: ...
    def run_command(self, text: str) -> None: ...


class FleetScreen(Screen[None]):
    """Both panels always show the same resolved window (the app's)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("s", "sort", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("colon", "command_line", "Command"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("tab", "app.focus_next", "Next panel", show=False),
    ]

    def __init__(self, client: QueryClient, *, function_name: str | None = None) -> None:
        super().__init__()
        self.client = client
        self.function_name = function_name
        self.window: Window | None = None
        self.findings: list[Finding] = []
        self._generation = 0
        self._loading = False
        self._loaded_once = False

    @property
    def lambdascope(self) -> FleetHost:
        return cast(FleetHost, self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading…", id="status")
        yield Label("Fleet", classes="section", id="fleet-label")
        yield FleetTable(id="fleet")
        yield Label("Findings, most severe first  (Enter: evidence)", classes="section")
        yield FindingsTable(id="findings")
        yield Input(placeholder="function name contains…", id="filter")
        yield CommandLine(id="command")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(CommandLine).display = False
        self._show_sort()
        self.set_interval(self.lambdascope.refresh_interval, self.tick)
        if self.function_name:
            self.set_filter(self.function_name)
            self.post_message(OpenFunction(self.function_name, self.lambdascope.resolve()))
        self.load()

    # --- reading -------------------------------------------------------------------------

    def tick(self) -> None:
        """The live refresh: only while live, on top, and not already reading."""
        if self.lambdascope.time_window.live and self.app.screen is self and not self._loading:
            self.load()

    def reload(self) -> None:
        """Read again now, e.g. for a new window (an older read still running is ignored)."""
        self.query_one("#status", Static).update("Refreshing…")
        self.load()

    def load(self) -> None:
        self._generation += 1
        self._loading = True
        self._read(self._generation, self.lambdascope.clock())

    @work(thread=True, group="fleet")
    def _read(self, generation: int, now: datetime) -> None:
        window = self.lambdascope.time_window.resolve(now)
        # Both reads get exactly the same bounds, whole minutes (see tui/timewindow.py).
        since = window.end - window.start
        try:
            fleet = fleet_summary(self.client, since=since, now=window.end)
            # The table first: one rollup read, while the detectors make a few dozen.
            self.post_message(FleetLoaded(fleet, None, window, now, generation=generation))
            findings = run_detectors(
                self.client, since=since, now=window.end, detectors=self.lambdascope.detectors
            )
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(
                LoadFailed(error_text(exc), unavailable=unavailable, generation=generation)
            )
            return
        self.post_message(FleetLoaded(fleet, findings, window, now, generation=generation))

    def _current(self, message: FleetLoaded | LoadFailed) -> bool:
        if message.generation != self._generation:
            return False  # a slower, older read: a newer one is on its way
        self._loading = False
        return True

    @on(FleetLoaded)
    def show_fleet(self, message: FleetLoaded) -> None:
        if message.generation != self._generation:
            return  # a slower, older read: a newer one is on its way
        status = self.query_one("#status", Static)
        fleet_table = self.query_one(FleetTable)
        if message.findings is None:
            fleet_table.show(message.fleet, message.now)
            status.remove_class("error")
            status.update(f"Running the detectors over {self.describe_window(message.window)}…")
            return
        self._current(message)
        self.window = message.window
        self.findings = message.findings
        self.lambdascope.show_window(message.window)
        status.remove_class("error")
        fleet_table.show(message.fleet, message.now)
        findings_table = self.query_one(FindingsTable)
        findings_table.show(message.findings, fleet_table.name_filter)
        where = self.describe_window(message.window)
        if not message.fleet:
            status.update(
                f"No invocations in {where}. Point a function's extension at the "
                "collector (LAMBDASCOPE_COLLECTOR_URL) or run `lambdascope demo`."
            )
        elif not message.findings:
            status.update(self.quiet_text(message.fleet, where))
        else:
            critical = sum(f.severity == "critical" for f in message.findings)
            status.update(
                f"{len(message.fleet)} functions, {len(message.findings)} findings "
                f"({critical} critical) in {where}."
            )
        if not self._loaded_once:
            # Later refreshes leave the focus where the user put it.
            self._loaded_once = True
            (findings_table if message.findings else fleet_table).focus()

    #: How many threshold notes the status line holds before it says how many more there are.
    MAX_NOTES = 3

    def quiet_text(self, fleet: list[FunctionSummary], where: str) -> str:
        """No finding: say which threshold the fleet's errors or cold starts fell short of,
        where the analyzers can tell, so a quiet list is not mistaken for a blind one."""
        text = f"No detector fired for the {len(fleet)} functions in {where}"
        detectors = self.lambdascope.detectors
        notes = below_thresholds(fleet, None if detectors is None else detectors.keys())
        if not notes:
            return text + "."
        shown = notes[: self.MAX_NOTES]
        if len(notes) > len(shown):
            shown.append(f"and {len(notes) - len(shown)} more")
        return f"{text}: " + "; ".join(shown) + "."

    def describe_window(self, window: Window) -> str:
        time_window = self.lambdascope.time_window
        if time_window.fixed:
            return range_text(window)
        return f"the {time_window.label().split(',')[0]} ({range_text(window)}, whole minutes)"

    @on(LoadFailed)
    def show_error(self, message: LoadFailed) -> None:
        if not self._current(message):
            return
        status = self.query_one("#status", Static)
        status.add_class("error")
        hint = " Press r to retry." if message.unavailable else ""
        status.update(message.text + hint)

    # --- actions -------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def action_sort(self) -> None:
        self.query_one(FleetTable).cycle_sort()
        self._show_sort()

    def _show_sort(self) -> None:
        table = self.query_one(FleetTable)
        label = f"Fleet  (sorted by {table.sort_label.lower()}; s: next column)"
        if table.name_filter:
            label += f"  name contains {table.name_filter!r}"
        self.query_one("#fleet-label", Label).update(label)

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        self.set_filter("")

    def set_filter(self, text: str) -> None:
        field = self.query_one("#filter", Input)
        typing = field.has_focus
        field.value = text
        field.display = bool(text)
        self._apply_filter(text)
        if typing and not text:
            self.query_one(FleetTable).focus()  # the field is gone: back to the table

    def _apply_filter(self, text: str) -> None:
        self.query_one(FleetTable).set_filter(text)
        self.query_one(FindingsTable).show(self.findings, text.strip())
        self._show_sort()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self._apply_filter(event.value)

    @on(Input.Submitted, "#filter")
    def filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.display = False
        self.query_one(FleetTable).focus()

    def action_command_line(self) -> None:
        self.query_one(CommandLine).open()

    @on(CommandLine.Entered)
    def run_command(self, event: CommandLine.Entered) -> None:
        self.lambdascope.run_command(event.text)

    @on(DataTable.RowSelected, "#fleet")
    def open_function(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            window = self.window or self.lambdascope.resolve()
            self.post_message(OpenFunction(str(event.row_key.value), window))

    @on(DataTable.RowSelected, "#findings")
    def open_finding(self, event: DataTable.RowSelected) -> None:
        finding = self.query_one(FindingsTable).finding_at(event.row_key.value)
        if finding is not None:
            self.lambdascope.pause()  # the evidence should not move under the reader
            self.app.push_screen(FindingScreen(self.client, finding))
