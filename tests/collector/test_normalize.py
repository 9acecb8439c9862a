"""Normalisation of extension batches: pure functions, no store, no sockets."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from lambdascope.collector.batch_rows import InvocationPart, NormalizedBatch
from lambdascope.collector.fields import BatchError, parse_time
from lambdascope.collector.log_lines import parse_text_line
from lambdascope.collector.normalize import normalize_batch
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


def test_the_report_that_carries_the_init_tells_when_the_first_request_started() -> None:
    raw = load_event("text_batch_1")
    start = next(e for e in raw["telemetry"] if e["type"] == "platform.start")
    metrics = {
        "durationMs": 20.0,
        "billedDurationMs": 223,
        "memorySizeMB": 128,
        "maxMemoryUsedMB": 40,
        "initDurationMs": 202.4,
    }
    raw["telemetry"].append(
        {
            "time": "2026-11-24T07:00:05.000Z",
            "type": "platform.report",
            "record": {
                "requestId": start["record"]["requestId"],
                "status": "success",
                "metrics": metrics,
            },
        }
    )
    batch = normalize_batch(raw)
    (first,) = [c for c in batch.cold_start_rows if c.first_request_time is not None]
    assert first.phase == "init"
    assert first.first_request_time == dt.datetime(2026, 11, 24, 7, 0, 4, 980000, tzinfo=dt.UTC)


@pytest.mark.parametrize("duration_ms", [1e300, 1e15, -5.0])
def test_a_report_with_a_duration_no_invocation_has_keeps_the_batch(duration_ms: float) -> None:
    raw = load_event("text_batch_1")
    start = next(e for e in raw["telemetry"] if e["type"] == "platform.start")
    metrics = {"durationMs": duration_ms, "initDurationMs": 202.4, "maxMemoryUsedMB": 40}
    raw["telemetry"].append(
        {
            "time": "2026-11-24T07:00:05.000Z",
            "type": "platform.report",
            "record": {"requestId": start["record"]["requestId"], "metrics": metrics},
        }
    )
    batch = normalize_batch(raw)  # no error: the rest of the batch is kept
    assert [c for c in batch.cold_start_rows if c.first_request_time is not None] == []
    assert batch.invocation_count > 0


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
    # At the level loggers' WARN is stored as, so one filter finds both.
    dropped = [r for r in batch.log_rows if r.message.startswith("LOGS_DROPPED")]
    assert [r.level for r in dropped] == ["WARNING"]


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
    assert rows[1].level == "WARNING"  # sent as WARN: stored under Python's name
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


# --- extension lines, unhandled exceptions and JSON loggers' levels -----------------------

R3 = "5eed1e55-5555-4b6c-9d0e-1f2a3b4c5d6e"


def request_log(batch: NormalizedBatch, request_id: str) -> list[str]:
    """What a user reads as the request's log: its non-platform lines."""
    return [
        r.message for r in batch.log_rows if r.request_id == request_id and r.stream != "platform"
    ]


def test_extension_warning_during_an_invocation_is_not_in_that_requests_log() -> None:
    batch = normalize_batch(load_event("unhandled_error"))
    (row,) = [r for r in batch.log_rows if r.message.startswith("[lambdascope] ")]
    assert (row.stream, row.request_id, row.level) == ("extension", "", "WARNING")
    # The whole line is kept: the extension stream does not say which extension wrote it.
    assert row.message == (
        "[lambdascope] WARNING cannot send to collector "
        "https://collector.example/v1/extension/batches: timed out; "
        "keeping 1 unsent batch(es) for retry"
    )
    assert not [m for m in request_log(batch, R3) if "lambdascope" in m]
    # The request's log-line count is the function's lines only.
    assert merged(batch, R3)["log_lines"] == len(request_log(batch, R3)) == 3


@pytest.mark.parametrize(
    "record",
    [
        "extension says hi\n",
        "[ERROR]\t2026-11-24T07:00:00.221Z\t" + R1 + "\tfrom an extension\n",
        f"RequestId: {R1} Error: something\n",
        {"timestamp": "2026-11-24T07:00:00.221Z", "level": "INFO", "requestId": R1, "message": "x"},
        json.dumps({"level": "info", "msg": "listening", "requestId": R1}) + "\n",
    ],
)
def test_no_extension_line_is_attributed_to_a_request(record: Any) -> None:
    """Whatever another extension writes, and even when it names a request id."""
    raw = load_event("text_batch_1")
    # Inside R1's window: after platform.start(R1), before its runtimeDone.
    raw["telemetry"].insert(
        8, {"time": "2026-11-24T07:00:00.221Z", "type": "extension", "record": record}
    )
    batch = normalize_batch(raw)
    extension = [r for r in batch.log_rows if r.stream == "extension"]
    assert len(extension) == 2
    assert {r.request_id for r in extension} == {""}
    assert not merged(batch, R1).get("timed_out_log")
    assert merged(batch, R1)["log_lines"] == 2  # the function's two lines only


def test_json_extension_line_keeps_its_level_and_the_request_id_it_names_as_an_attribute() -> None:
    raw = load_event("text_batch_1")
    raw["telemetry"].insert(
        8,
        {
            "time": "2026-11-24T07:00:00.221Z",
            "type": "extension",
            "record": json.dumps({"level": "warn", "msg": "slow export", "requestId": R1}) + "\n",
        },
    )
    row = next(r for r in normalize_batch(raw).log_rows if r.message == "slow export")
    assert (row.stream, row.request_id, row.level) == ("extension", "", "WARNING")
    assert row.attributes == {"requestId": R1}


def test_another_extensions_json_log_gets_its_level_unattributed() -> None:
    batch = normalize_batch(load_event("unhandled_error"))
    row = next(r for r in batch.log_rows if r.message == "Launching OpenTelemetry Lambda extension")
    assert (row.stream, row.request_id, row.level) == ("extension", "", "INFO")
    assert row.attributes["version"] == "v0.115.0"


def test_lambdascope_tracing_timeout_capture_line_stays_in_the_requests_function_log() -> None:
    """lambdascope_tracing prints it from inside the function: it is the request's log."""
    raw = load_event("text_batch_1")
    line = (
        f"[lambdascope] invocation {R1} is about to time out; "
        "stuck at /var/task/app.py:6 wait_on_downstream"
    )
    raw["telemetry"][8]["record"] = line + "\n"
    row = next(r for r in normalize_batch(raw).log_rows if r.message == line)
    assert (row.stream, row.request_id) == ("function", R1)


def test_unhandled_exception_line_gets_error_level_request_and_traceback() -> None:
    batch = normalize_batch(load_event("unhandled_error"))
    (row,) = [r for r in batch.log_rows if r.level == "ERROR" and r.stream == "function"]
    assert row.request_id == R3
    assert row.message.splitlines() == [
        "ValueError: boom",
        "Traceback (most recent call last):",
        '\u00a0\u00a0File "/var/task/app.py", line 24, in handler',  # awslambdaric's NBSP indent
        "\u00a0\u00a0\u00a0\u00a0reserve(order)",
        '\u00a0\u00a0File "/var/task/app.py", line 9, in reserve',
        '\u00a0\u00a0\u00a0\u00a0raise ValueError("boom")',
    ]
    assert merged(batch, R3)["report_error_type"] == "ValueError"


def test_unhandled_exception_line_written_to_stdout_joins_with_carriage_returns() -> None:
    # Without _LAMBDA_TELEMETRY_LOG_FD awslambdaric prints the same line joined with \r.
    raw = load_event("text_batch_1")
    raw["telemetry"][8]["record"] = (
        "[ERROR] ValueError: boom\rTraceback (most recent call last):\r"
        '\u00a0\u00a0File "/var/task/app.py", line 3, in handler\r'
        '\u00a0\u00a0\u00a0\u00a0raise ValueError("boom")\n'
    )
    row = next(r for r in normalize_batch(raw).log_rows if r.level == "ERROR")
    assert (row.request_id, row.stream) == (R1, "function")
    assert row.message.splitlines()[:2] == [
        "ValueError: boom",
        "Traceback (most recent call last):",
    ]


def test_init_error_line_outside_an_invocation_is_unattributed() -> None:
    raw = load_event("text_batch_1")
    raw["telemetry"][2]["record"] = (
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': "
        "No module named 'requests'\nTraceback (most recent call last):"
    )
    row = next(r for r in normalize_batch(raw).log_rows if r.level == "ERROR")
    assert row.request_id == ""
    assert row.message.startswith("Runtime.ImportModuleError: Unable to import module 'app'")


@pytest.mark.parametrize(
    ("line", "level", "message"),
    [
        ("[ERROR] ValueError: boom\n", "ERROR", "ValueError: boom"),
        ("[WARNING] disk almost full\n", "WARNING", "disk almost full"),
        ("[WARN] disk almost full\n", "WARNING", "disk almost full"),
        ("[INFO] ready\n", "INFO", "ready"),
        ("[DEBUG] x=1\n", "DEBUG", "x=1"),
        ("[CRITICAL] out of file handles\n", "CRITICAL", "out of file handles"),
        ("[FATAL] gave up\n", "CRITICAL", "gave up"),
        (
            "[ERROR] Exception\rTraceback (most recent call last):",
            "ERROR",
            "Exception\nTraceback (most recent call last):",
        ),
        # No type and no message: the line break after the level is not part of the message.
        (
            "[ERROR]\rTraceback (most recent call last):",
            "ERROR",
            "Traceback (most recent call last):",
        ),
        ("[ERROR]", "ERROR", ""),
        ("[WARNING]\t2026-11-24T07:00:00.1Z\tabc-1\tlow disk\n", "WARNING", "low disk"),
        ("[Error] prose, not a level\n", "", "[Error] prose, not a level"),
        ("[ERROR]boom\n", "", "[ERROR]boom"),
        ("[lambdascope] WARNING x\n", "", "[lambdascope] WARNING x"),
    ],
)
def test_level_prefixed_lines(line: str, level: str, message: str) -> None:
    parsed = parse_text_line(line)
    assert (parsed.level, parsed.message) == (level, message)
    assert parsed.request_id == ("abc-1" if "abc-1" in line else None)


def test_timeout_line_handling_is_unchanged_by_level_prefixes() -> None:
    line = f"2026-11-24T07:20:01.001Z {TIMEOUT_RID} Task timed out after 1.00 seconds\n"
    assert parse_text_line(line) == ("", TIMEOUT_RID, line[:-1])


def structured_row(record: Any) -> Any:
    """The log row of one `function` record inside R1's window of text_batch_1."""
    raw = load_event("text_batch_1")
    raw["telemetry"][8]["record"] = record
    rows = [r for r in normalize_batch(raw).log_rows if r.stream == "function"]
    return rows[2]


@pytest.mark.parametrize(
    ("record", "level", "message"),
    [
        # Lambda's JSON log format (a record object), awslambdaric's logging call.
        (
            {
                "timestamp": "2026-11-24T07:00:00Z",
                "level": "WARNING",
                "message": "retrying",
                "logger": "root",
                "requestId": R1,
            },
            "WARNING",
            "retrying",
        ),
        # Powertools for AWS Lambda (TypeScript) in Text format: WARN.
        (
            json.dumps(
                {
                    "level": "WARN",
                    "message": "retrying",
                    "sampling_rate": 0,
                    "service": "checkout",
                    "timestamp": "2026-11-24T07:00:00.215Z",
                    "function_request_id": R1,
                }
            )
            + "\n",
            "WARNING",
            "retrying",
        ),
        # python-json-logger's default keys.
        (
            json.dumps({"levelname": "ERROR", "message": "no stock", "name": "app"}) + "\n",
            "ERROR",
            "no stock",
        ),
        # Google Cloud structured logging.
        (json.dumps({"severity": "warning", "message": "retrying"}) + "\n", "WARNING", "retrying"),
        # ECS (Elastic) loggers: a flat dotted key.
        (
            json.dumps(
                {
                    "@timestamp": "2026-11-24T07:00:00.215Z",
                    "log.level": "info",
                    "message": "ok",
                    "ecs.version": "1.6.0",
                }
            )
            + "\n",
            "INFO",
            "ok",
        ),
        # structlog's JSONRenderer.
        (
            json.dumps({"event": "charged", "level": "info", "timestamp": "2026-11-24T07:00:00Z"})
            + "\n",
            "INFO",
            "charged",
        ),
        # pino (Node.js): numeric levels and msg.
        (
            json.dumps({"level": 50, "time": 1795503600215, "pid": 8, "msg": "failed"}) + "\n",
            "ERROR",
            "failed",
        ),
        (json.dumps({"level": 30, "msg": "fine"}) + "\n", "INFO", "fine"),
        (json.dumps({"level": "fatal", "msg": "dying"}) + "\n", "CRITICAL", "dying"),
        # A number no logger we know uses is kept as it is, not guessed.
        (json.dumps({"level": 35, "msg": "odd"}) + "\n", "35", "odd"),
        (json.dumps({"msg": "no level"}) + "\n", "", "no level"),
    ],
)
def test_json_loggers_levels_are_parsed_and_normalised(
    record: Any, level: str, message: str
) -> None:
    row = structured_row(record)
    assert (row.level, row.message, row.request_id) == (level, message, R1)


def test_aws_request_id_key_names_the_request() -> None:
    row = structured_row(
        json.dumps({"levelname": "INFO", "message": "m", "aws_request_id": R2}) + "\n"
    )
    assert row.request_id == R2


def test_json_format_unhandled_exception_record_keeps_type_message_and_traceback() -> None:
    """awslambdaric in JSON log format: no "message", the error's own keys instead."""
    record = {
        "timestamp": "2026-11-24T07:00:00Z",
        "level": "ERROR",
        "errorMessage": "boom",
        "errorType": "ValueError",
        "requestId": R1,
        "stackTrace": [
            '  File "/var/task/app.py", line 3, in handler\n    raise ValueError("boom")\n'
        ],
    }
    row = structured_row(record)
    assert (row.level, row.request_id) == ("ERROR", R1)
    assert row.message.splitlines() == [
        "ValueError: boom",
        "Traceback (most recent call last):",
        '  File "/var/task/app.py", line 3, in handler',
        '    raise ValueError("boom")',
    ]
    assert row.attributes == {"errorType": "ValueError"}
    # The same record printed in Text format is recognised too.
    assert structured_row(json.dumps(record) + "\n").message == row.message


def test_printed_payloads_with_error_or_event_keys_but_no_level_stay_text() -> None:
    for payload in ({"errorMessage": "boom", "errorType": "ValueError"}, {"event": "signup"}):
        line = json.dumps(payload)
        assert structured_row(line + "\n").message == line


def test_powertools_line_of_the_sample_batch_gets_level_and_request() -> None:
    batch = normalize_batch(load_event("unhandled_error"))
    row = next(r for r in batch.log_rows if r.message == "inventory low")
    assert (row.stream, row.level, row.request_id) == ("function", "WARNING", R3)
    assert (row.attributes["service"], row.attributes["location"]) == ("orders", "handler:21")
