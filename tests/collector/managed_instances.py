"""A synthetic batch from one Lambda Managed Instances execution environment: 8 requests in
flight at once, their platform events and log lines interleaved as the Telemetry API delivers
them (schema 2025-01-29: no ``platform.runtimeDone``, reports with ``durationMs`` only, JSON
log format), mixed success, error and timeout. Built in code so each test can see the story.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

ENVIRONMENT_ID = "3c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f"
T0 = dt.datetime(2026, 11, 24, 7, 0, 0, tzinfo=dt.UTC)
#: The 8 requests, their start offsets and durations (ms) and outcomes.
REQUESTS: tuple[tuple[str, int, float, str], ...] = tuple(
    (f"0000000{i}-aaaa-4bbb-8ccc-dddddddddddd", 100 + 10 * i, duration, status)
    for i, (duration, status) in enumerate(
        [
            (400.0, "success"),
            (350.0, "error"),
            (3000.0, "timeout"),
            (420.0, "success"),
            (380.0, "success"),
            (500.0, "error"),
            (3000.0, "timeout"),
            (450.0, "success"),
        ]
    )
)
ERROR_TYPES = {"error": "Runtime.HandlerError", "timeout": "Sandbox.Timedout"}


def _time(offset_ms: float) -> str:
    moment = T0 + dt.timedelta(milliseconds=offset_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def environment(initialization_type: str = "lambda-managed-instances") -> dict[str, Any]:
    return {
        "environment_id": ENVIRONMENT_ID,
        "function_name": "orders",
        "function_version": "3",
        "region": "us-east-1",
        "memory_size_mb": 2048,
        "initialization_type": initialization_type,
        "architecture": "arm64",
    }


def events() -> list[dict[str, Any]]:
    """The environment's init and its 8 overlapping requests, in delivery order."""
    timeline: list[tuple[float, int, dict[str, Any]]] = [
        (
            0,
            0,
            {
                "type": "platform.initStart",
                "record": {
                    "initializationType": "lambda-managed-instances",
                    "phase": "init",
                    "runtimeVersion": "python:3.13.v20",
                },
            },
        ),
        (
            60,
            0,
            {
                "type": "platform.initRuntimeDone",
                "record": {
                    "initializationType": "lambda-managed-instances",
                    "phase": "init",
                    "status": "success",
                },
            },
        ),
        (
            70,
            0,
            {
                "type": "platform.initReport",
                "record": {
                    "initializationType": "lambda-managed-instances",
                    "phase": "init",
                    "status": "success",
                    "metrics": {"durationMs": 70.0},
                },
            },
        ),
    ]
    for request_id, start, duration, status in REQUESTS:
        timeline.append(
            (
                start,
                1,
                {"type": "platform.start", "record": {"requestId": request_id, "version": "3"}},
            )
        )
        # Lambda's JSON log format: every line of the logging module names its request.
        timeline.append(
            (
                start + 5,
                2,
                {
                    "type": "function",
                    "record": {
                        "timestamp": _time(start + 5),
                        "level": "INFO",
                        "requestId": request_id,
                        "message": f"handling {request_id[:8]}",
                        "logger": "root",
                    },
                },
            )
        )
        # awslambdaric's Text prefix names the request too.
        timeline.append(
            (
                start + 7,
                2,
                {
                    "type": "function",
                    "record": f"[INFO]\t{_time(start + 7)}\t{request_id}\tvalidated\n",
                },
            )
        )
        # print() output names nothing: several requests are open, so no one's.
        timeline.append((start + 9, 2, {"type": "function", "record": "print without id\n"}))
        report: dict[str, Any] = {
            "requestId": request_id,
            "status": status,
            "metrics": {"durationMs": duration},
        }
        if status in ERROR_TYPES:
            report["errorType"] = ERROR_TYPES[status]
            timeline.append(
                (
                    start + duration - 1,
                    2,
                    {
                        "type": "function",
                        "record": {
                            "timestamp": _time(start + duration - 1),
                            "level": "ERROR",
                            "requestId": request_id,
                            "message": f"{status} in {request_id[:8]}",
                        },
                    },
                )
            )
        timeline.append((start + duration, 3, {"type": "platform.report", "record": report}))
    # At 2.5 s only the two timeouts run: a line naming no request is neither's. At 3.14 s
    # the first has ended and one request runs alone: such a line is its.
    timeline.append((2500, 2, {"type": "function", "record": "two still open\n"}))
    timeline.append((3140, 2, {"type": "function", "record": "one still open\n"}))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return [dict(event, time=_time(offset)) for offset, _, event in timeline]


def batch(
    telemetry: list[dict[str, Any]] | None = None,
    open_request_ids: list[str] | None = None,
    initialization_type: str = "lambda-managed-instances",
    batch_id: str = "b" * 32,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema_version": 1,
        "batch_id": batch_id,
        "sent_at_ms": int((T0 + dt.timedelta(seconds=5)).timestamp() * 1000),
        "extension": {"name": "lambdascope", "version": "0.1.0"},
        "environment": environment(initialization_type),
        "open_request_id": None,
        "telemetry": events() if telemetry is None else telemetry,
        "invocations": [],
    }
    if open_request_ids is not None:
        body["open_request_ids"] = open_request_ids
    return body
