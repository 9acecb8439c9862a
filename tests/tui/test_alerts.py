"""The alerts screen over canned alert_state / alert_history rows in the real store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from textual import on
from textual.widgets import DataTable, Static

from lambdascope.analyzers.alerts import (
    AlertState,
    ClickHouseAlertStateStore,
    Transition,
    load_rules,
)
from lambdascope.analyzers.alerts_view import (
    AlertRow,
    alert_rows,
    alert_window,
    bind_for_display,
    history_entry,
    is_missing_table,
    rule_query,
)
from lambdascope.query import QueryError
from lambdascope.tui import app as app_module
from lambdascope.tui.app import LambdascopeApp
from lambdascope.tui.screens.alerts import AlertsScreen, OpenFunction, alert_cells
from tests.analyzers.fleetdata import NOW
from tests.tui.test_app import row_texts, wait_for

SIZE = (80, 24)

RULES = """
version: 1
rules:
  - name: timeouts
    detector: timeouts
    kind: timeout
    window: 5m
    severity: critical
  - name: slow-p99
    sql: |
      SELECT function_name, quantile(0.99)(duration_ms) AS value
      FROM invocations
      WHERE start_time >= {since:DateTime64(3)} AND start_time < {until:DateTime64(3)}
      GROUP BY function_name
    threshold: "> 2500"
    window: 10m
  - name: out-of-memory
    detector: memory
    kind: out_of_memory
"""

TIMEOUTS_SQL = (
    "SELECT function_name, countIf(status = 'timeout') AS timeouts FROM invocations_between("
    "since = {since:DateTime64(3, 'UTC')}, until = {until:DateTime64(3, 'UTC')}, "
    "function_name = {function_name:String})"
)
FIRING_SINCE = NOW - timedelta(minutes=20)


@pytest.fixture
def rules_path(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def seed_alerts(store, now: datetime = NOW) -> None:
    """checkout's timeouts rule firing, payments' slow-p99 pending, thumbnailer's OOM resolved:
    written through the alert engine's own store (and DDL), as of ``now``."""
    firing_since = now - (NOW - FIRING_SINCE)
    state = ClickHouseAlertStateStore(store.store._client)
    state.save_state(
        AlertState("timeouts", "checkout", "firing", firing_since, firing_since, firing_since,
                   value=3.0)
    )  # fmt: skip
    pending = now - timedelta(minutes=3)
    state.save_state(AlertState("slow-p99", "payments", "pending", pending, pending, value=2900.0))
    state.save_state(AlertState("out-of-memory", "thumbnailer", "resolved", now, value=0.0))
    parameters = {
        "since": "2026-01-01 00:00:00.000",
        "until": "2026-01-01 00:05:00.000",
        "function_name": "checkout",
    }
    for at, previous, event in (
        (firing_since, "inactive", "firing"),
        (firing_since - timedelta(hours=2), "firing", "resolved"),
    ):
        state.record_transition(
            Transition(
                "timeouts", "checkout", event, previous, event, at, "critical", 3.0,
                "finding present", f"3 of 40 invocations of checkout timed out ({event})",
                payload={"query": {"sql": TIMEOUTS_SQL, "parameters": parameters}},
            )
        )  # fmt: skip


class RecordingApp(LambdascopeApp):
    """The app, noting the functions its screens ask to open."""

    # A relative CSS path is found next to the class's module: point at the app's own.
    CSS_PATH = str(Path(app_module.__file__).with_name("lambdascope.tcss"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.opened: list[OpenFunction] = []

    @on(OpenFunction)
    def record(self, message: OpenFunction) -> None:
        self.opened.append(message)


def status_text(app) -> str:
    return str(app.screen.query_one("#status", Static).render())


def query_text(app) -> str:
    return str(app.screen.query_one("#alert-query", Static).render())


# Pure -----------------------------------------------------------------------------------------


def test_rows_put_firing_then_pending_first_and_show_resolved_as_ok(rules_path):
    rules = load_rules(rules_path)
    states = [
        {"rule": "out-of-memory", "function_name": "f", "state": "resolved", "since": NOW,
         "value": 0.0},
        {"rule": "slow-p99", "function_name": "g", "state": "pending", "since": NOW,
         "value": 2600.0},
        {"rule": "gone", "function_name": "h", "state": "firing", "since": NOW, "value": None},
    ]  # fmt: skip
    rows = alert_rows(rules, states)
    assert [(r.state, r.rule_name, r.function_name) for r in rows] == [
        ("firing", "gone", "h"),
        ("pending", "slow-p99", "g"),
        ("ok", "timeouts", ""),
        ("ok", "out-of-memory", "f"),
    ]
    assert [r.threshold for r in rows] == ["-", "> 2500", "finding present", "finding present"]
    cells = alert_cells(rows[1])
    assert [str(c) for c in cells] == ["pending", "slow-p99", "g", NOW.strftime("%m-%d %H:%M:%S"),
                                       "2,600", "> 2500"]  # fmt: skip


def test_the_query_is_shown_with_its_values_in_place():
    sql = "SELECT 1 FROM t WHERE a = {name:String} AND b IN {ids:Array(String)} AND c > {n:UInt32}"
    shown = bind_for_display(sql, {"name": "it's", "ids": ["x", "y"], "n": 5})
    assert shown == "SELECT 1 FROM t WHERE a = 'it\\'s' AND b IN ['x', 'y'] AND c > 5"
    assert bind_for_display("{missing:String}", {}) == "{missing:String}"


def test_history_rows_carry_the_query_their_payload_recorded():
    row = {
        "at": NOW, "rule": "r", "function_name": "f", "event": "firing", "previous": "pending",
        "state": "firing", "value": float("nan"), "threshold": "> 1", "summary": "s",
        "evidence_request_ids": ["a"], "notified": 1,
        "payload": '{"query": {"sql": "SELECT 1", "parameters": {"since": "x"}}}',
    }  # fmt: skip
    entry = history_entry(row)
    assert (entry.value, entry.query, dict(entry.parameters)) == (None, "SELECT 1", {"since": "x"})
    assert history_entry({**row, "payload": "not json"}).query == ""
    assert rule_query(None, [entry], function_name="other") == ("", {})


def test_the_window_around_an_alert_starts_a_lookback_before_it():
    row = AlertRow("r", "f", "firing", FIRING_SINCE, 1.0, "> 0", "critical",
                   pending_since=FIRING_SINCE, lookback=timedelta(minutes=15))  # fmt: skip
    window = alert_window(row, NOW)
    assert (window.start, window.end) == (FIRING_SINCE - timedelta(minutes=15), NOW)


def test_a_missing_table_is_told_apart_from_other_errors():
    missing = QueryError("Code: 60. DB::Exception: Table lambdascope.alert_state does not exist.")
    assert is_missing_table(missing, "alert_state")
    refused = QueryError("unknown table alert_state: the read API reads the db's tables ...")
    assert is_missing_table(refused, "alert_state")
    assert not is_missing_table(QueryError("timeout reading alert_state"), "alert_state")


# The screen -----------------------------------------------------------------------------------


async def test_the_screen_shows_states_history_and_the_query_and_opens_the_function(
    store, rules_path
):
    seed_alerts(store)
    app = RecordingApp(store.reader, now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(AlertsScreen(store.reader, rules_path, now=NOW))
        table = app.screen.query_one("#alerts", DataTable)
        history = app.screen.query_one("#alert-history", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3 and history.row_count == 2)

        rows = row_texts(table)
        assert [row[:3] for row in rows] == [
            ["firing", "timeouts", "checkout"],
            ["pending", "slow-p99", "payments"],
            ["ok", "out-of-memory", "thumbnailer"],
        ]
        assert rows[0][3] == FIRING_SINCE.strftime("%m-%d %H:%M:%S")
        assert rows[1][4:] == ["2,900", "> 2500"]
        assert "1 firing, 1 pending" in status_text(app)
        # At 80x24 every part has room: the rules, the history and the query.
        for part in ("#alerts", "#alert-history", "#alert-query-scroll"):
            assert app.screen.query_one(part).region.height >= 3, part
        assert [row[2] for row in row_texts(history)] == ["firing", "resolved"]
        # The query the engine ran, with its values in place of the placeholders.
        await wait_for(pilot, lambda: "invocations_between" in query_text(app))
        assert "since = '2026-01-01 00:00:00.000'" in query_text(app)
        assert "function_name = 'checkout'" in query_text(app)

        # A SQL rule without history: its query over the newest window.
        await pilot.press("down")
        await wait_for(pilot, lambda: "quantile(0.99)" in query_text(app))
        assert history.row_count == 0
        since = (NOW - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S.000")
        assert f"start_time >= '{since}'" in query_text(app)

        # An alert that is ok opens nothing.
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: "memory detector" in query_text(app))
        assert app.opened == []

        # Enter on the firing alert asks for its function over the window around it (last:
        # an app that handles the message opens another screen).
        await pilot.press("up", "up", "enter")
        await wait_for(pilot, lambda: bool(app.opened))
        (opened,) = app.opened
        assert opened.function_name == "checkout"
        assert opened.window.start == FIRING_SINCE - timedelta(minutes=5)
        assert opened.window.end == NOW


async def test_states_are_read_again_and_the_selection_follows_its_alert(store, rules_path):
    seed_alerts(store)
    app = LambdascopeApp(store.reader, now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(AlertsScreen(store.reader, rules_path, now=NOW, refresh_s=0.1))
        table = app.screen.query_one("#alerts", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.press("down")  # payments' pending slow-p99
        await wait_for(pilot, lambda: "quantile(0.99)" in query_text(app))

        # The engine moves on: checkout's timeouts resolve, payments' slow-p99 fires.
        state = ClickHouseAlertStateStore(store.store._client)
        state.save_state(AlertState("timeouts", "checkout", "resolved", NOW, value=0.0))
        state.save_state(AlertState("slow-p99", "payments", "firing", NOW, NOW, NOW, value=3100))
        await wait_for(pilot, lambda: row_texts(table)[0][:3] == ["firing", "slow-p99", "payments"])
        assert table.cursor_row == 0
        assert "1 firing, 0 pending" in status_text(app)


async def test_without_alert_tables_the_screen_says_how_to_get_them(store, rules_path):
    app = LambdascopeApp(store.reader, now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(AlertsScreen(store.reader, rules_path, now=NOW))
        await wait_for(pilot, lambda: "no alert state" in status_text(app))
        assert "lambdascope collector --rules FILE" in status_text(app)
        table = app.screen.query_one("#alerts", DataTable)
        assert [row[:2] for row in row_texts(table)] == [
            ["ok", "timeouts"],
            ["ok", "slow-p99"],
            ["ok", "out-of-memory"],
        ]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AlertsScreen))


async def test_a_broken_rules_file_is_named_in_place(store, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - name: x\n    detector: nope\n")
    app = LambdascopeApp(store.reader, now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(AlertsScreen(store.reader, broken, now=NOW))
        await wait_for(pilot, lambda: "cannot be used" in status_text(app))
        assert "broken.yaml" in status_text(app)
        assert "Press r to retry" in status_text(app)


def test_the_alerts_read_through_the_collectors_read_api(store, rules_path):
    from lambdascope.analyzers.alerts_view import alerts_view
    from lambdascope.collector.server import CollectorServer
    from lambdascope.query import CollectorQueryClient

    rules = load_rules(rules_path)
    with CollectorServer(store.store, port=0) as server:
        client = CollectorQueryClient(server.url, timeout_s=10.0)
        assert alerts_view(client, rules).tables_missing
    seed_alerts(store)
    with CollectorServer(store.store, port=0) as server:
        view = alerts_view(CollectorQueryClient(server.url, timeout_s=10.0), rules)
        assert not view.tables_missing
        assert [r.state for r in view.rows] == ["firing", "pending", "ok"]
