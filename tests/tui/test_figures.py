"""The screens' pure parts: figures for people, the filter line, the waterfall's bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lambdascope.analyzers.fleet import Invocation
from lambdascope.analyzers.invocation_view import (
    InitPhase,
    InvocationDetail,
    InvocationFilters,
    InvocationView,
    Span,
)
from lambdascope.tui import figures
from lambdascope.tui.screens.invocation import waterfall_bars
from lambdascope.tui.screens.invocations import filter_text, parse_filters
from lambdascope.tui.widgets.request_log import pretty_json
from lambdascope.tui.widgets.waterfall import Bar, Waterfall

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "-"),
        (0.84, "0.8 ms"),
        (85.4, "85 ms"),
        (999.4, "999 ms"),
        (1420.0, "1.42 s"),
        (12345.0, "12.3 s"),
        (125000.0, "2 min 05 s"),
    ],
)
def test_durations_read_like_people_say_them(ms, text):
    assert figures.duration(ms) == text


def test_memory_and_names():
    assert figures.memory(71, 128) == "71 of 128 MB (55%)"
    assert figures.memory(None, 128) == "- of 128 MB"
    assert figures.memory(300, None) == "300 MB"
    assert figures.megabytes(12.25) == "12.2 MB"
    assert figures.status("timeout") == "timed out"
    assert figures.initialization_type("snap-start") == "SnapStart"
    assert figures.initialization_type("provisioned-concurrency") == "provisioned concurrency"


def test_the_filter_line():
    filters = parse_filters("status:Timeout cold v:7 >1.5s calling payments", "slowest")
    assert filters == InvocationFilters(
        status="timeout",
        cold_only=True,
        function_version="7",
        min_duration_ms=1500.0,
        log_text="calling payments",
        order="slowest",
    )
    assert parse_filters(">250").min_duration_ms == 250.0
    assert parse_filters(filter_text(filters), "slowest") == filters
    assert parse_filters("", "sideways").order == "newest"


def _view(**overrides) -> InvocationView:
    invocation = Invocation(
        "r1", "f", "$LATEST", "e1", T0, 130.0, 300.0, "success", "", 180.0, True, 60, 128, 3000.0
    )
    detail = InvocationDetail(
        invocation, True, True, True, True, 120.0, None, "x86_64", "us-east-1", "", T0
    )
    init = InitPhase(
        "init", "snap-start", T0 - timedelta(milliseconds=200), 180.0, "success", "", ""
    )
    root = Span(T0, 110.0, "handler", "SERVER", "a", "", "OK", "")
    child = Span(T0 + timedelta(milliseconds=10), 50.0, "GET db", "CLIENT", "b", "a", "ERROR", "x")
    return InvocationView(detail, [init], [root, child], [])


def test_waterfall_bars_share_one_axis():
    bars = waterfall_bars(_view())
    assert [(b.label, b.offset_ms, b.length_ms) for b in bars] == [
        ("init (SnapStart)", 0.0, 180.0),
        ("runtime", 200.0, 120.0),
        ("post-runtime (extensions)", 320.0, 10.0),
        ("handler", 200.0, 110.0),
        ("  GET db", 210.0, 50.0),  # indented under its parent
    ]
    assert bars[-1].style == "red"  # a failed span


def test_waterfall_draws_within_its_width():
    waterfall = Waterfall()
    waterfall.bars = [Bar("init", 0, 180), Bar("a very long span name indeed, cut", 180, 1820)]
    for width in (60, 80, 160):
        lines = waterfall.render_bars(width).plain.splitlines()
        assert all(len(line) <= width for line in lines)
        assert lines[0].endswith("180 ms") and lines[1].endswith("1.82 s")
        assert "…" in lines[1]


def test_json_log_lines_are_pretty_printed():
    assert pretty_json('{"level": "INFO", "msg": "hi"}') == [
        "{",
        '  "level": "INFO",',
        '  "msg": "hi"',
        "}",
    ]
    assert pretty_json("{not json}") is None
    assert pretty_json("plain line") is None


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([], ""),
        ([None, None], "  "),
        ([0.0, 0.0], "▁▁"),
        ([100.0, 100.0, 100.0], "███"),
        ([10.0, None, 40.0, 80.0], "▂ ▅█"),
        ([0.0, 35.0, 70.0], "▁▅█"),
    ],
)
def test_sparklines_scale_from_zero_and_leave_unmeasured_buckets_blank(values, text):
    assert figures.sparkline(values) == text


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (None, "-"),
        (0.0, "$0.00"),
        (0.004, "<$0.01"),
        (0.42, "$0.42"),
        (12.345, "$12.35"),
        (1234.5, "$1,234"),
    ],
)
def test_money_shows_cents_while_they_matter(usd, text):
    assert figures.money(usd) == text


def test_a_narrow_table_keeps_its_most_important_columns_in_order():
    from lambdascope.tui.widgets.fleet_table import fitting

    # widths 10, 5, 5, 20 (+2 padding each); priorities: first, third, second, fourth.
    assert fitting([10, 5, 5, 20], [0, 2, 1, 3], 100) == [0, 1, 2, 3]
    assert fitting([10, 5, 5, 20], [0, 2, 1, 3], 30) == [0, 1, 2]
    assert fitting([10, 5, 5, 20], [0, 2, 1, 3], 20) == [0, 2]
    assert fitting([10, 5, 5, 20], [0, 2, 1, 3], 5) == [0]  # the name shows whatever the width
