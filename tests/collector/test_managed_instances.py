"""Normalisation of a Lambda Managed Instances batch: 8 requests in flight in one execution
environment, their events and log lines interleaved. Pure: no store, no sockets."""

from __future__ import annotations

from collections import Counter

from lambdascope.collector.normalize import normalize_batch
from tests.collector import managed_instances as mi

RIDS = [r[0] for r in mi.REQUESTS]


def test_every_request_gets_its_own_duration_and_status_without_runtime_done() -> None:
    batch = normalize_batch(mi.batch())
    rows = {row.request_id: row for row in batch.invocation_rows}
    assert set(rows) == set(RIDS)
    for request_id, _start, duration, status in mi.REQUESTS:
        row = rows[request_id]
        assert (row.has_start, row.has_report, row.has_runtime_done) == (1, 1, 0)
        assert row.report_duration_ms == duration
        assert row.report_status == status
        assert row.report_error_type == mi.ERROR_TYPES.get(status)
        # The Managed Instances report carries no memory figures: NULL, not 0.
        assert row.report_max_memory_used_mb is None
        assert row.report_init_duration_ms is None


def test_lines_naming_their_request_go_to_it_however_they_interleave() -> None:
    batch = normalize_batch(mi.batch())
    by_request = Counter(r.request_id for r in batch.log_rows if r.stream == "function")
    for request_id, _start, _duration, status in mi.REQUESTS:
        # the JSON line, the awslambdaric line, and the error line of a failed request
        expected = 2 + (status != "success")
        if request_id in (RIDS[0], RIDS[6]):
            expected += 1  # a line written while it ran alone (before the second start; last)
        assert by_request[request_id] == expected, request_id
    rows = {row.request_id: row for row in batch.invocation_rows}
    assert rows[RIDS[1]].log_lines == 3
    assert rows[RIDS[0]].log_lines == 3


def test_lines_without_a_request_id_are_left_unattributed_while_several_run() -> None:
    batch = normalize_batch(mi.batch())
    unattributed = [
        r.message for r in batch.log_rows if r.stream == "function" and not r.request_id
    ]
    # The first request's print line came before the second start: it ran alone then.
    assert unattributed == ["print without id"] * 7 + ["two still open"]
    assert batch.unattributed_lines == 8
    alone = [r for r in batch.log_rows if r.message == "one still open"]
    assert [r.request_id for r in alone] == [RIDS[6]]


def test_the_first_start_opens_a_window_a_lone_line_can_use() -> None:
    # Before the second start only one request runs: its print line is its.
    events = [e for e in mi.events() if e["type"] != "function"]
    first_start = next(i for i, e in enumerate(events) if e["type"] == "platform.start")
    line = {"time": events[first_start]["time"], "type": "function", "record": "alone\n"}
    events.insert(first_start + 1, line)
    batch = normalize_batch(mi.batch(events))
    assert [r.request_id for r in batch.log_rows if r.message == "alone"] == [RIDS[0]]
    assert batch.unattributed_lines == 0


def test_windows_open_in_an_earlier_batch_carry_over_as_a_set() -> None:
    line = {"time": "2026-11-24T07:00:01.000Z", "type": "function", "record": "carried\n"}
    several = normalize_batch(mi.batch([line], open_request_ids=RIDS[:3]))
    assert [r.request_id for r in several.log_rows] == [""]
    assert several.unattributed_lines == 1
    one = normalize_batch(mi.batch([line], open_request_ids=[RIDS[2]]))
    assert [r.request_id for r in one.log_rows] == [RIDS[2]]
    assert one.unattributed_lines == 0


def test_the_init_row_says_managed_instances_even_when_the_event_does_not() -> None:
    events = [e for e in mi.events() if e["type"].startswith("platform.init")]
    for event in events:
        event["record"].pop("initializationType")
    batch = normalize_batch(mi.batch(events))
    assert {p.initialization_type for p in batch.cold_start_rows} == {"lambda-managed-instances"}
    # On demand a missing type stays missing, as it always was.
    batch = normalize_batch(mi.batch(events, initialization_type="on-demand"))
    assert {p.initialization_type for p in batch.cold_start_rows} == {None}


def test_the_same_events_from_an_on_demand_environment_keep_the_old_rule() -> None:
    # On demand a start replaces the open window (its end was lost), so lines are never left
    # unattributed: the newest start takes them, as before.
    batch = normalize_batch(mi.batch(initialization_type="on-demand"))
    assert batch.unattributed_lines == 0
    assert all(r.request_id for r in batch.log_rows if r.message == "print without id")
