from __future__ import annotations

import math
from datetime import UTC, datetime

from lambdascope.analyzers.fleet import Invocation, LogLine, fleet_row, with_platform_lines

T0 = datetime(2026, 11, 24, 7, 0, 0, tzinfo=UTC)


def invocation(**changes: object) -> Invocation:
    fields: dict[str, object] = {
        "request_id": "rid-1",
        "function_name": "checkout",
        "function_version": "$LATEST",
        "environment_id": "env",
        "start_time": T0,
        "duration_ms": 1500.0,
        "billed_duration_ms": 1500.0,
        "status": "timeout",
        "error_type": "",
        "init_duration_ms": 210.5,
        "cold_start": True,
        "max_memory_used_mb": 90,
        "memory_size_mb": 128,
        "timeout_ms": 1500.0,
    }
    fields.update(changes)
    return Invocation(**fields)  # type: ignore[arg-type]


def test_platform_lines_are_rebuilt_when_the_store_has_none():
    line = LogLine(T0.replace(microsecond=5000), "function", "INFO", "working")

    lines = with_platform_lines(invocation(), [line])

    assert [entry.message for entry in lines] == [
        "START RequestId: rid-1 Version: $LATEST",
        "working",
        "END RequestId: rid-1",
        "REPORT RequestId: rid-1\tDuration: 1500.00 ms\tBilled Duration: 1500 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 90 MB\tInit Duration: 210.50 ms\tStatus: timeout",
    ]
    assert lines[-1].timestamp == datetime(2026, 11, 24, 7, 0, 1, 500000, tzinfo=UTC)


def test_stored_platform_lines_are_not_doubled():
    stored = [
        LogLine(T0, "platform", "", "START RequestId: rid-1 Version: $LATEST"),
        LogLine(T0, "platform", "", "END RequestId: rid-1"),
        LogLine(T0, "platform", "", "REPORT RequestId: rid-1\tDuration: 1500.00 ms\t"),
    ]

    assert with_platform_lines(invocation(), stored) == stored


def test_an_invocation_still_running_gets_only_its_start_line():
    lines = with_platform_lines(invocation(status="unknown", duration_ms=None), [])

    assert [entry.message for entry in lines] == ["START RequestId: rid-1 Version: $LATEST"]


def test_fleet_row_without_durations_or_memory_shows_not_measured():
    row = fleet_row(
        {
            "function_name": "checkout",
            "invocations": 2,
            "errors": 0,
            "timeouts": 0,
            "cold_starts": 0,
            "duration_quantiles_ms": [math.nan, math.nan],
            "max_memory_pct": None,
            "last_seen": T0,
        }
    )

    assert (row.p50_duration_ms, row.p99_duration_ms, row.max_memory_pct) == (None, None, None)
