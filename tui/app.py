"""The lambdascope terminal UI: the fleet, its findings, and each finding's evidence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from lambdascope.analyzers import Detector
from lambdascope.analyzers.report import write_html_report
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient, QueryError
from lambdascope.tui.export import export_table
from lambdascope.tui.messages import OpenFunction
from lambdascope.tui.screens.alerts import AlertsScreen
from lambdascope.tui.screens.finding import FindingScreen
from lambdascope.tui.screens.fleet import FleetScreen
from lambdascope.tui.screens.function import FunctionScreen
from lambdascope.tui.screens.help import HelpScreen, binding_lines
from lambdascope.tui.screens.invocation import InvocationScreen
from lambdascope.tui.screens.invocations import InvocationsScreen
from lambdascope.tui.screens.tail import TailScreen
from lambdascope.tui.screens.window_picker import WindowPicker
from lambdascope.tui.timewindow import TimeWindow, TimeWindowError, range_text
from lambdascope.tui.widgets.command_line import CommandError, parse_command
from lambdascope.tui.widgets.nav_table import NavTable

__all__ = ["LambdascopeApp"]


class LambdascopeApp(App[None]):
    """``client`` is the only way to the store; ``now`` pins the clock (tests, replays).

    The app holds the one time window every panel reads (:attr:`time_window`).
    """

    TITLE = "lambdascope"
    CSS_PATH = "lambdascope.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("t", "pick_window", "Window"),
        Binding("p", "toggle_live", "Pause/live"),
        Binding("e", "export", "Export"),
        Binding("o", "report", "HTML report"),
        Binding("L", "tail", "Live tail"),
        Binding("A", "alerts", "Alerts"),
    ]

    def __init__(
        self,
        client: QueryClient,
        *,
        since: timedelta = timedelta(hours=1),
        window: TimeWindow | None = None,
        now: datetime | None = None,
        refresh_interval: float = 5.0,
        function_name: str | None = None,
        export_dir: Path | None = None,
        detectors: Mapping[str, Detector] | None = None,
        rules_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.time_window = window or TimeWindow.last(since)
        self.now = now
        self.refresh_interval = refresh_interval
        self.function_name = function_name
        self.export_dir = export_dir
        #: Which detectors the findings come from (every registered one by default).
        self.detectors = dict(detectors) if detectors is not None else None
        #: The alert rules the alerts screen lists (the default rules when None).
        self.rules_path = rules_path
        self.sub_title = self.time_window.label()

    def get_default_screen(self) -> FleetScreen:
        return FleetScreen(self.client, function_name=self.function_name)

    @property
    def fleet_screen(self) -> FleetScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, FleetScreen)
        return screen

    # --- the time window -----------------------------------------------------------------

    def clock(self) -> datetime:
        """A pinned clock (tests, replays) or the wall clock."""
        return self.now or datetime.now(UTC)

    def resolve(self) -> Window:
        return self.time_window.resolve(self.clock())

    def set_window(self, window: TimeWindow | None) -> None:
        """Every panel reads ``window`` from now on (None: keep the current one)."""
        if window is None:
            return
        self.time_window = window
        self.sub_title = window.label()
        self.fleet_screen.reload()

    def show_window(self, window: Window) -> None:
        """The header: what the window is, and the minutes the panels were read over."""
        label = self.time_window.label()
        self.sub_title = label if self.time_window.fixed else f"{label} · {range_text(window)}"

    def pause(self) -> None:
        if self.time_window.live:
            self.time_window = self.time_window.paused()
            self.sub_title = self.time_window.label()

    def action_toggle_live(self) -> None:
        if self.time_window.live:
            self.pause()
            return
        if self.time_window.fixed:
            self.notify("A fixed range does not move: choose a 'last' span with t to go live.")
            return
        self.time_window = self.time_window.resumed()
        self.sub_title = self.time_window.label()
        self.fleet_screen.reload()

    def action_pick_window(self) -> None:
        self.push_screen(WindowPicker(self.time_window, self.clock()), self.set_window)

    # --- functions -----------------------------------------------------------------------

    def on_open_function(self, message: OpenFunction) -> None:
        self.open_function(message.function_name, message.window)

    def open_function(self, function_name: str, window: Window) -> None:
        """Every way of opening a function (Enter on the fleet, ``:fn``, ``--function``)
        ends here. Opening one pauses the live refresh, so what is open stays put."""
        self.pause()
        self.push_screen(FunctionScreen(self.client, function_name, window))

    # --- commands, help, export ----------------------------------------------------------

    def run_command(self, text: str) -> None:
        """Run a ``:`` command line; a bad one is explained, never raised."""
        try:
            command = parse_command(text)
            if command.name == "q":
                self.exit()
            elif command.name == "since":
                self.set_window(TimeWindow.parse(command.argument, self.clock()))
            elif command.name == "fn":
                self.post_message(OpenFunction(command.argument, self.resolve()))
            elif command.name == "tail":
                self.action_tail(command.argument or None)
            elif command.name == "alerts":
                self.action_alerts()
        except (CommandError, TimeWindowError) as exc:
            self.notify(str(exc), title="Command", severity="error")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim the key of the screen already open (None: shown, but disabled)."""
        if action == "tail" and isinstance(self.screen, TailScreen):
            return None
        if action == "alerts" and isinstance(self.screen, AlertsScreen):
            return None
        return True

    def action_tail(self, function_name: str | None = None) -> None:
        """The live tail: every function's new log lines, or one function's."""
        if isinstance(self.screen, TailScreen) and function_name is None:
            return  # already following: a second tail would read everything twice
        self.push_screen(TailScreen(self.client, function_name))

    def action_alerts(self) -> None:
        if isinstance(self.screen, AlertsScreen):
            return
        self.push_screen(AlertsScreen(self.client, self.rules_path, now=self.now))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        title = type(self.screen).__name__.removesuffix("Screen").lower() or "screen"
        self.push_screen(HelpScreen(title, binding_lines(self.screen)))

    def action_export(self) -> None:
        table = self.screen.focused
        if not isinstance(table, NavTable):
            tables = list(self.screen.walk_children(NavTable))
            table = tables[0] if tables else None
        if table is None:
            self.notify("Nothing to export here: focus a table first.", severity="warning")
            return
        directory = self.export_dir or Path.cwd()
        try:
            csv_path, json_path = export_table(
                directory,
                table.export_name,
                table.export_columns(),
                table.export_rows(),
                datetime.now(UTC),
            )
        except OSError as exc:
            self.notify(f"Could not export to {directory}: {exc}", severity="error")
            return
        self.notify(f"{table.row_count} rows written to {csv_path} and {json_path.name}")

    def report_function(self) -> str | None:
        """Whose report ``o`` writes: the open function's (or finding's), else the fleet's."""
        screen = self.screen
        if isinstance(screen, FindingScreen):
            return screen.finding.function_name or None
        if isinstance(screen, FunctionScreen | InvocationsScreen | InvocationScreen):
            return screen.function_name
        return None

    def action_report(self) -> None:
        function_name = self.report_function()
        window = self.resolve()
        directory = self.export_dir or Path.cwd()
        subject = function_name or "fleet"
        self.notify(f"Writing the HTML report of {subject}…")
        self.write_report(directory, function_name, window)

    @work(thread=True, group="report")
    def write_report(self, directory: Path, function_name: str | None, window: Window) -> None:
        """Reads every detector and the series, then writes a few MB: off the UI thread."""
        subject = function_name or "fleet"
        # Names safe in any file system: a function name is [A-Za-z0-9_-] already.
        stem = f"lambdascope-report-{subject}-{window.end:%Y%m%d-%H%M}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{stem}.html"
            n = 1
            while path.exists():
                n += 1
                path = directory / f"{stem}-{n}.html"
            written = write_html_report(self.client, path, window, function_name=function_name)
        except (OSError, QueryError) as exc:
            self.call_from_thread(
                self.notify, f"Could not write the report: {exc}", severity="error"
            )
            return
        self.call_from_thread(self.notify, f"Report of {subject} written to {written}")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help: keys of this screen", "Every key binding (?)", self.action_help)
        yield SystemCommand(
            "Time window", "Choose the window every panel reads (t)", self.action_pick_window
        )
        yield SystemCommand(
            "Pause or go live",
            "Stop or resume refreshing every few seconds (p)",
            self.action_toggle_live,
        )
        yield SystemCommand(
            "Export table", "Write the focused table as CSV and JSON (e)", self.action_export
        )
        yield SystemCommand(
            "HTML report",
            "Write the report of this function (or the fleet) over the window (o)",
            self.action_report,
        )
        yield SystemCommand(
            "Live tail", "Follow every function's logs as they arrive (L, :tail)", self.action_tail
        )
        yield SystemCommand(
            "Alerts", "The alert rules, their state and history (A, :alerts)", self.action_alerts
        )
        if isinstance(screen, FleetScreen):
            yield SystemCommand("Refresh", "Read the fleet again (r)", screen.action_refresh)
            yield SystemCommand("Sort fleet", "Sort by the next column (s)", screen.action_sort)
            yield SystemCommand("Filter functions", "By name substring (/)", screen.action_filter)
            yield SystemCommand(
                "Command line", ":since, :fn, :tail, :alerts, :q (:)", screen.action_command_line
            )
            yield SystemCommand(
                "Clear filter", "Show every function (Esc)", screen.action_clear_filter
            )
