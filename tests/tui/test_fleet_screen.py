"""The fleet screen's frame: one time window, live refresh, keys, help, export, layout."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import OptionList

from lambdascope.analyzers import DETECTORS
from lambdascope.analyzers.window import Window
from lambdascope.collector.firehose import parse_firehose_request
from lambdascope.tui.app import LambdascopeApp
from lambdascope.tui.screens import FleetScreen, HelpScreen, WindowPicker
from lambdascope.tui.screens.function import FunctionScreen
from lambdascope.tui.widgets import FindingsTable, FleetTable
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW
from tests.analyzers.storefixtures import TestStore
from tests.tui.test_app import row_texts, status_text, wait_for

SIZE = (120, 36)
# The frame is the subject here, not the detectors: one keeps each read short.
TIMEOUTS = {"timeouts": DETECTORS["timeouts"]}


@pytest.fixture(scope="module")
def fleet_store(chdb_path: str) -> Iterator[TestStore]:
    """One store for the module: the tests only read it, and filling a store takes seconds."""
    test_store = TestStore(chdb_path, f"t_tui_frame_{os.getpid()}")
    try:
        test_store.write(fleetdata.timeout_fleet())
        # checkout alone has a metric stream: 2 throttles a minute for 5 minutes.
        records = fleetdata.function_minutes(
            "checkout", NOW - timedelta(minutes=30), 5, invocations=2, concurrency=1, throttles=2
        )
        delivery = parse_firehose_request("d-1", fleetdata.firehose_body(records, "d-1"))
        test_store.store.write_metrics(delivery.request_id, delivery.points)
        yield test_store
    finally:
        test_store.drop()


def fleet_of(app: LambdascopeApp) -> FleetTable:
    return app.screen_stack[0].query_one(FleetTable)


def recording_notes(app: LambdascopeApp) -> list[str]:
    notes: list[str] = []

    def notify(message: str, **_: Any) -> None:
        notes.append(message)

    app.notify = notify  # type: ignore[method-assign]
    return notes


async def loaded(pilot: Any, app: LambdascopeApp, rows: int = 3) -> None:
    await wait_for(
        pilot, lambda: fleet_of(app).row_count == rows and "functions" in status_text(app)
    )


async def test_fleet_and_findings_read_the_same_whole_minute_window(fleet_store):
    # 20 s past the hour, the last 25 minutes: the detectors' exact bounds and the rollups'
    # whole minutes used to differ by the partial minute at each end.
    now = NOW + timedelta(seconds=20)
    app = LambdascopeApp(
        fleet_store.reader, since=timedelta(minutes=25), now=now, detectors=TIMEOUTS
    )

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        expected = Window(NOW - timedelta(minutes=24), NOW + timedelta(minutes=1))
        assert screen.window == expected
        assert {(f.window_start, f.window_end) for f in screen.findings} == {
            (expected.start, expected.end)
        }
        checkout = {row[0]: row for row in row_texts(fleet_of(app))}["checkout"]
        timeout = next(f for f in screen.findings if f.kind == "timeout")
        # checkout runs every 30 s from 30 minutes before the hour: 28 start in the window.
        assert checkout[1] == "28"
        assert "of 28 invocations" in timeout.summary
        assert app.sub_title == f"last 25m, live · {expected.start:%H:%M}-{expected.end:%H:%M} UTC"
        assert "whole minutes" in status_text(app)


async def test_live_refresh_keeps_the_cursor_and_p_pauses_it(fleet_store):
    app = LambdascopeApp(fleet_store.reader, now=NOW, refresh_interval=0.1, detectors=TIMEOUTS)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        table = fleet_of(app)
        table.focus()
        await pilot.press("j", "j")
        assert table.cursor_key == "thumbnailer"
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        seen = screen._generation
        await wait_for(pilot, lambda: screen._generation >= seen + 2)  # refreshed, live
        await wait_for(pilot, lambda: not screen._loading)
        assert table.cursor_key == "thumbnailer"
        assert "live" in app.sub_title

        await pilot.press("p")
        assert "paused" in app.sub_title
        await wait_for(pilot, lambda: not screen._loading)
        paused_at = screen._generation
        await pilot.pause(0.4)
        assert screen._generation == paused_at
        await pilot.press("p")
        assert "live" in app.sub_title


async def test_sort_filter_and_vi_keys(fleet_store):
    app = LambdascopeApp(fleet_store.reader, now=NOW, detectors=TIMEOUTS)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        table = fleet_of(app)
        table.focus()
        assert [r[0] for r in row_texts(table)] == ["checkout", "report_export", "thumbnailer"]

        await pilot.press("s")  # by invocations, most first
        assert [r[0] for r in row_texts(table)] == ["checkout", "thumbnailer", "report_export"]
        assert "sorted by invocations" in str(app.screen.query_one("#fleet-label").render())
        await pilot.press("G")
        assert table.cursor_key == "report_export"
        await pilot.press("k")
        assert table.cursor_key == "thumbnailer"
        await pilot.press("g")
        assert table.cursor_key == "checkout"
        await pilot.press("j")
        assert table.cursor_key == "thumbnailer"

        await pilot.press("slash", *"thumb")
        assert [r[0] for r in row_texts(table)] == ["thumbnailer"]
        assert app.screen.query_one(FindingsTable).row_count == 0  # checkout's is filtered out
        await pilot.press("enter")  # back to the table, filter kept
        assert table.has_focus and table.row_count == 1
        await pilot.press("slash", "escape")  # clears the filter, back to the table
        assert table.row_count == 3 and table.has_focus
        assert app.screen.query_one(FindingsTable).row_count == 1


async def test_time_window_picker_and_since_command(fleet_store):
    app = LambdascopeApp(fleet_store.reader, now=NOW, detectors=TIMEOUTS)
    notes = recording_notes(app)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, WindowPicker))
        options = app.screen.query_one(OptionList)
        options.highlighted = 2  # 15m, 1h, 6h
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        assert app.sub_title.startswith("last 6h, live")
        await wait_for(pilot, lambda: "the last 6h" in status_text(app))

        # A custom range that is not one: the picker says why and stays open.
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, WindowPicker))
        await pilot.click("#custom")
        await pilot.press(*"noon", "enter")
        assert "is not a time window" in str(app.screen.query_one("#picker-error").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))

        await pilot.press("colon", *"since 15m", "enter")
        await wait_for(pilot, lambda: "the last 15m" in status_text(app))
        assert app.sub_title.startswith("last 15m, live")

        await pilot.press("colon", *"since 00:00-00:30", "enter")
        assert app.sub_title.startswith("00:00-00:30 UTC, paused")

        await pilot.press("colon", *"frobnicate", "enter")
        assert any("Unknown command :frobnicate" in note for note in notes)


async def test_help_lists_the_screens_bindings_and_export_writes_csv_and_json(
    fleet_store, tmp_path
):
    app = LambdascopeApp(fleet_store.reader, now=NOW, export_dir=tmp_path, detectors=TIMEOUTS)
    notes = recording_notes(app)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        fleet_of(app).focus()
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        for binding in [*FleetScreen.BINDINGS, *LambdascopeApp.BINDINGS, *FleetTable.BINDINGS]:
            assert app.get_key_display(binding) in help_screen.text  # type: ignore[arg-type]
        for binding in [*FleetScreen.BINDINGS, *LambdascopeApp.BINDINGS]:
            assert binding.description in help_screen.text  # type: ignore[union-attr]
        assert ":since SPAN" in help_screen.text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))

        await pilot.press("e")
        csv_file, json_file = sorted(tmp_path.iterdir())
        assert (csv_file.suffix, json_file.suffix) == (".csv", ".json")
        rows = list(csv.reader(csv_file.open()))
        assert rows[0][:3] == ["Function", "Invocations", "Errors"]
        # Every column, not only those the terminal has room for; the sparkline stays on screen.
        assert "Cost" in rows[0] and "Last seen" in rows[0] and "p99 trend" not in rows[0]
        assert [r[0] for r in rows[1:]] == ["checkout", "report_export", "thumbnailer"]
        records = json.loads(json_file.read_text())
        assert records[0]["Function"] == "checkout" and records[0]["Invocations"] == "40"
        assert any(str(csv_file) in note for note in notes)


async def test_the_fleet_shows_trend_cost_throttles_and_init_p95_at_120_columns(
    fleet_store,
):
    app = LambdascopeApp(fleet_store.reader, now=NOW, detectors=TIMEOUTS)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.pause()
        table = fleet_of(app)
        labels = table.shown_labels
        assert {
            "Function",
            "Invocations",
            "Errors",
            "p99",
            "p99 trend",
            "Cost",
            "Throttles",
            "Init p95",
        } <= set(labels)
        rows = {r[0]: dict(zip(labels, r, strict=True)) for r in row_texts(table)}
        checkout = rows["checkout"]
        trend = checkout["p99 trend"]
        # 3-minute buckets over the hour; checkout ran for 20 minutes of it, its timeouts tall.
        assert len(trend) == 20 and "█" in trend and trend.startswith(" " * 10)
        assert checkout["Cost"] == "<$0.01"
        assert checkout["Throttles"] == "10" and checkout["Init p95"] == "180 ms"
        # No metric stream for thumbnailer: its throttles are unknown, not 0.
        assert rows["thumbnailer"]["Throttles"] == "-"
        assert sum(column.get_render_width(table) for column in table.ordered_columns) <= 118


async def test_both_panels_fit_in_80_by_24(fleet_store):
    app = LambdascopeApp(fleet_store.reader, now=NOW, detectors=TIMEOUTS)

    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.pause()
        fleet = fleet_of(app)
        # The columns that matter most stay; the rest give way rather than scroll off.
        assert {"Function", "Invocations", "Errors", "p99", "Cost"} <= set(fleet.shown_labels)
        assert sum(column.get_render_width(fleet) for column in fleet.ordered_columns) <= 78
        for table in (fleet_of(app), app.screen.query_one(FindingsTable)):
            region = table.region
            assert region.height >= 3, table.id  # header and at least two rows
            assert region.bottom <= 23, table.id  # above the footer


async def test_enter_on_a_function_and_the_function_option_open_it(fleet_store):
    app = LambdascopeApp(
        fleet_store.reader, now=NOW, function_name="thumbnailer", detectors=TIMEOUTS
    )
    opened: list[tuple[str, Window]] = []
    app.open_function = lambda name, window: opened.append((name, window))  # type: ignore[method-assign]

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, rows=1)
        assert opened == [("thumbnailer", Window(NOW - timedelta(hours=1), NOW))]
        assert [r[0] for r in row_texts(fleet_of(app))] == ["thumbnailer"]
        fleet_of(app).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(opened) == 2)
        assert opened[1][0] == "thumbnailer"


async def test_opening_a_function_pauses_and_shows_its_screen(fleet_store):
    app = LambdascopeApp(fleet_store.reader, now=NOW, detectors=TIMEOUTS)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("colon", *"fn checkout", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FunctionScreen))
        assert app.screen.function_name == "checkout"
        assert app.sub_title.startswith("last 1h, paused")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FunctionScreen))


async def test_every_action_is_in_the_command_palette(fleet_store):
    app = LambdascopeApp(fleet_store.reader, now=NOW, detectors=TIMEOUTS)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for title in ("Help: keys of this screen", "Time window", "Pause or go live"):
            assert title in titles
        for title in ("Export table", "Sort fleet", "Filter functions", "Command line"):
            assert title in titles


async def test_the_tail_and_the_alerts_open_by_key_and_by_command(fleet_store):
    from lambdascope.tui.screens.alerts import AlertsScreen
    from lambdascope.tui.screens.tail import TailScreen

    app = LambdascopeApp(fleet_store.reader, now=NOW, detectors=TIMEOUTS)

    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("colon", *"tail checkout", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TailScreen))
        assert app.screen.function_name == "checkout"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, TailScreen))


async def test_the_fleet_table_shows_before_the_detectors_finish(fleet_store):
    import threading

    from lambdascope.analyzers import sql as fleet_sql

    release = threading.Event()

    class SlowDetectors:
        """The fleet's own reads answer at once; every detector waits for ``release``."""

        def query(self, sql, parameters=None):
            if sql not in (
                fleet_sql.FLEET,
                fleet_sql.EXTENSION_DELIVERY,
                fleet_sql.FLEET_TRENDS,
                fleet_sql.FLEET_INIT_P95,
                fleet_sql.FLEET_THROTTLES,
            ):
                release.wait(timeout=10)
            return fleet_store.reader.query(sql, parameters)

    app = LambdascopeApp(SlowDetectors(), now=NOW, detectors=TIMEOUTS)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: fleet_of(app).row_count == 3)
        assert "Running the detectors" in status_text(app)
        assert app.screen.query_one(FindingsTable).row_count == 0
        release.set()
        await wait_for(pilot, lambda: app.screen.query_one(FindingsTable).row_count > 0)
        assert "findings" in status_text(app)


async def test_a_quiet_findings_list_says_which_threshold_the_fleet_fell_short_of(fleet_store):
    app = LambdascopeApp(
        fleet_store.reader, now=NOW, detectors={"cold_starts": DETECTORS["cold_starts"]}
    )

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "No detector fired" in status_text(app))
        text = status_text(app)
        assert "below the cold-start detector's" in text, text
        assert "errors detector" not in text  # it did not run
