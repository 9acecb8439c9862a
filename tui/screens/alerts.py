"""The alert rules: each rule's state per function, the selected rule's history, its query."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from lambdascope.analyzers.alerts import DEFAULT_RULES_PATH, RulesError, RuleSet, load_rules
from lambdascope.analyzers.alerts_view import (
    ALERT_TABLES_MISSING,
    AlertHistoryEntry,
    AlertRow,
    AlertsView,
    alert_history,
    alert_window,
    alerts_view,
    bind_for_display,
    is_missing_table,
    rule_query,
)
from lambdascope.query import QueryClient, QueryError, StoreUnavailableError
from lambdascope.tui.format import error_text
from lambdascope.tui.messages import OpenFunction

__all__ = [
    "AlertsFailed",
    "AlertsLoaded",
    "AlertsScreen",
    "HistoryLoaded",
    "alert_cells",
    "history_cells",
]

STATE_STYLE = {"firing": "bold red", "pending": "yellow", "ok": "green"}


class AlertsLoaded(Message):
    def __init__(self, rules: RuleSet, view: AlertsView, now: datetime) -> None:
        super().__init__()
        self.rules = rules
        self.view = view
        self.now = now


class AlertsFailed(Message):
    def __init__(self, text: str, *, retry: bool) -> None:
        super().__init__()
        self.text = text
        self.retry = retry


class HistoryLoaded(Message):
    def __init__(self, row_key: str, entries: list[AlertHistoryEntry]) -> None:
        super().__init__()
        self.row_key = row_key
        self.entries = entries


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"


def alert_cells(row: AlertRow) -> tuple[Text, str, str, str, str, str]:
    """Pure: a rules table row: state, rule, function, since, value, threshold."""
    return (
        Text(row.state, style=STATE_STYLE.get(row.state, "")),
        row.rule_name,
        row.function_name or "-",
        _when(row.since),
        _number(row.value),
        row.threshold,
    )


def history_cells(entry: AlertHistoryEntry) -> tuple[str, str, Text, str, str]:
    """Pure: a history row: when, function, event, value, summary."""
    return (
        _when(entry.at),
        entry.function_name,
        Text(entry.event, style=STATE_STYLE.get(entry.event, "")),
        _number(entry.value),
        entry.summary,
    )


class AlertsScreen(Screen[None]):
    """``rules_path`` is the rules file the collector evaluates (the shipped pack if None);
    ``now`` pins the clock (tests, replays); the states are read again every ``refresh_s``."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
    ]

    # Three panes share the screen: the section titles give up their top margin so that each
    # keeps a few rows at 80x24.
    DEFAULT_CSS = """
    AlertsScreen .section {
        margin-top: 0;
    }
    AlertsScreen #alerts {
        height: auto;
        max-height: 35%;
    }
    AlertsScreen #alert-history {
        height: auto;
        min-height: 4;
        max-height: 30%;
    }
    AlertsScreen #alert-query-scroll {
        height: 1fr;
        min-height: 3;
        border: round $panel;
    }
    """

    def __init__(
        self,
        client: QueryClient,
        rules_path: Path | None,
        *,
        now: datetime | None = None,
        refresh_s: float = 30.0,
    ) -> None:
        super().__init__()
        self.client = client
        self.rules_path = rules_path or DEFAULT_RULES_PATH
        self.now = now
        self.refresh_s = refresh_s
        self.rules = RuleSet()
        self.rows: dict[str, AlertRow] = {}
        self.tables_missing = False
        self._loaded_at: datetime | None = None
        self._history_key: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading alerts…", id="status")
        yield Label(
            "Rules  (Enter on a firing or pending alert: open its function)", classes="section"
        )
        table: DataTable[str | Text] = DataTable(id="alerts", cursor_type="row", zebra_stripes=True)
        table.add_columns("State", "Rule", "Function", "Since", "Value", "Threshold")
        yield table
        yield Label("History of the selected rule", classes="section")
        history: DataTable[str | Text] = DataTable(id="alert-history", cursor_type="row")
        history.add_columns("At", "Function", "Event", "Value", "Summary")
        yield history
        yield Label("The query behind it (values shown in place)", classes="section")
        with VerticalScroll(id="alert-query-scroll"):
            yield Static("", id="alert-query")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"alerts: {self.rules_path}"
        self.query_one("#alerts", DataTable).focus()
        self.load()
        # The collector's engine moves alerts on by itself: follow it without a key press.
        self.set_interval(self.refresh_s, self._refresh_quietly)

    def _refresh_quietly(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.query_one("#status", Static).update("Refreshing…")
        self.load()

    @work(thread=True, exclusive=True, group="alerts")
    def load(self) -> None:
        now = self.now or datetime.now(UTC)
        try:
            rules = load_rules(self.rules_path)
        except (RulesError, OSError) as exc:
            self.post_message(AlertsFailed(f"The rules file cannot be used: {exc}", retry=True))
            return
        try:
            view = alerts_view(self.client, rules)
        except QueryError as exc:
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(AlertsFailed(error_text(exc), retry=unavailable))
            return
        self.post_message(AlertsLoaded(rules, view, now))

    @on(AlertsLoaded)
    def show_alerts(self, message: AlertsLoaded) -> None:
        self.rules = message.rules
        self._loaded_at = message.now
        self.tables_missing = message.view.tables_missing
        table = self.query_one("#alerts", DataTable)
        # A refresh keeps the user on the alert they were reading, wherever it moved.
        previous = self._highlighted_key()
        table.clear()
        self.rows = {}
        for row in message.view.rows:
            # Rule names and function names never hold '/': the pair is a stable key.
            key = f"{row.rule_name}/{row.function_name}"
            self.rows[key] = row
            table.add_row(*alert_cells(row), key=key)
        if previous in self.rows:
            table.move_cursor(row=table.get_row_index(previous))
        self._history_key = None  # its history may have grown
        status = self.query_one("#status", Static)
        if self.tables_missing:
            status.add_class("error")
            status.update(ALERT_TABLES_MISSING)
            self._show_history(None, [])
            return
        status.remove_class("error")
        firing = sum(r.state == "firing" for r in message.view.rows)
        pending = sum(r.state == "pending" for r in message.view.rows)
        status.update(
            f"{len(message.rules.rules)} rules from {self.rules_path}: "
            f"{firing} firing, {pending} pending."
        )
        self._select(self._highlighted_key())

    def _highlighted_key(self) -> str | None:
        table = self.query_one("#alerts", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(AlertsFailed)
    def show_error(self, message: AlertsFailed) -> None:
        status = self.query_one("#status", Static)
        status.add_class("error")
        status.update(message.text + (" Press r to retry." if message.retry else ""))

    @on(DataTable.RowHighlighted, "#alerts")
    def highlight_row(self, event: DataTable.RowHighlighted) -> None:
        self._select(event.row_key.value)

    def _select(self, key: str | None) -> None:
        row = self.rows.get(key or "")
        if row is None or key == self._history_key or self.tables_missing:
            return
        self._history_key = key
        self.query_one("#alert-query", Static).update(Text("Loading its history…", style="dim"))
        self.load_history(key or "", row.rule_name)

    @work(thread=True, exclusive=True, group="alert-history")
    def load_history(self, key: str, rule_name: str) -> None:
        try:
            entries = alert_history(self.client, rule_name)
        except QueryError as exc:
            if is_missing_table(exc, "alert_history"):
                self.post_message(HistoryLoaded(key, []))
                return
            unavailable = isinstance(exc, StoreUnavailableError)
            self.post_message(AlertsFailed(error_text(exc), retry=unavailable))
            return
        self.post_message(HistoryLoaded(key, entries))

    @on(HistoryLoaded)
    def show_history(self, message: HistoryLoaded) -> None:
        if message.row_key != self._history_key:
            return  # the user moved on
        self._show_history(self.rows.get(message.row_key), message.entries)

    def _show_history(self, row: AlertRow | None, entries: list[AlertHistoryEntry]) -> None:
        history = self.query_one("#alert-history", DataTable)
        history.clear()
        for index, entry in enumerate(entries):
            history.add_row(*history_cells(entry), key=str(index))
        query = self.query_one("#alert-query", Static)
        if row is None:
            query.update(Text("No rule selected.", style="dim"))
            return
        rule = next((r for r in self.rules.rules if r.name == row.rule_name), None)
        sql, parameters = rule_query(
            rule, entries, function_name=row.function_name, now=self._loaded_at
        )
        if not sql:
            source = getattr(rule.source, "detector", "its") if rule else "its"
            query.update(
                Text(
                    f"{row.rule_name} reads the findings of the {source} detector; its query "
                    "is shown here once the rule has been evaluated to pending or firing.",
                    style="dim",
                )
            )
            return
        where = f" for {row.function_name}" if row.function_name else ""
        text = Text(f"{row.rule_name}{where}:\n", style="bold")
        text.append(bind_for_display(sql.strip(), parameters), style="")
        query.update(text)

    @on(DataTable.RowSelected, "#alerts")
    def open_function(self, event: DataTable.RowSelected) -> None:
        row = self.rows.get(str(event.row_key.value))
        if row is None or not row.active or not row.function_name:
            return
        self.post_message(OpenFunction(row.function_name, alert_window(row, self._loaded_at)))
