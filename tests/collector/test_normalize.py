"""Normalisation of extension batches: pure functions, no store, no sockets."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from collector.normalize import (
    BatchError,
    InvocationPart,
    NormalizedBatch,
    normalize_batch,
    parse_text_line,
    parse_time,
)
from tests.collector.conftest import load_event

R1 = "8f5a2c1e-1111-4c3d-9e8f-0a1b2c3d4e5f"
R2 = "2a7d9e4b-2222-4f6a-8b1c-3d5e7f9a1b2c"
JSON_RID = "c0ffee00-3333-4a5b-8c7d-0e1f2a3b4c5d"
TIMEOUT_RID = "7e57ab1e-4444-4c3d-8e9f-5a6b7c8d9e0f"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def parts_for(batch: NormalizedBatch, request_id: str) -> list[InvocationPart]:
    return [p for p in batch.invocation_rows if p.request_id == request_id]


def merged(batch: NormalizedBatch, request_id: str) -> dict[str, Any]:
    """What the store's merge would make of one request's parts within this batch."""
    out: dict[str, Any] = {}
    for part in parts_for(batch, request_id):
        for key, value in vars(part).items():
            if value not in (None, 0, "") and key not in out:
                out[key] = value
    return out


def messages(batch: NormalizedBatch, stream: str | None = None) -> list[tuple[str, str]]:
    return [
        (row.request_id, row.message)
        for row in batch.log_rows
        if stream is None or row.stream == stream
    ]


# --- invocation parts ---------------------------------------------------------------------


def test_start_runtime_done_and_invoke_entry_merge_into_one_row_per_request() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    r1 = parts_for(batch, R1)
    # INVOKE entry, platform.start, runtimeDone and the request's log lines: one row.
    assert len(r1) == 1
    row = r1[0]
    assert (row.has_invoke, row.has_start, row.has_runtime_done, row.has_report) == (1, 1, 1, 0)
    assert row.start_time == utc("2026-11-24T07:00:00.210")
    assert row.report_status is None  # no report in this batch: still unknown, not guessed
    assert (row.runtime_done_status, row.runtime_done_duration_ms) == ("success", 19.6)
    assert row.runtime_done_produced_bytes == 31
    # The earliest of its events (the INVOKE's receipt) places the row in time.
    assert row.event_time == min(row.received_at or row.start_time, row.start_time)
    assert row.log_lines == len([m for rid, m in messages(batch, "function") if rid == R1])

    invoke = row
    assert invoke.timeout_ms == 3000
    assert invoke.trace_id is not None and invoke.trace_id.startswith("Root=1-")
    assert invoke.invoked_function_arn == "arn:aws:lambda:us-east-1:000000000000:function:checkout"
    # Every part carries the function identity from the batch's environment.
    assert {(p.function_name, p.function_version, p.environment_id) for p in r1} == {
        ("checkout", "$LATEST", "5e1d0c9b8a7f6e5d4c3b2a1908f7e6d5")
    }
    assert {p.env_memory_size_mb for p in r1} == {128}


@pytest.mark.parametrize("remaining_ms", [2999.6, 2960, 3000, 3004])
def test_timeout_is_the_whole_seconds_left_when_invoke_arrived(remaining_ms: float) -> None:
    # The INVOKE reaches the extension a little after the invocation started (tens of ms on a
    # busy host); Lambda timeouts are whole seconds.
    raw = load_event("text_batch_1")
    raw["invocations"][0]["deadline_ms"] = raw["invocations"][0]["received_at_ms"] + remaining_ms
    assert merged(normalize_batch(raw), R1)["timeout_ms"] == 3000


def test_report_metrics_fill_report_columns_and_status_is_lower_case() -> None:
    raw = load_event("text_batch_2")
    raw["telemetry"][0]["record"]["status"] = "Success"
    report = merged(normalize_batch(raw), R1)
    assert report["report_status"] == "success"
    assert report["report_duration_ms"] == 20.87
    assert report["report_billed_duration_ms"] == 224
    assert report["report_memory_size_mb"] == 128
    assert report["report_max_memory_used_mb"] == 56
    assert report["report_init_duration_ms"] == 202.4
    assert report["has_report"] == 1 and "has_start" not in report


def test_numbers_sent_as_floats_are_accepted_for_integer_metrics() -> None:
    raw = load_event("text_batch_2")
    raw["telemetry"][0]["record"]["metrics"]["memorySizeMB"] = 128.0
    assert merged(normalize_batch(raw), R1)["report_memory_size_mb"] == 128


def test_duplicated_events_merge_to_the_same_row() -> None:
    raw = load_event("text_batch_2")
    once = normalize_batch(copy.deepcopy(raw))
    raw["telemetry"].append(raw["telemetry"][0])
    twice = normalize_batch(raw)
    assert parts_for(twice, R1) == parts_for(once, R1)
    assert len(parts_for(twice, R1)) == 1


def test_a_request_in_several_events_yields_one_row_merged_like_the_store() -> None:
    """min for start/receipt/event time, max for the rest, any for texts, sum for lines."""
    raw = load_event("text_batch_1")
    events = raw["telemetry"]
    start = next(e for e in events if e["type"] == "platform.start")
    later = copy.deepcopy(start)
    later["time"] = "2026-11-24T07:00:05.000Z"  # a late duplicate start: min keeps the first
    done = next(e for e in events if e["type"] == "platform.runtimeDone")
    retried = copy.deepcopy(done)
    retried["time"] = "2026-11-24T07:00:06.000Z"
    retried["record"]["metrics"]["durationMs"] = 1.0  # max keeps the larger duration
    retried["record"]["status"] = "error"  # any: the first status seen stays
    report = {
        "time": "2026-11-24T07:00:00.300Z",
        "type": "platform.report",
        "record": {"requestId": R1, "status": "success", "metrics": {"durationMs": 20.0}},
    }
    raw["telemetry"] = [*events, later, retried, report]
    rows = parts_for(normalize_batch(raw), R1)
    assert len(rows) == 1
    row = rows[0]
    assert row.start_time == utc("2026-11-24T07:00:00.210")
    assert row.runtime_done_time == utc("2026-11-24T07:00:06.000")
    assert row.runtime_done_duration_ms == 19.6
    assert row.runtime_done_status == "success"
    assert (row.report_status, row.report_duration_ms, row.has_report) == ("success", 20.0, 1)
    assert row.event_date == row.event_time.date()


def test_each_request_of_a_batch_gets_its_own_row() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    ids = [p.request_id for p in batch.invocation_rows]
    assert len(ids) == len(set(ids)) == batch.invocation_count


def test_timeout_line_without_runtime_done_marks_the_request_timed_out() -> None:
    batch = normalize_batch(load_event("timeout"))
    parts = merged(batch, TIMEOUT_RID)
    assert parts["timed_out_log"] == 1
    assert "has_runtime_done" not in parts
    assert parts["report_status"] == "timeout"
    assert parts["timeout_ms"] == 1000
    assert (TIMEOUT_RID, "exporting 10000 rows") in messages(batch, "function")
    timeout_lines = [m for rid, m in messages(batch, "function") if "Task timed out" in m]
    assert timeout_lines == [
        "2026-11-24T07:20:01.001Z 7e57ab1e-4444-4c3d-8e9f-5a6b7c8d9e0f "
        "Task timed out after 1.00 seconds"
    ]


def test_init_events_yield_one_cold_start_keyed_by_environment_and_phase() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    assert {(c.environment_id, c.phase) for c in batch.cold_start_rows} == {
        ("5e1d0c9b8a7f6e5d4c3b2a1908f7e6d5", "init")
    }
    report = next(c for c in batch.cold_start_rows if c.has_report)
    assert (report.report_status, report.init_duration_ms) == ("success", 202.4)
    start = next(c for c in batch.cold_start_rows if c.has_init_start)
    assert (start.initialization_type, start.runtime_version) == ("on-demand", "python:3.12.v30")


def test_failed_init_records_status_and_error_type() -> None:
    raw = load_event("text_batch_1")
    raw["telemetry"][3]["record"].update(status="error", errorType="Runtime.ImportModuleError")
    batch = normalize_batch(raw)
    done = next(c for c in batch.cold_start_rows if c.has_runtime_done)
    assert (done.runtime_done_status, done.runtime_done_error_type) == (
        "error",
        "Runtime.ImportModuleError",
    )


def test_unknown_event_types_are_counted_and_ignored() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    assert batch.event_counts["platform.someFutureEvent"] == 1
    assert batch.ignored_events == 1
    assert batch.accepted_events == 14


def test_snapstart_restore_is_its_own_initialisation() -> None:
    raw = load_event("text_batch_1")
    raw["telemetry"][:6] = [
        {
            "time": "2026-11-24T07:00:00.000Z",
            "type": "platform.restoreStart",
            "record": {"runtimeVersion": "python:3.12.v30"},
        },
        {
            "time": "2026-11-24T07:00:00.090Z",
            "type": "platform.restoreRuntimeDone",
            "record": {"status": "success"},
        },
        {
            "time": "2026-11-24T07:00:00.100Z",
            "type": "platform.restoreReport",
            "record": {"status": "success", "metrics": {"durationMs": 99.5}},
        },
    ]
    batch = normalize_batch(raw)
    assert {c.phase for c in batch.cold_start_rows} == {"restore"}
    assert max(c.init_duration_ms or 0 for c in batch.cold_start_rows) == 99.5
    platform = [m for _, m in messages(batch, "platform")]
    assert "RESTORE_REPORT Restore Duration: 99.50 ms\tStatus: success" in platform


def test_unknown_fields_are_ignored() -> None:
    raw = load_event("text_batch_1")
    raw["telemetry"][6]["record"]["tenantId"] = "t-1"
    raw["environment"]["brand_new_field"] = {"x": 1}
    raw["future_top_level"] = []
    assert merged(normalize_batch(raw), R1)["has_start"] == 1


def test_logs_dropped_is_counted_and_shown_as_a_platform_line() -> None:
    batch = normalize_batch(load_event("json_logs"))
    assert batch.dropped_records == 12
    assert any(m.startswith("LOGS_DROPPED\tDropped Records: 12") for _, m in messages(batch))


# --- log lines --------------------------------------------------------------------------------


def test_awslambdaric_text_lines_give_level_request_id_and_bare_message() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    row = next(r for r in batch.log_rows if r.message == "processing order o-1")
    assert (row.level, row.request_id, row.stream) == ("INFO", R1, "function")
    assert row.timestamp == utc("2026-11-24T07:00:00.212")


def test_stack_trace_joined_with_carriage_returns_stays_one_row() -> None:
    batch = normalize_batch(load_event("text_batch_2"))
    errors = [r for r in batch.log_rows if r.level == "ERROR"]
    assert len(errors) == 1
    assert errors[0].request_id == R2
    assert errors[0].message.splitlines() == [
        "payment declined",
        "Traceback (most recent call last):",
        '  File "/var/task/app.py", line 12, in handler',
        '    raise ValueError("declined")',
        "ValueError: declined",
    ]


def test_print_lines_are_attributed_by_the_invocation_window() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    function_lines = messages(batch, "function")
    assert ("", "loading config") in function_lines  # init: no invocation yet
    assert (R1, "charged card for o-1") in function_lines
    assert (R2, "step 1 of o-2") in function_lines


def test_window_left_open_by_one_batch_continues_in_the_next_via_open_request_id() -> None:
    second = normalize_batch(load_event("text_batch_2"))
    function_lines = messages(second, "function")
    assert (R2, "step 2 of o-2") in function_lines
    # After runtimeDone(R2) the window is closed.
    assert ("", "between invocations") in function_lines


def test_without_open_request_id_leading_lines_are_unattributed() -> None:
    raw = load_event("text_batch_2")
    raw["open_request_id"] = None
    assert ("", "step 2 of o-2") in messages(normalize_batch(raw), "function")


def test_runtime_done_of_another_request_leaves_the_open_window_alone() -> None:
    raw = load_event("text_batch_2")
    raw["telemetry"].insert(
        1,
        {
            "time": "2026-11-24T07:00:01.000Z",
            "type": "platform.runtimeDone",
            "record": {"requestId": R1, "status": "success"},
        },
    )
    assert (R2, "step 2 of o-2") in messages(normalize_batch(raw), "function")


def test_json_logs_carry_request_id_level_message_and_extra_keys() -> None:
    batch = normalize_batch(load_event("json_logs"))
    rows = [r for r in batch.log_rows if r.stream == "function"]
    first = rows[0]
    assert (first.request_id, first.level, first.message) == (JSON_RID, "INFO", "resizing image")
    assert first.attributes == {"image_key": "cats/1.png", "width": "640"}
    # A structured message is kept as compact JSON.
    assert rows[1].message == '{"event":"slow_download","ms":70}'
    assert rows[1].level == "WARN"
    # No requestId and no open window: unattributed.
    assert (rows[2].request_id, rows[2].message) == ("", "background cleanup")


def test_json_log_without_request_id_inside_a_window_is_attributed_to_it() -> None:
    raw = load_event("json_logs")
    del raw["telemetry"][1]["record"]["requestId"]
    batch = normalize_batch(raw)
    assert next(r for r in batch.log_rows if r.message == "resizing image").request_id == JSON_RID


def test_telemetry_subscription_renders_like_cloudwatch() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    assert (
        "",
        "TELEMETRY\tName: lambdascope\tState: Subscribed\tTypes: [Platform, Function, Extension]",
    ) in messages(batch, "platform")


def test_powertools_json_printed_in_text_format_is_parsed_like_a_json_log() -> None:
    raw = load_event("text_batch_1")
    line = {
        "level": "WARNING",
        "location": "handler:12",
        "message": "stock low",
        "timestamp": "2026-11-24 07:00:00,215+0000",
        "service": "checkout",
        "cold_start": True,
        "function_request_id": R1,
        "xray_trace_id": "1-6743a2f0-0123456789abcdef01234567",
    }
    raw["telemetry"][8]["record"] = json.dumps(line) + "\n"
    row = next(r for r in normalize_batch(raw).log_rows if r.message == "stock low")
    assert (row.request_id, row.level, row.stream) == (R1, "WARNING", "function")
    assert row.attributes["service"] == "checkout"
    assert row.attributes["cold_start"] == "true"
    assert row.attributes["function_request_id"] == R1


def test_text_lines_that_merely_look_like_json_stay_text() -> None:
    raw = load_event("text_batch_1")
    raw["telemetry"][8]["record"] = '{"not": "a log"}\n'
    assert (R1, '{"not": "a log"}') in messages(normalize_batch(raw), "function")


def test_extension_lines_are_kept_with_their_stream() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    assert messages(batch, "extension") == [("", "lambdascope: flushed 9 events")]


def test_platform_lines_render_like_cloudwatch() -> None:
    batch = normalize_batch(load_event("text_batch_2"))
    platform = messages(batch, "platform")
    assert platform[0] == (
        R1,
        f"REPORT RequestId: {R1}\tDuration: 20.87 ms\tBilled Duration: 224 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 202.40 ms\t",
    )
    assert platform[-1][1].endswith("Status: error\tError Type: ValueError\t")
    first = normalize_batch(load_event("text_batch_1"))
    assert (R1, f"START RequestId: {R1} Version: $LATEST") in messages(first, "platform")


def test_exactly_one_trailing_newline_is_stripped() -> None:
    raw = load_event("text_batch_1")
    raw["telemetry"][8]["record"] = "two newlines\n\n"
    batch = normalize_batch(raw)
    assert (R1, "two newlines\n") in messages(batch, "function")


def test_log_rows_keep_delivery_order_within_the_batch() -> None:
    batch = normalize_batch(load_event("text_batch_1"))
    assert [r.seq for r in batch.log_rows] == list(range(len(batch.log_rows)))
    assert {r.batch_id for r in batch.log_rows} == {"0b6f3c7e9a4d4e1f8c2a5b7d9e0f1a21"}


@pytest.mark.parametrize(
    ("line", "level", "request_id", "message"),
    [
        ("[WARNING]\t2026-11-24T07:00:00.1Z\tabc-1\tlow disk\n", "WARNING", "abc-1", "low disk"),
        ("[INFO]\t2026-11-24T07:00:00.1Z\t\tduring init\n", "INFO", None, "during init"),
        ("hello world\n", "", None, "hello world"),
        (
            "RequestId: 1234abcd-1 Error: Runtime exited with error: signal: killed",
            "",
            "1234abcd-1",
            "RequestId: 1234abcd-1 Error: Runtime exited with error: signal: killed",
        ),
        ("[not a level] x\n", "", None, "[not a level] x"),
    ],
)
def test_parse_text_line(line: str, level: str, request_id: str | None, message: str) -> None:
    parsed = parse_text_line(line)
    assert (parsed.level, parsed.request_id, parsed.message) == (level, request_id, message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T07:00:00.123Z", utc("2026-11-24T07:00:00.123")),
        ("2026-11-24T07:00:00.123456789Z", utc("2026-11-24T07:00:00.123456")),
        ("2026-11-24T09:00:00.5+02:00", utc("2026-11-24T07:00:00.500")),
        ("2026-11-24T07:00:00", utc("2026-11-24T07:00:00")),
    ],
)
def test_parse_time(text: str, expected: dt.datetime) -> None:
    assert parse_time(text) == expected


# --- malformed batches --------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> Any:
        target: Any = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return raw

    return mutate


def _delete(path: list[Any]) -> Mutation:
    def mutate(raw: dict[str, Any]) -> Any:
        target: Any = raw
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return raw

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda raw: [raw], "batch"),
        (_delete(["batch_id"]), "batch_id"),
        (_set(["batch_id"], 42), "batch_id"),
        (_set(["batch_id"], "  "), "batch_id"),
        (_set(["batch_id"], "x" * 300), "batch_id"),
        (_set(["schema_version"], "1"), "schema_version"),
        (_set(["schema_version"], 2), "schema_version"),
        (_delete(["environment"]), "environment"),
        (_delete(["environment", "function_name"]), "environment.function_name"),
        (_set(["environment", "memory_size_mb"], "128"), "environment.memory_size_mb"),
        (_set(["open_request_id"], 7), "open_request_id"),
        (_set(["telemetry"], {"type": "function"}), "telemetry"),
        (_delete(["telemetry"]), "telemetry"),
        (_set(["invocations"], "none"), "invocations"),
        (_set(["sent_at_ms"], 1e20), "batch.sent_at_ms"),
        (_set(["environment", "memory_size_mb"], 2**40), "environment.memory_size_mb"),
    ],
)
def test_malformed_batches_raise_batch_error_naming_the_field(mutate: Mutation, field: str) -> None:
    raw = mutate(load_event("text_batch_1"))
    with pytest.raises(BatchError) as caught:
        normalize_batch(raw)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_set(["telemetry", 2], "loading config"), "telemetry[2]"),
        (_delete(["telemetry", 0, "type"]), "telemetry[0].type"),
        (_set(["telemetry", 0, "type"], 3), "telemetry[0].type"),
        (_set(["telemetry", 1, "time"], "yesterday"), "telemetry[1].time"),
        (_delete(["telemetry", 1, "time"]), "telemetry[1].time"),
        (_delete(["telemetry", 6, "record", "requestId"]), "telemetry[6].record.requestId"),
        (_set(["telemetry", 6, "record"], None), "telemetry[6].record"),
        (
            _set(["telemetry", 9, "record", "metrics", "durationMs"], "19.6"),
            "telemetry[9].record.metrics.durationMs",
        ),
        (
            _set(["telemetry", 9, "record", "metrics", "durationMs"], True),
            "telemetry[9].record.metrics.durationMs",
        ),
        (_set(["telemetry", 9, "record", "status"], 0), "telemetry[9].record.status"),
        (_set(["telemetry", 8, "record"], 12), "telemetry[8].record"),
        (_delete(["invocations", 0, "request_id"]), "invocations[0].request_id"),
        (_set(["invocations", 1, "deadline_ms"], "soon"), "invocations[1].deadline_ms"),
        # Values the store's columns cannot hold would fail the insert on every retry.
        (_set(["telemetry", 7, "time"], "2200-01-01T00:00:00.000Z"), "telemetry[7].time"),
        (_set(["telemetry", 7, "time"], "1969-12-31T23:59:59.999Z"), "telemetry[7].time"),
        (
            _set(["telemetry", 9, "record", "metrics", "durationMs"], 10**400),
            "telemetry[9].record.metrics.durationMs",
        ),
        (
            _set(["telemetry", 9, "record", "metrics", "producedBytes"], -1),
            "telemetry[9].record.metrics.producedBytes",
        ),
        (_set(["invocations", 1, "deadline_ms"], 1e30), "invocations[1].deadline_ms"),
        (_set(["invocations", 0, "received_at_ms"], -5), "invocations[0].received_at_ms"),
    ],
)
def test_a_malformed_event_is_rejected_alone_and_the_rest_is_kept(
    mutate: Mutation, field: str
) -> None:
    intact = normalize_batch(load_event("text_batch_1"))
    damaged = normalize_batch(mutate(load_event("text_batch_1")))
    assert [f for f, _ in damaged.rejected] == [field]
    assert damaged.rejected[0][1]  # says what is wrong
    assert damaged.accepted_events >= intact.accepted_events - 1
    assert len(damaged.log_rows) >= len(intact.log_rows) - 1
    assert damaged.invocation_rows  # the other invocations survive


def test_newer_schema_version_says_to_upgrade_the_collector() -> None:
    raw = load_event("text_batch_1")
    raw["schema_version"] = 2
    with pytest.raises(BatchError, match="upgrade the collector"):
        normalize_batch(raw)


def test_missing_invocations_and_schema_version_are_tolerated() -> None:
    raw = load_event("timeout")
    del raw["invocations"]
    del raw["schema_version"]
    batch = normalize_batch(raw)
    assert not [p for p in batch.invocation_rows if p.has_invoke]
    assert batch.accepted_events == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T07:00:00.210Z", "2026-11-24T07:00:00.210"),
        ("2026-11-24T07:00:00.210999Z", "2026-11-24T07:00:00.210"),  # floored to the ms
        ("2026-11-24T08:00:00.210+01:00", "2026-11-24T07:00:00.210"),
        ("2026-11-24T07:00:00Z", "2026-11-24T07:00:00.000"),
        ("2026-11-24T07:00:00.210123456Z", "2026-11-24T07:00:00.210"),
    ],
)
def test_event_times_in_any_iso_form_land_on_the_same_millisecond(text: str, expected: str) -> None:
    raw = load_event("text_batch_1")
    start = next(e for e in raw["telemetry"] if e["type"] == "platform.start")
    start["time"] = text
    assert parts_for(normalize_batch(raw), R1)[0].start_time == utc(expected)


@pytest.mark.parametrize("text", ["2026-13-24T07:00:00.210Z", "2026-11-24T07:00:00.2a0Z", ""])
def test_an_impossible_event_time_rejects_that_event_alone(text: str) -> None:
    raw = load_event("text_batch_1")
    index = next(i for i, e in enumerate(raw["telemetry"]) if e["type"] == "platform.start")
    raw["telemetry"][index]["time"] = text
    batch = normalize_batch(raw)
    assert [f for f, _ in batch.rejected] == [f"telemetry[{index}].time"]
    assert not [p for p in parts_for(batch, R1) if p.has_start]
