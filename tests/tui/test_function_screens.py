"""The function, invocations and invocation screens, pushed over the app on canned data."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from lambdascope.analyzers import invocation_view_sql, throttles
from lambdascope.analyzers.function_view import EnvironmentMemory
from lambdascope.analyzers.throttles import ConcurrencyLimits
from lambdascope.analyzers.window import Window
from lambdascope.query import CollectorQueryClient
from lambdascope.tui.app import LambdascopeApp
from lambdascope.tui.screens.function import NO_METRIC_STREAM, FunctionScreen
from lambdascope.tui.screens.invocation import InvocationScreen
from lambdascope.tui.screens.invocations import InvocationsScreen
from lambdascope.tui.widgets.chart import Chart
from lambdascope.tui.widgets.environment_memory import EnvironmentMemoryRows, environment_lines
from lambdascope.tui.widgets.invocation_list import InvocationList
from lambdascope.tui.widgets.request_log import RequestLog
from lambdascope.tui.widgets.waterfall import Waterfall
from tests.analyzers.fleetdata import NOW, PAYMENTS_LINE, TIMED_OUT, environment_id
from tests.analyzers.viewdata import COLD_REQUEST, FAILED_SPAN, view_store_fixture  # noqa: F401
from tests.tui.test_app import closed_port

WINDOW = Window.ending(NOW, timedelta(hours=1))
SMALL, LARGE = (80, 24), (160, 48)


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the UI did not reach the expected state in time"
        await pilot.pause(0.02)


def text_of(widget: Static) -> str:
    return str(widget.render())


def rows(table: InvocationList) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def visible(widget, size: tuple[int, int]) -> bool:
    region = widget.region
    return region.height > 0 and region.y + region.height <= size[1]


class Recording:
    """The store's reader, remembering each query's parameters."""

    def __init__(self, client):
        self.client = client
        self.calls: list[tuple[str, dict]] = []

    def query(self, sql, parameters=None):
        self.calls.append((sql, dict(parameters or {})))
        return self.client.query(sql, parameters)


async def show(pilot: Pilot, screen) -> None:
    """Push ``screen`` once the app has started, and wait until it is mounted."""
    await pilot.pause()
    await pilot.app.push_screen(screen)


def app_for(client) -> LambdascopeApp:
    # The main screen loads the fleet too: the window ends at the fleet's fixed clock.
    return LambdascopeApp(client, since=timedelta(hours=1), now=NOW)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
async def test_function_screen_shows_the_functions_figures(view_store, size):
    app = app_for(view_store.reader)
    async with app.run_test(size=size) as pilot:
        await show(pilot, FunctionScreen(view_store.reader, "checkout", WINDOW))
        screen = app.screen
        recent = screen.query_one(InvocationList)
        await wait_for(pilot, lambda: recent.row_count > 0)
        await pilot.pause(0.05)

        charts = {c.id: c.title_text for c in screen.query(Chart)}
        assert charts["duration-chart"].startswith("duration p99 3.00 s · p50 ")
        assert charts["traffic-chart"] == "40 invocations · 0 errors · 3 timeouts"
        assert charts["cold-chart"] == "1 cold starts · init p50 180 ms"
        assert charts["memory-chart"] == "memory 71 of 128 MB (55%) · p95 55%"
        # No metric stream for checkout: said in the chart's place, not drawn as zero.
        concurrency = screen.query_one("#concurrency-chart", Chart)
        assert charts["concurrency-chart"] == "concurrency unknown"
        assert concurrency.note_text == NO_METRIC_STREAM
        environments = screen.query_one(EnvironmentMemoryRows)
        title, row = environments.text.splitlines()
        assert title.startswith("memory by environment · 1 environment")
        assert row.split()[0] == environment_id("checkout", "1")[:8]
        # checkout's invocations start from 30 to 11 minutes before the canned hour's end.
        seen = f"{NOW - timedelta(minutes=30):%H:%M}–{NOW - timedelta(minutes=11):%H:%M}"
        if size == LARGE:
            assert f"71 of 128 MB (55%)  40 invocations  {seen}" in row
        else:
            assert row.endswith(f"71 MB 55% 40 inv {seen}")
        assert len(row) <= environments.size.width
        configuration = text_of(screen.query_one("#configuration", Static))
        assert "128 MB · timeout 3.00 s · x86_64 · python:3.12.v30 · us-east-1" in configuration
        assert "on-demand 1: p50 180 ms, max 180 ms" in configuration
        assert "no figures from the lambdascope extension" in configuration
        assert recent.row_count == 40
        first = rows(recent)[0]
        assert first[1:4] == ["checkout-0039", "240 ms", "ok"]
        assert first[5] == "60 MB (47%)"
        # What matters is on screen without scrolling: every chart and some invocations.
        assert all(visible(chart, size) for chart in screen.query(Chart))
        assert visible(environments, size)
        assert visible(recent, size) and recent.region.height >= 4
        sparkline_rows = {
            chart.query_one(Sparkline).region.height
            for chart in screen.query(Chart)
            if chart.query_one(Sparkline).display
        }
        assert sparkline_rows == ({3} if size == LARGE else {1})  # taller when there is room


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
async def test_throttles_concurrency_and_extension_figures_when_stored(
    view_store, size, monkeypatch
):
    # The analysis settings (--settings) give thumbnailer 5 reserved executions.
    monkeypatch.setattr(throttles, "LIMITS", ConcurrencyLimits(reserved={"thumbnailer": 5}))
    app = app_for(view_store.reader)
    async with app.run_test(size=size) as pilot:
        await show(pilot, FunctionScreen(view_store.reader, "thumbnailer", WINDOW))
        recent = app.screen.query_one(InvocationList)
        await wait_for(pilot, lambda: recent.row_count > 0)
        await pilot.pause(0.05)
        traffic = app.screen.query_one("#traffic-chart", Chart).title_text
        assert traffic == "30 invocations · 0 errors · 0 timeouts · 6 throttled"
        concurrency = app.screen.query_one("#concurrency-chart", Chart)
        assert concurrency.title_text == "concurrency peak 5 of 5 reserved"
        assert concurrency.note_text.endswith(" of reserved")
        assert concurrency.query_one(Sparkline).data.count(5.0) == 3
        assert visible(concurrency, size) and visible(recent, size)
        configuration = text_of(app.screen.query_one("#configuration", Static))
        assert "start-up p95 18 ms · post-runtime p95 0.0 ms · peak 12 MB" in configuration


async def test_concurrency_without_a_reserved_limit_in_the_settings(view_store):
    app = app_for(view_store.reader)
    async with app.run_test(size=SMALL) as pilot:
        await show(pilot, FunctionScreen(view_store.reader, "thumbnailer", WINDOW))
        concurrency = app.screen.query_one("#concurrency-chart", Chart)
        await wait_for(pilot, lambda: concurrency.title_text != "concurrency")
        assert concurrency.title_text == "concurrency peak 5"
        assert concurrency.note_text == "no reserved concurrency in the settings"


async def test_memory_by_environment_lists_the_fullest_within_the_charts_height(view_store):
    app = app_for(view_store.reader)
    for size, listed in ((SMALL, 2), (LARGE, 6)):
        async with app.run_test(size=size) as pilot:
            await show(pilot, FunctionScreen(view_store.reader, "search", WINDOW))
            environments = app.screen.query_one(EnvironmentMemoryRows)
            await wait_for(pilot, lambda e=environments: e.loaded)
            await pilot.pause(0.05)
            title, *lines = environments.text.splitlines()
            assert title.startswith(f"memory by environment · fullest {listed} of 8")
            assert len(lines) == listed
            assert all("140" in line and "55%" in line for line in lines)
            assert visible(environments, size)
            assert visible(app.screen.query_one(InvocationList), size)
        app = app_for(view_store.reader)


def _environment(n: int, used: int | None, size: int = 1024) -> EnvironmentMemory:
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    return EnvironmentMemory(
        f"{n:08x}" + "f" * 24, used, size, 1200, start, start + timedelta(minutes=42)
    )


def test_environment_lines_fit_their_width_and_say_what_was_not_measured():
    environments = [_environment(1, 1003), _environment(2, None, 512)]
    wide = [line.plain for line in environment_lines(environments, 9, 90)]
    assert wide[0] == "memory by environment · fullest 2 of 9"  # two sizes: none in the title
    assert wide[1] == (
        "00000001  ██████████  1,003 of 1,024 MB (98%)  1,200 invocations  10:00–10:42"
    )
    assert wide[2].startswith("00000002  ░░░░░░░░░░  ")
    assert wide[2].endswith("  - of 512 MB  1,200 invocations  10:00–10:42")
    narrow = [line.plain for line in environment_lines(environments, 9, 38)]
    assert narrow[1] == "00000001 1,003/1,024 MB 98% 1,200 inv 10:00–10:42"  # cut on screen
    assert narrow[2] == "00000002" + " " * 18 + "- 1,200 inv 10:00–10:42"
    assert [line.plain for line in environment_lines([], 0, 38)] == [
        "memory by environment · no invocation in the window"
    ]


async def test_enter_opens_a_timed_out_invocation_with_its_last_line_before_the_deadline(
    view_store,
):
    app = app_for(view_store.reader)
    async with app.run_test(size=SMALL) as pilot:
        await show(pilot, FunctionScreen(view_store.reader, "checkout", WINDOW))
        recent = app.screen.query_one(InvocationList)
        await wait_for(pilot, lambda: recent.row_count > 0)
        # Newest first: checkout-0031 is the 9th row.
        for _ in range(39 - 31):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))
        screen = app.screen
        log = screen.query_one(RequestLog)
        await wait_for(pilot, lambda: bool(log.lines))

        header = text_of(screen.query_one("#figures", Static))
        assert header.startswith("checkout-0031  timed out")
        assert (
            "duration 3.00 s · billed 3.00 s · memory 71 of 128 MB (55%) · timeout 3.00 s" in header
        )
        assert header.splitlines()[-1].startswith("last line before the deadline: ")
        assert header.splitlines()[-1].endswith(PAYMENTS_LINE)
        shown = log.text.splitlines()
        marked = [line for line in shown if "◀ last line before the deadline" in line]
        assert len(marked) == 1 and PAYMENTS_LINE in marked[0]
        assert "START RequestId: checkout-0031" in shown[0]
        assert all(other not in log.text for other in TIMED_OUT if other != "checkout-0031")
        assert screen.query_one(Waterfall).text.splitlines()[0].startswith("runtime (timed out)")
        assert visible(screen.query_one("#figures", Static), SMALL)
        assert visible(log, SMALL)

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FunctionScreen))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
async def test_invocation_screen_draws_init_runtime_and_spans(view_store, size):
    app = app_for(view_store.reader)
    async with app.run_test(size=size) as pilot:
        await show(pilot, InvocationScreen(view_store.reader, COLD_REQUEST, "checkout", WINDOW))
        screen = app.screen
        log = screen.query_one(RequestLog)
        await wait_for(pilot, lambda: bool(log.lines))
        await pilot.pause(0.05)

        header = text_of(screen.query_one("#figures", Static))
        assert "checkout-0000  ok" in header and "cold start" in header
        assert "duration 120 ms · billed 300 ms · memory 60 of 128 MB (47%) · init 180 ms" in (
            header
        )
        assert "complete: start, runtimeDone and report received" in header
        bars = screen.query_one(Waterfall).text.splitlines()
        labels = [line[:26].strip() for line in bars]
        assert labels == ["init (on-demand)", "runtime", "checkout", FAILED_SPAN]
        assert bars[0].rstrip().endswith("180 ms") and bars[3].rstrip().endswith("60 ms")
        assert len(bars[0]) <= size[0]
        assert visible(screen.query_one(Waterfall), size) and visible(log, size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
async def test_invocation_screen_shows_the_environments_extension_figures_as_such(view_store, size):
    app = app_for(view_store.reader)
    async with app.run_test(size=size) as pilot:
        await show(
            pilot, InvocationScreen(view_store.reader, "thumbnailer-0005", "thumbnailer", WINDOW)
        )
        screen = app.screen
        log = screen.query_one(RequestLog)
        await wait_for(pilot, lambda: bool(log.lines))
        await pilot.pause(0.05)

        header = text_of(screen.query_one("#figures", Static))
        # The store has no /proc figures per request: the environment's, labelled as such.
        assert (
            "environment (not this request): extension peak RSS 12 MB · start-up 18 ms"
            in header.splitlines()
        )
        assert visible(screen.query_one("#figures", Static), size)
        assert visible(screen.query_one(Waterfall), size) and visible(log, size)
        assert log.region.height >= 3


async def test_invocation_screen_says_nothing_of_an_environment_without_figures(view_store):
    app = app_for(view_store.reader)
    async with app.run_test(size=SMALL) as pilot:
        await show(pilot, InvocationScreen(view_store.reader, COLD_REQUEST, "checkout", WINDOW))
        log = app.screen.query_one(RequestLog)
        await wait_for(pilot, lambda: bool(log.lines))
        assert "environment" not in text_of(app.screen.query_one("#figures", Static))


async def test_invocations_screen_reads_one_page_at_a_time(view_store):
    client = Recording(view_store.reader)
    app = app_for(view_store.reader)
    async with app.run_test(size=SMALL) as pilot:
        await show(pilot, InvocationsScreen(client, "checkout", WINDOW))
        screen = app.screen
        table = screen.query_one(InvocationList)
        filters = screen.query_one("#filters", Static)
        await wait_for(pilot, lambda: table.row_count > 0)

        page_size = screen.page_size
        assert page_size == 18 and table.row_count == page_size
        assert "page 1 of 3 (40 invocations)" in text_of(filters)
        assert rows(table)[0][1] == "checkout-0039"
        await pilot.press("n")
        await wait_for(pilot, lambda: "page 2 of 3" in text_of(filters))
        assert rows(table)[0][1] == "checkout-0021"
        await pilot.press("n")
        await wait_for(pilot, lambda: "page 3 of 3" in text_of(filters))
        assert table.row_count == 40 - 2 * page_size
        await pilot.press("p")
        await wait_for(pilot, lambda: "page 2 of 3" in text_of(filters))

        pages = [p for sql, p in client.calls if sql == invocation_view_sql.INVOCATIONS_PAGE]
        assert [(p["offset"], p["limit"]) for p in pages] == [
            (0, page_size),
            (page_size, page_size),
            (2 * page_size, page_size),
            (page_size, page_size),
        ]

        await pilot.press("s")  # slowest first: the timeouts
        await wait_for(
            pilot, lambda: "slowest first" in text_of(filters) and "page 1" in text_of(filters)
        )
        await wait_for(pilot, lambda: rows(table)[0][1] in TIMED_OUT)
        assert [r[2] for r in rows(table)[:3]] == ["3.00 s"] * 3

        await pilot.press("slash")
        await pilot.press(*"payments")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "(3 invocations)" in text_of(filters))
        assert sorted(r[1] for r in rows(table)) == sorted(TIMED_OUT)
        assert 'logs contain "payments"' in text_of(filters)

        await pilot.press("enter")  # opens the highlighted invocation
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationScreen))


async def test_failed_key_and_the_invocations_of_an_out_of_memory_function(view_store):
    app = app_for(view_store.reader)
    async with app.run_test(size=LARGE) as pilot:
        await show(pilot, FunctionScreen(view_store.reader, "report_export", WINDOW))
        await wait_for(pilot, lambda: app.screen.query_one(InvocationList).row_count > 0)
        memory = app.screen.query_one("#memory-chart", Chart).title_text
        assert memory == "memory 128 of 128 MB (100%) · p95 100%"
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, InvocationsScreen))
        table = app.screen.query_one(InvocationList)
        await wait_for(pilot, lambda: table.row_count > 0)
        statuses = sorted(r[3] for r in rows(table))
        assert statuses == ["error MemoryError", "error Runtime.OutOfMemory", "timed out"]


async def test_an_unreachable_collector_shows_in_place_with_retry():
    client = CollectorQueryClient(f"http://127.0.0.1:{closed_port()}", timeout_s=2.0)
    app = app_for(client)
    async with app.run_test(size=SMALL) as pilot:
        for screen in (
            FunctionScreen(client, "checkout", WINDOW),
            InvocationsScreen(client, "checkout", WINDOW),
            InvocationScreen(client, TIMED_OUT[0], "checkout", WINDOW),
        ):
            await show(pilot, screen)
            status = screen.query_one("#status", Static)
            await wait_for(pilot, lambda st=status: "Press r to retry" in text_of(st))
            await pilot.press("r")
            await wait_for(pilot, lambda st=status: "unreachable" in text_of(st))
            await pilot.press("escape")
            await wait_for(pilot, lambda s=screen: app.screen is not s)


async def test_a_request_that_is_not_stored_says_so(view_store):
    app = app_for(view_store.reader)
    async with app.run_test(size=SMALL) as pilot:
        await show(pilot, InvocationScreen(view_store.reader, "gone-0001", "checkout", WINDOW))
        status = app.screen.query_one("#status", Static)
        await wait_for(pilot, lambda: "not in the store" in text_of(status))
        assert app.screen.query_one(Waterfall).bars == []
