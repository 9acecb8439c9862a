"""The finding screen as a user sees it, at 80x24 and 160x48, on one canned timeout finding."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import Static

from lambdascope.analyzers import DETECTORS, Finding
from lambdascope.analyzers.timeouts import detect_timeouts
from lambdascope.analyzers.window import Window
from lambdascope.tui.app import LambdascopeApp
from lambdascope.tui.screens import FindingScreen
from lambdascope.tui.screens.finding import finding_title
from lambdascope.tui.screens.invocation import InvocationScreen
from lambdascope.tui.widgets import InvocationsTable, LogView
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, TIMED_OUT
from tests.analyzers.storefixtures import TestStore
from tests.tui.test_app import wait_for

SMALL, LARGE = (80, 24), (160, 48)
WINDOW = Window.ending(NOW, timedelta(hours=1))
TIMEOUTS = {"timeouts": DETECTORS["timeouts"]}


@pytest.fixture(scope="module")
def finding_store(chdb_path: str) -> Iterator[TestStore]:
    test_store = TestStore(chdb_path, f"t_tui_finding_{os.getpid()}")
    try:
        test_store.write(fleetdata.timeout_fleet())
        yield test_store
    finally:
        test_store.drop()


@pytest.fixture(scope="module")
def timeout_finding(finding_store: TestStore) -> Finding:
    (finding,) = detect_timeouts(finding_store.reader, WINDOW, None)
    return finding


def text_of(widget: Static) -> str:
    return str(widget.render())


def notes_of(app: LambdascopeApp) -> list[str]:
    notes: list[str] = []

    def notify(message: str, **_: Any) -> None:
        notes.append(message)

    app.notify = notify  # type: ignore[method-assign]
    return notes


async def open_finding(pilot: Any, finding: Finding) -> FindingScreen:
    await pilot.pause()
    screen = FindingScreen(pilot.app.client, finding)
    await pilot.app.push_screen(screen)
    table = screen.query_one(InvocationsTable)
    log = screen.query_one(LogView)
    await wait_for(pilot, lambda: table.row_count == 3 and bool(log.messages))
    await pilot.pause()
    return screen


def app_for(store: TestStore, **kwargs: Any) -> LambdascopeApp:
    return LambdascopeApp(store.reader, now=NOW, detectors=TIMEOUTS, **kwargs)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
async def test_the_finding_its_invocations_and_the_log_are_seen_without_scrolling(
    finding_store, timeout_finding, size
):
    app = app_for(finding_store)
    async with app.run_test(size=size) as pilot:
        screen = await open_finding(pilot, timeout_finding)
        summary = screen.query_one("#finding-summary", Static)
        table = screen.query_one(InvocationsTable)
        log = screen.query_one(LogView)
        footer_y = size[1] - 1
        for widget in (summary, table, log):
            assert widget.region.height > 0 and widget.region.bottom <= footer_y, widget.id
        title = text_of(summary)
        assert title.startswith("critical  Timeout  checkout · version $LATEST")
        assert "3 of 40 invocations of checkout timed out" in title
        assert "timeout_ms" not in title and "()" not in title
        assert [row.plain if hasattr(row, "plain") else row for row in table.get_row_at(0)][
            1
        ] == "timed out"
        assert "START RequestId: checkout-0007" in log.text
        details = screen.query_one("#finding-details", Static)
        if size == SMALL:
            assert log.region.height >= 8  # the log has the rest of the screen
            assert not details.display  # figures and advice wait behind m
            await pilot.press("m")
            await pilot.pause()
            assert details.display
            assert "timeout 3.00 s" in text_of(details)
            await pilot.press("m")
            assert not details.display
        else:
            assert details.display
            assert "p99 duration" in text_of(details)
            assert "Open the evidence requests' logs" in text_of(details)
            # Side by side: the log to the right of the invocations, both full height.
            assert log.region.x > table.region.right - 1
            assert log.region.height >= 25


async def test_vi_keys_export_and_enter_on_an_invocation(finding_store, timeout_finding, tmp_path):
    app = app_for(finding_store, export_dir=tmp_path)
    notes = notes_of(app)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_finding(pilot, timeout_finding)
        table = screen.query_one(InvocationsTable)
        log = screen.query_one(LogView)
        await pilot.press("j")
        assert table.cursor_key == TIMED_OUT[1]
        await wait_for(pilot, lambda: TIMED_OUT[1] in log.text)
        await pilot.press("G")
        assert table.cursor_key == TIMED_OUT[2]
        await pilot.press("g")
        assert table.cursor_key == TIMED_OUT[0]

        await pilot.press("e")
        csv_file = next(tmp_path.glob("lambdascope-finding-invocations-*.csv"))
        rows = list(csv.reader(csv_file.open()))
        assert rows[0] == ["Start (UTC)", "Status", "Duration", "Memory", "Init", "Request"]
        assert [r[-1] for r in rows[1:]] == list(TIMED_OUT)
        assert any(str(csv_file) in note for note in notes)

        await pilot.press("j", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        opened = app.screen
        assert isinstance(opened, InvocationScreen)
        assert (opened.request_id, opened.function_name) == (TIMED_OUT[1], "checkout")
        assert opened.window.start <= timeout_finding.window_start
        await wait_for(pilot, lambda: "timed out" in text_of(opened.query_one("#figures", Static)))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_the_sql_view_writes_the_values_in(finding_store, timeout_finding):
    app = app_for(finding_store)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_finding(pilot, timeout_finding)
        log = screen.query_one(LogView)
        await pilot.press("s")
        await wait_for(pilot, lambda: "FROM invocations" in log.text)
        assert "the values it ran with" in log.text
        assert not re.search(r"\{\w+:", log.text), "an unbound placeholder is shown"
        since = timeout_finding.parameters["since"]
        assert f"toDateTime64('{since}', 3, 'UTC')" in log.text
        assert "['checkout']" in log.text
        await pilot.press("s")
        await wait_for(pilot, lambda: "START RequestId" in log.text)


async def test_requests_the_store_no_longer_holds_are_explained(finding_store, timeout_finding):
    gone = replace(timeout_finding, evidence_request_ids=("gone-0001",))
    app = app_for(finding_store)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        screen = FindingScreen(app.client, gone)
        await app.push_screen(screen)
        status = screen.query_one("#status", Static)
        await wait_for(pilot, lambda: "no longer holds" in text_of(status))
        assert "expired" not in text_of(status)
        assert "retention" in text_of(status)


async def test_o_writes_the_html_report_of_the_findings_function(
    finding_store, timeout_finding, tmp_path
):
    app = app_for(finding_store, export_dir=tmp_path)
    notes = notes_of(app)
    async with app.run_test(size=SMALL) as pilot:
        await open_finding(pilot, timeout_finding)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "HTML report" in titles
        await pilot.press("o")
        await wait_for(pilot, lambda: any("written to" in n for n in notes), timeout_s=30)
        (report,) = tmp_path.glob("lambdascope-report-checkout-*.html")
        assert any(str(report) in n for n in notes)
        assert "checkout" in report.read_text(encoding="utf-8")


def test_the_version_shows_as_lambda_shows_it_and_not_at_all_when_empty(timeout_finding):
    assert "· version 7" in finding_title(replace(timeout_finding, function_version="7")).plain
    every = finding_title(replace(timeout_finding, kind="extension_overhead", function_version=""))
    assert every.plain.startswith("critical  Extension overhead  checkout\n")
    assert "version" not in every.plain.splitlines()[0] and "()" not in every.plain
