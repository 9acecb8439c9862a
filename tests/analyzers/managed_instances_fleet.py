"""A Lambda Managed Instances scenario for the analyzers: one execution environment that runs
requests 8 at a time (overlapping start and end times), mixed success, error and timeout, as
the extension delivers it (no runtimeDone, JSON log lines naming their request).

``max_memory_used_mb`` is the environment's: Lambda's Managed Instances report may carry no
memory figure at all; when a figure is there it is the environment's, whichever request it
rides on, which is what this scenario writes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from tests.analyzers.fleetdata import NOW, environment_id

FUNCTION = "orders"
ENVIRONMENT = "mi-1"
STATUSES = ("success", "error", "timeout", "success", "success", "error", "timeout", "success")
ERROR_TYPES = {"error": "Runtime.HandlerError", "timeout": "Sandbox.Timedout"}


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def request_id(wave: int, slot: int) -> str:
    return f"mi-{wave:03d}-{slot}"


def managed_instances_batches(
    waves: int = 1, start: datetime | None = None, leak_mb_per_wave: int = 0
) -> list[dict[str, Any]]:
    """``waves`` waves of 8 overlapping requests, 10 s apart, in one environment; each wave's
    memory is ``leak_mb_per_wave`` above the last (0: flat). One batch per wave."""
    start = start or NOW - timedelta(minutes=20)
    environment = {
        "environment_id": environment_id(FUNCTION, ENVIRONMENT),
        "function_name": FUNCTION,
        "function_version": "1",
        "region": "us-east-1",
        "memory_size_mb": 2048,
        "initialization_type": "lambda-managed-instances",
        "architecture": "arm64",
    }
    out = []
    for wave in range(waves):
        t0 = start + timedelta(seconds=10 * wave)
        events: list[tuple[datetime, dict[str, Any]]] = []
        if wave == 0:
            init = {"initializationType": "lambda-managed-instances", "phase": "init"}
            events.append(
                (t0 - timedelta(seconds=1), {"type": "platform.initStart", "record": init})
            )
            events.append(
                (
                    t0 - timedelta(milliseconds=500),
                    {
                        "type": "platform.initReport",
                        "record": {**init, "status": "success", "metrics": {"durationMs": 500.0}},
                    },
                )
            )
        memory_mb = 300 + leak_mb_per_wave * wave
        for slot, status in enumerate(STATUSES):
            rid = request_id(wave, slot)
            begin = t0 + timedelta(milliseconds=20 * slot)
            duration = 3000.0 if status == "timeout" else 400.0 + 10 * slot
            events.append((begin, {"type": "platform.start", "record": {"requestId": rid}}))
            events.append(
                (
                    begin + timedelta(milliseconds=5),
                    {
                        "type": "function",
                        "record": {"level": "INFO", "requestId": rid, "message": "working"},
                    },
                )
            )
            report: dict[str, Any] = {
                "requestId": rid,
                "status": status,
                "metrics": {"durationMs": duration, "maxMemoryUsedMB": memory_mb + slot},
            }
            if status in ERROR_TYPES:
                report["errorType"] = ERROR_TYPES[status]
            events.append(
                (
                    begin + timedelta(milliseconds=duration),
                    {"type": "platform.report", "record": report},
                )
            )
        events.sort(key=lambda e: e[0])
        telemetry = [dict(event, time=_iso(when)) for when, event in events]
        sent = t0 + timedelta(seconds=4)
        out.append(
            {
                "schema_version": 1,
                "batch_id": hashlib.md5(f"mi/{wave}".encode()).hexdigest(),
                "sent_at_ms": int(sent.timestamp() * 1000),
                "extension": {"name": "lambdascope", "version": "0.1.0"},
                "environment": environment,
                "open_request_id": None,
                "open_request_ids": [],
                "telemetry": telemetry,
                "invocations": [],
            }
        )
    return out
