"""The SQL view's values written in as ClickHouse literals (display only)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from lambdascope.tui.sql_text import bind_for_display, literal


def test_strings_are_quoted_and_escaped():
    assert literal("checkout", "String") == "'checkout'"
    assert literal("it's", "String") == r"'it\'s'"
    assert literal("C:\\tmp\\x", "String") == r"'C:\\tmp\\x'"
    assert literal("a\nb\tc", "String") == r"'a\nb\tc'"
    assert literal("\\'", "String") == r"'\\\''"
    assert literal("", "String") == "''"


def test_numbers_and_flags():
    assert literal(50, "UInt32") == "50"
    assert literal(0.9, "Float64") == "0.9"
    assert literal(-3, "Int64") == "-3"
    assert literal(True, "UInt8") == "1"
    assert literal(math.nan, "Float64") == "nan"
    assert literal(None, "Nullable(String)") == "NULL"


def test_datetimes_keep_their_precision_and_zone():
    assert (
        literal("2024-05-01 12:00:00.000", "DateTime64(3, 'UTC')")
        == "toDateTime64('2024-05-01 12:00:00.000', 3, 'UTC')"
    )
    moment = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert literal(moment, "DateTime64(3, 'UTC')") == (
        "toDateTime64('2024-05-01 12:00:00.250000', 3, 'UTC')"
    )
    assert literal(moment, "DateTime") == "toDateTime('2024-05-01 12:00:00.250000')"


def test_arrays_render_each_element_with_the_inner_type():
    assert literal(["a", "b'c"], "Array(String)") == r"['a', 'b\'c']"
    assert literal([], "Array(String)") == "[]"
    assert literal((1, 2), "Array(UInt32)") == "[1, 2]"


def test_bind_replaces_known_placeholders_and_leaves_unknown_ones():
    query = (
        "SELECT * FROM invocations WHERE start_time >= {since:DateTime64(3, 'UTC')} "
        "AND (function_name = {function_name:String} OR {function_name:String} = '') "
        "AND function_name IN {function_names:Array(String)} LIMIT {max_evidence:UInt32} "
        "AND x = {missing:String}"
    )
    bound = bind_for_display(
        query,
        {
            "since": "2024-05-01 11:00:00.000",
            "function_name": "",
            "function_names": ["checkout", "o'brien"],
            "max_evidence": 50,
        },
    )
    assert bound == (
        "SELECT * FROM invocations WHERE start_time >= "
        "toDateTime64('2024-05-01 11:00:00.000', 3, 'UTC') "
        "AND (function_name = '' OR '' = '') "
        r"AND function_name IN ['checkout', 'o\'brien'] LIMIT 50 "
        "AND x = {missing:String}"
    )
