"""The time window model, the figures' formats and the command line's parser: pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lambdascope.analyzers.window import Window
from lambdascope.tui.figures import duration
from lambdascope.tui.format import ago, share
from lambdascope.tui.timewindow import TimeWindow, TimeWindowError, align, range_text
from lambdascope.tui.widgets.command_line import Command, CommandError, parse_command

NOW = datetime(2026, 1, 31, 12, 34, 20, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("6h", timedelta(hours=6)),
        ("24H", timedelta(hours=24)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_spans_parse_live(text: str, span: timedelta) -> None:
    window = TimeWindow.parse(text, NOW)
    assert (window.span, window.live, window.fixed) == (span, True, False)


def test_a_span_resolves_to_whole_minutes_including_the_current_one() -> None:
    window = TimeWindow.parse("1h", NOW).resolve(NOW)
    assert window == Window(
        datetime(2026, 1, 31, 11, 35, tzinfo=UTC), datetime(2026, 1, 31, 12, 35, tzinfo=UTC)
    )
    on_the_minute = NOW.replace(second=0, microsecond=0)
    assert TimeWindow.last(timedelta(hours=1)).resolve(on_the_minute).end == on_the_minute


def test_a_clock_range_is_today_in_utc_and_paused() -> None:
    window = TimeWindow.parse("12:00-13:00", NOW)
    assert window.resolve(NOW) == Window(
        datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 1, 31, 13, tzinfo=UTC)
    )
    assert (window.fixed, window.live) == (True, False)
    assert window.label() == "12:00-13:00 UTC, paused"
    assert window.resumed() == window  # a fixed range cannot go live


def test_a_clock_range_across_midnight_ends_today() -> None:
    window = TimeWindow.parse("23:30-00:30", NOW).resolve(NOW)
    assert window.start == datetime(2026, 1, 30, 23, 30, tzinfo=UTC)
    assert window.end == datetime(2026, 1, 31, 0, 30, tzinfo=UTC)


def test_an_iso_range_is_widened_to_whole_minutes() -> None:
    window = TimeWindow.parse("2026-01-30T10:00:30Z/2026-01-30T11:59:10", NOW).resolve(NOW)
    assert window == Window(
        datetime(2026, 1, 30, 10, tzinfo=UTC), datetime(2026, 1, 30, 12, tzinfo=UTC)
    )
    assert range_text(window) == "10:00-12:00 UTC"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no window given"),
        ("soon", "is not a time window"),
        ("0m", "is empty"),
        ("100d", "longer than 90d"),
        ("25:00-26:00", "not a range of times of day"),
        ("13:00-14:00", "has not started yet"),
        ("2026-01-30T12:00/yesterday", "not a range of ISO times"),
        ("2026-01-30T12:00/2026-01-30T11:00", "ends before it starts"),
    ],
)
def test_bad_windows_say_what_to_type(text: str, says: str) -> None:
    with pytest.raises(TimeWindowError, match=says) as caught:
        TimeWindow.parse(text, NOW)
    if says in ("is not a time window", "no window given"):
        assert "15m, 1h, 6h, 24h or 7d" in str(caught.value)


def test_labels_say_live_or_paused() -> None:
    window = TimeWindow.last(timedelta(hours=1))
    assert window.label() == "last 1h, live"
    assert window.paused().label() == "last 1h, paused"
    assert window.paused().resumed().label() == "last 1h, live"
    assert TimeWindow.last(timedelta(seconds=90)).label() == "last 2m, live"  # whole minutes


def test_align_contains_the_exact_window() -> None:
    exact = Window(NOW - timedelta(minutes=15), NOW)
    aligned = align(exact)
    assert aligned.start <= exact.start and aligned.end >= exact.end
    assert aligned.start.second == aligned.end.second == 0


def test_figures_are_written_for_people() -> None:
    assert [duration(v) for v in (None, 85.4, 1250.0, 12_400.0, 150_000.0)] == [
        "-",
        "85 ms",
        "1.25 s",
        "12.4 s",
        "2 min 30 s",
    ]
    assert [share(*args) for args in ((0, 40), (3, 40), (1, 5000), (12, 40), (1, 0))] == [
        "0%",
        "7.5%",
        "<0.1%",
        "30%",
        "-",
    ]
    assert [ago(NOW - timedelta(seconds=s), NOW) for s in (2, 45, 150, 7200, 200_000)] == [
        "just now",
        "45s ago",
        "2m ago",
        "2h ago",
        "2d ago",
    ]


def test_command_lines_parse_or_say_what_would() -> None:
    assert parse_command(":since 6h") == Command("since", "6h")
    assert parse_command("fn checkout") == Command("fn", "checkout")
    assert parse_command(":q") == Command("q")
    with pytest.raises(CommandError, match="Unknown command :frobnicate.*:since"):
        parse_command(":frobnicate")
    with pytest.raises(CommandError, match="Missing argument"):
        parse_command(":since")
