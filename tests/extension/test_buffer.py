from __future__ import annotations

import json

from lambdascope.extension.buffer import TelemetryBuffer, next_open_request_id
from tests.extension.fakes import event, invocation_events, report_event


def test_open_request_id_follows_start_and_runtime_done() -> None:
    sequence = [
        ("platform.initStart", None, None),
        ("platform.start", "a", "a"),
        ("function", None, "a"),
        ("platform.runtimeDone", "a", None),
        ("platform.report", "a", None),
        ("platform.start", "b", "b"),
        ("platform.runtimeDone", "other", "b"),  # another request's runtimeDone: b stays open
        ("platform.start", "c", "c"),  # a new start replaces a window never closed
        ("platform.runtimeDone", "c", None),
    ]
    current = None
    for event_type, request_id, expected in sequence:
        current = next_open_request_id(current, event_type, request_id)
        assert current == expected, (event_type, request_id)


def test_a_batch_that_splits_a_window_names_the_open_request() -> None:
    buffer = TelemetryBuffer()
    buffer.append_events(invocation_events("a")[:2])  # start a, a function line
    first = buffer.take_batch(max_events=1, max_bytes=10**6)
    assert first is not None and first.open_request_id is None
    second = buffer.take_batch(max_events=10, max_bytes=10**6)
    assert second is not None and second.open_request_id == "a"
    assert [json.loads(t)["type"] for t in second.telemetry] == ["function"]
    buffer.append_events([event("function", "more\n"), invocation_events("a")[2]])
    third = buffer.take_batch(10, 10**6)
    assert third is not None and third.open_request_id == "a"
    buffer.append_events([event("function", "between invocations\n")])
    fourth = buffer.take_batch(10, 10**6)
    assert fourth is not None and fourth.open_request_id is None


def test_take_batch_respects_event_and_byte_limits_and_keeps_order() -> None:
    buffer = TelemetryBuffer()
    events = [event("function", f"line {i}\n") for i in range(10)]
    buffer.append_events(events)
    size = len(json.dumps(events[0], separators=(",", ":")))
    batch = buffer.take_batch(max_events=100, max_bytes=size * 3)
    assert batch is not None and len(batch.telemetry) == 3
    batch2 = buffer.take_batch(max_events=4, max_bytes=10**6)
    assert batch2 is not None and len(batch2.telemetry) == 4
    rest = buffer.take_batch(100, 10**6)
    assert rest is not None
    texts = batch.telemetry + batch2.telemetry + rest.telemetry
    assert [json.loads(t) for t in texts] == events
    assert buffer.take_batch(100, 10**6) is None


def test_a_single_event_larger_than_the_batch_limit_still_goes_out() -> None:
    buffer = TelemetryBuffer()
    buffer.append_events([event("function", "x" * 5000)])
    batch = buffer.take_batch(max_events=10, max_bytes=100)
    assert batch is not None and len(batch.telemetry) == 1


def test_full_buffer_drops_the_oldest_and_counts_them() -> None:
    buffer = TelemetryBuffer(max_events=5, max_bytes=10**6)
    buffer.append_events(invocation_events("a") + [report_event("a")] + invocation_events("b"))
    assert len(buffer) == 5
    assert buffer.dropped_events == 2
    batch = buffer.take_batch(10, 10**6)
    assert batch is not None
    kept = [json.loads(t) for t in batch.telemetry]
    assert kept == ([invocation_events("a")[2], report_event("a")] + invocation_events("b"))
    # the dropped platform.start opened window a; its runtimeDone is the first kept event
    assert batch.open_request_id == "a"


def test_byte_bound_drops_oldest() -> None:
    buffer = TelemetryBuffer(max_events=1000, max_bytes=500)
    buffer.append_events([event("function", "y" * 100) for _ in range(10)])
    assert buffer.buffered_bytes <= 500
    assert buffer.dropped_events == 10 - len(buffer)
    assert buffer.dropped_bytes > 0


def test_invocation_records_are_bounded_and_taken_with_the_next_batch() -> None:
    buffer = TelemetryBuffer(max_invocations=2)
    for number in range(3):
        buffer.add_invocation({"request_id": str(number)})
    assert buffer.dropped_invocations == 1
    batch = buffer.take_batch(10, 10**6)
    assert batch is not None
    assert batch.telemetry == []
    assert [r["request_id"] for r in batch.invocations] == ["1", "2"]
    assert not buffer.has_data()


def test_wait_for_report_sees_reports_that_arrived() -> None:
    buffer = TelemetryBuffer()
    assert buffer.wait_for_report("a", 0.01) is False
    buffer.append_events([report_event("a")])
    assert buffer.wait_for_report("a", 0.01) is True
    assert buffer.wait_for_report(None, 0.01) is False
