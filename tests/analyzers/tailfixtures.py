"""Extension batches of bare log lines with chosen times, for the live tail's tests.

Many lines share a millisecond here on purpose: the tail must neither skip nor repeat them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW

#: The tail's tests write lines from here on.
T0 = NOW - timedelta(minutes=10)

_keys = itertools.count()


def at(ms: int, t0: datetime = T0) -> datetime:
    return t0 + timedelta(milliseconds=ms)


def line(ms: int, request_id: str, message: str, *, t0: datetime = T0) -> dict[str, Any]:
    """A function line as awslambdaric writes it, ``ms`` after ``t0`` (:data:`T0`)."""
    when = fleetdata._iso(at(ms, t0))
    return {
        "time": when,
        "type": "function",
        "record": f"[INFO]\t{when}\t{request_id}\t{message}\n",
    }


def json_line(ms: int, record: dict[str, Any], *, t0: datetime = T0) -> dict[str, Any]:
    return {"time": fleetdata._iso(at(ms, t0)), "type": "function", "record": json.dumps(record)}


def report(
    ms: int, request_id: str, duration_ms: float, status: str = "success", *, t0: datetime = T0
) -> list[dict]:
    """``platform.start`` is implied; runtimeDone and report end the request."""
    done: dict[str, Any] = {"requestId": request_id, "status": status}
    return [
        {
            "time": fleetdata._iso(at(ms, t0)),
            "type": "platform.runtimeDone",
            "record": {**done, "metrics": {"durationMs": duration_ms}},
        },
        {
            "time": fleetdata._iso(at(ms + 1, t0)),
            "type": "platform.report",
            "record": {
                **done,
                "metrics": {
                    "durationMs": duration_ms,
                    "billedDurationMs": duration_ms,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 60,
                },
            },
        },
    ]


def start(ms: int, request_id: str, *, t0: datetime = T0) -> dict[str, Any]:
    return {
        "time": fleetdata._iso(at(ms, t0)),
        "type": "platform.start",
        "record": {"requestId": request_id, "version": "$LATEST"},
    }


def batch(
    function_name: str, events: Sequence[dict[str, Any]], *, t0: datetime = T0
) -> dict[str, Any]:
    """One extension batch of ``events`` from ``function_name``'s environment 1."""
    environment = {
        "environment_id": fleetdata.environment_id(function_name, "1"),
        "function_name": function_name,
        "function_version": "$LATEST",
        "region": "us-east-1",
        "memory_size_mb": 128,
        "initialization_type": "on-demand",
        "architecture": "x86_64",
    }
    key = f"tail/{function_name}/{next(_keys)}"
    return fleetdata._batch(key, t0 + timedelta(minutes=1), environment, list(events), [])


def write(
    store: Any, function_name: str, events: Sequence[dict[str, Any]], *, t0: datetime = T0
) -> None:
    """``t0``: another time to write from than :data:`T0` (a frozen clock's, for pictures)."""
    from lambdascope.collector.normalize import normalize_batch

    store.store.write(normalize_batch(batch(function_name, events, t0=t0)))
