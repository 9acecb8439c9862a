"""The live tail's reads against the real store: every line exactly once, in time order."""

from __future__ import annotations

from datetime import timedelta

from lambdascope.analyzers.tail import MAX_SEEN_BATCHES, TailCursor, TailLine, tail_line, tail_lines
from tests.analyzers.tailfixtures import T0, at, json_line, line, write

START = TailCursor.starting_at(T0)


def drain(reader, cursor, **kwargs):
    """Poll until a page comes back not full; (messages in order, final cursor)."""
    messages: list[str] = []
    for _ in range(50):
        page = tail_lines(reader, cursor, **kwargs)
        messages += [item.message for item in page.lines]
        cursor = page.cursor
        if not page.more:
            return messages, cursor
    raise AssertionError("the tail never caught up")


def test_lines_sharing_a_timestamp_are_read_once_across_small_pages(store):
    # Twelve lines in the same millisecond, from two batches, read three at a time.
    write(store, "checkout", [line(5, "r1", f"a{i}") for i in range(6)])
    write(store, "payments", [line(5, "r2", f"b{i}") for i in range(6)])

    messages, cursor = drain(store.reader, START, limit=3)

    assert sorted(messages) == sorted([f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)])
    assert len(messages) == 12
    assert cursor.timestamp == at(5)
    assert tail_lines(store.reader, cursor, limit=3).lines == []


def test_lines_written_between_polls_at_the_cursors_time_are_not_skipped(store):
    write(store, "checkout", [line(10, "r1", "first"), line(10, "r1", "second")])
    messages, cursor = drain(store.reader, START)
    assert messages == ["first", "second"]

    # Another batch lands with lines in the very millisecond the cursor stands on, and later.
    write(store, "checkout", [line(10, "r1", "third"), line(11, "r1", "fourth")])
    more, cursor = drain(store.reader, cursor)
    assert more == ["third", "fourth"]

    assert drain(store.reader, cursor)[0] == []


def test_a_batch_arriving_late_with_older_lines_is_shown_once(store):
    lateness = timedelta(milliseconds=700)
    write(store, "checkout", [line(1_000, "r1", "newer")])
    messages, cursor = drain(store.reader, START, lateness=lateness)
    assert messages == ["newer"]

    # payments' extension flushes later: its lines are older than what the tail showed.
    write(store, "payments", [line(400, "r2", "older"), line(1_200, "r2", "after")])
    late, cursor = drain(store.reader, cursor, lateness=lateness)
    assert sorted(late) == ["after", "older"]
    assert drain(store.reader, cursor, lateness=lateness)[0] == []

    # Older than the lateness allowed behind the newest line shown: no longer looked for.
    write(store, "payments", [line(100, "r3", "too late")])
    assert drain(store.reader, cursor, lateness=lateness)[0] == []


def test_one_function_and_a_text_filter_are_applied_by_the_store(store):
    write(store, "checkout", [line(1, "r1", "Payment DECLINED"), line(2, "r1", "ok")])
    write(store, "payments", [line(3, "r2", "payment declined too")])

    assert drain(store.reader, START, function_name="checkout")[0] == ["Payment DECLINED", "ok"]
    assert drain(store.reader, START, text="declined")[0] == [
        "Payment DECLINED",
        "payment declined too",
    ]
    assert drain(store.reader, START, text="'; DROP TABLE logs --")[0] == []


def test_a_lines_fields_come_from_the_row():
    row = {
        "timestamp": T0,
        "function_name": "checkout",
        "function_version": "7",
        "request_id": "r1",
        "stream": "function",
        "level": "INFO",
        "message": "hello",
        "batch_id": "b",
        "seq": 3,
    }
    assert tail_line(row) == TailLine(
        T0, "function", "INFO", "hello", "checkout", "7", "r1", "b", 3
    )


def test_the_cursor_forgets_batches_beyond_the_horizon():
    lines = [
        TailLine(at(ms), "function", "", "x", "f", "1", "r", f"batch{ms}", 0) for ms in (0, 50, 100)
    ]
    cursor = START.after(lines, timedelta(milliseconds=60))
    assert cursor.key == (at(100), "batch100", 0)
    assert cursor.horizon == at(40)
    assert set(cursor.seen_batches) == {"batch50", "batch100"}


def test_a_json_lines_other_keys_come_as_attributes(store):
    write(store, "checkout", [json_line(1, {"level": "WARN", "message": "slow bank", "ms": 950})])

    (read,) = tail_lines(store.reader, START).lines
    assert (read.level, read.message, dict(read.attributes)) == (
        "WARNING",
        "slow bank",
        {"ms": "950"},
    )


def test_the_cursor_remembers_a_bounded_number_of_batches():
    count = MAX_SEEN_BATCHES + 5
    lines = [
        TailLine(at(ms), "function", "", "x", "f", "1", "r", f"b{ms}", 0) for ms in range(count)
    ]
    cursor = START.after(lines, timedelta(hours=1))
    assert len(cursor.seen_batches) == MAX_SEEN_BATCHES
    # Late lines are no longer looked for behind the oldest batch remembered.
    assert cursor.horizon == at(5)
    assert "b4" not in cursor.seen_batches and "b5" in cursor.seen_batches


def test_the_tail_reads_through_the_collectors_read_api(store):
    # What the TUI uses against an embedded store: the SQL and its array and tuple parameters
    # pass the read sandbox and bind over HTTP.
    from lambdascope.collector.server import CollectorServer
    from lambdascope.query import CollectorQueryClient

    write(store, "checkout", [line(1, "r1", "over http"), line(1, "r1", "same millisecond")])
    with CollectorServer(store.store, port=0) as server:
        client = CollectorQueryClient(server.url, timeout_s=10.0)
        messages, cursor = drain(client, START)
        assert messages == ["over http", "same millisecond"]
        write(store, "payments", [line(0, "r2", "late over http")])
        assert drain(client, cursor)[0] == ["late over http"]
