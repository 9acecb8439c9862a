"""The live tail screen over the real store: grouping, pause, filter, clear, bounds, errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from textual.widgets import Input, Static

from lambdascope.analyzers.tail import TailLine
from lambdascope.query import QueryResult, StoreUnavailableError
from lambdascope.tui.app import LambdascopeApp
from lambdascope.tui.screens.tail import TailScreen, parse_filter
from lambdascope.tui.widgets.tail_log import TailBuffer, compact_json, line_text
from tests.analyzers.fleetdata import NOW
from tests.analyzers.tailfixtures import T0, at, json_line, line, report, start, write
from tests.tui.test_app import wait_for

FAST = 0.05


def tail_line(ms: int, request_id: str, message: str, **changes: Any) -> TailLine:
    fields: dict[str, Any] = {
        "timestamp": at(ms),
        "stream": "function",
        "level": "INFO",
        "message": message,
        "function_name": "checkout",
        "function_version": "$LATEST",
        "request_id": request_id,
        "batch_id": "b",
        "seq": ms,
    }
    fields.update(changes)
    return TailLine(**fields)


def screen_text(app: LambdascopeApp) -> str:
    return app.screen.query_one("#tail-text", Static).render().plain  # type: ignore[union-attr]


def status_text(app: LambdascopeApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


def open_tail(store, **kwargs: Any) -> tuple[LambdascopeApp, TailScreen]:
    app = LambdascopeApp(store.reader, now=NOW)
    return app, TailScreen(store.reader, start=T0, interval_s=FAST, **kwargs)


# Pure -----------------------------------------------------------------------------------------


def test_lines_are_grouped_by_request_with_the_outcome_once_reported():
    buffer = TailBuffer(max_lines=100)
    buffer.add(
        [
            tail_line(1, "r1", "charging"),
            tail_line(2, "r2", "thumbnail", function_name="thumbnailer"),
            tail_line(3, "r1", "charged"),
            tail_line(
                4,
                "r1",
                "REPORT RequestId: r1\tDuration: 1234.50 ms\tBilled Duration: 1235 ms\t",
                stream="platform",
                level="",
            ),
        ]
    )
    lines = buffer.render().plain.splitlines()
    assert lines[0] == "checkout  r1  success  1,234 ms"
    assert "charging" in lines[1] and "charged" in lines[2]
    assert lines[4] == "thumbnailer  r2"


def test_a_timeout_shows_before_its_report_and_the_reports_status_wins():
    buffer = TailBuffer(max_lines=100)
    buffer.add([tail_line(1, "r1", "2026-01-01T00:00:03Z r1 Task timed out after 3.00 seconds")])
    assert buffer.groups[0].status == "timeout"
    buffer.add(
        [
            tail_line(
                2,
                "r1",
                "REPORT RequestId: r1\tDuration: 3000.00 ms\tStatus: timeout",
                stream="platform",
            )
        ]
    )
    assert (buffer.groups[0].status, buffer.groups[0].duration_ms) == ("timeout", 3000.0)


def test_memory_is_bounded_and_the_dropped_lines_counted():
    buffer = TailBuffer(max_lines=3)
    buffer.add([tail_line(i, f"r{i // 2}", f"m{i}") for i in range(5)])
    assert buffer.line_count == 3 and buffer.dropped == 2
    assert [g.request_id for g in buffer.groups] == ["r1", "r2"]
    assert "m0" not in buffer.render().plain and "m4" in buffer.render().plain


def test_the_text_looked_for_is_marked():
    buffer = TailBuffer(max_lines=10)
    buffer.add([tail_line(1, "r1", "card DECLINED by bank")])
    rendered = buffer.render("declined")
    marked = [rendered.plain[s.start : s.end] for s in rendered.spans if s.style == "reverse"]
    assert marked == ["DECLINED"]


def test_lines_without_a_request_form_a_group_per_run():
    buffer = TailBuffer(max_lines=10)
    buffer.add(
        [
            tail_line(1, "", "INIT_START Runtime Version: python:3.12", stream="platform"),
            tail_line(2, "r1", "handled"),
            tail_line(3, "", "[lambdascope] INFO flushed", stream="extension"),
        ]
    )
    assert [g.request_id for g in buffer.groups] == ["", "r1", ""]
    assert buffer.render().plain.splitlines()[0] == "checkout  (no request)"


def test_json_lines_are_shown_compactly_and_levels_coloured():
    record = '{"level":"ERROR","message":"card declined","requestId":"r1","amount":12.5,"ok":false}'
    assert compact_json(record) == "card declined  amount=12.5 ok=false"
    assert compact_json("not json {") is None
    assert compact_json("[1, 2]") is None

    text = line_text(tail_line(1, "r1", record, level="ERROR"))
    assert "ERROR" in text.plain and "card declined" in text.plain
    assert any("red" in str(span.style) for span in text.spans)
    stored = line_text(tail_line(1, "r1", "card declined", attributes={"code": "51"}))
    assert stored.plain.endswith("card declined  code=51")
    traceback = line_text(tail_line(1, "r1", "boom\rTraceback:\r  File x"))
    assert len(traceback.plain.splitlines()) == 3


def test_the_filter_picks_a_function_or_text():
    names = {"checkout", "payments"}
    assert parse_filter("checkout", names) == ("checkout", "")
    assert parse_filter("declined", names) == (None, "declined")
    assert parse_filter("function:payments card declined", names) == ("payments", "card declined")
    assert parse_filter("  ", names) == (None, "")


# The screen -----------------------------------------------------------------------------------


async def test_the_tail_groups_requests_as_they_arrive_and_shows_their_outcome(store):
    write(store, "checkout", [start(0, "r1"), line(1, "r1", "charging card")])
    write(store, "payments", [start(2, "p1"), line(2, "p1", "authorising")])
    app, screen = open_tail(store)

    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "authorising" in screen_text(app))
        # The rest of checkout's request arrives in a later batch: it joins its group.
        write(store, "checkout", [line(5, "r1", "card charged"), *report(6, "r1", 6.0)])
        await wait_for(pilot, lambda: "success" in screen_text(app))

        lines = screen_text(app).splitlines()
        first = lines.index("checkout  r1  success  6 ms")
        assert [("charging" in x, "charged" in x) for x in lines[first + 2 : first + 4]] == [
            (True, False),
            (False, True),
        ]
        assert any(x.startswith("payments  p1") for x in lines)
        assert "tail: all functions (live)" in screen.sub_title
        assert "Following" in status_text(app)
        assert screen.query_one("#tail").region.height >= 15  # most of 80x24 is the log


async def test_pause_holds_new_lines_until_resumed_and_clear_empties(store):
    write(store, "checkout", [line(1, "r1", "before pause")])
    app, screen = open_tail(store)

    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "before pause" in screen_text(app))
        await pilot.press("space")
        assert "(paused)" in screen.sub_title
        assert "Paused (space to resume)" in status_text(app)
        write(store, "checkout", [line(2, "r1", "while paused")])
        await pilot.pause(FAST * 6)
        assert "while paused" not in screen_text(app)

        await pilot.press("space")
        await wait_for(pilot, lambda: "while paused" in screen_text(app))
        assert "(live)" in screen.sub_title

        await pilot.press("c")
        assert "No log lines yet" in screen_text(app)
        write(store, "checkout", [line(3, "r1", "after clear")])
        await wait_for(pilot, lambda: "after clear" in screen_text(app))
        assert "while paused" not in screen_text(app)


async def filter_by(pilot, screen: TailScreen, value: str) -> None:
    """``/``, the value, Enter; the value is set at once (a key press a letter is slow)."""
    await pilot.press("slash")
    filter_input = screen.query_one("#tail-filter", Input)
    assert filter_input.has_focus
    filter_input.value = value
    await pilot.press("enter")


async def test_the_filter_narrows_to_a_function_or_text(store):
    write(store, "checkout", [line(1, "r1", "card DECLINED"), line(2, "r1", "retrying")])
    write(store, "payments", [json_line(3, {"level": "WARN", "message": "bank slow"})])
    app, screen = open_tail(store)

    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "bank slow" in screen_text(app))

        await filter_by(pilot, screen, "declined")
        await wait_for(pilot, lambda: "card DECLINED" in screen_text(app))
        assert "retrying" not in screen_text(app) and "bank slow" not in screen_text(app)
        assert "lines with 'declined'" in screen.sub_title

        await filter_by(pilot, screen, "payments")
        await wait_for(pilot, lambda: "bank slow" in screen_text(app))
        assert "card DECLINED" not in screen_text(app)
        assert "tail: payments" in screen.sub_title

        # Escape closes the filter box without leaving the tail, then leaves it.
        await pilot.press("slash")
        await pilot.press("escape")
        assert not screen.query_one("#tail-filter", Input).has_class("shown")
        assert app.screen is screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not screen)


async def test_only_the_last_lines_are_kept_and_the_screen_says_so(store):
    write(store, "checkout", [line(i, f"r{i}", f"line {i}") for i in range(8)])
    app, screen = open_tail(store, max_lines=5, page_size=3)

    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "line 7" in screen_text(app))
        assert "line 2" not in screen_text(app) and "line 3" in screen_text(app)
        assert "3 older lines dropped (keeping the last 5)" in status_text(app)


class FlakyClient:
    """The store, unreachable until told otherwise."""

    def __init__(self, client) -> None:
        self.client = client
        self.down = True

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        if self.down:
            raise StoreUnavailableError("http://127.0.0.1:9/api/v1/query: connection refused")
        return self.client.query(sql, parameters)


async def test_an_error_is_shown_in_place_and_r_retries(store):
    write(store, "checkout", [line(1, "r1", "back again")])
    client = FlakyClient(store.reader)
    app = LambdascopeApp(store.reader, now=NOW)
    screen = TailScreen(client, "checkout", start=T0, interval_s=FAST)

    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "unreachable" in status_text(app))
        assert "Press r to retry" in status_text(app)
        client.down = False
        await pilot.pause(FAST * 4)
        assert "back again" not in screen_text(app)  # no retry behind the user's back

        await pilot.press("r")
        await wait_for(pilot, lambda: "back again" in screen_text(app))
        assert "unreachable" not in status_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TailScreen))


def test_the_tail_starts_a_minute_back_without_a_start():
    screen = TailScreen(FlakyClient(None))
    assert screen._cursor.timestamp > T0 + timedelta(minutes=8)
