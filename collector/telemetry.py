"""Telemetry API ``platform.*`` events -> invocation parts, cold-start parts and platform lines.

Pure: no I/O, no clock. ``platform.start``, ``platform.runtimeDone`` and ``platform.report``
each contribute what they know about one request; ``platform.init*`` and
``platform.restore*`` what they know about one initialisation of the environment (its phase:
``init``, ``invoke`` for a suppressed init, ``restore`` for SnapStart). Every event is also
kept as the line CloudWatch Logs shows for it (``START``, ``END``, ``REPORT``,
``INIT_START``, ...; TAB separated) on the ``platform`` stream.

Each handler in :data:`PLATFORM_HANDLERS` gets (builder, record, time, open windows) and
returns the open windows and the log records Lambda dropped; a :class:`BatchError` it raises names
the field relative to the record ("" for the record itself).
"""

from __future__ import annotations

import functools
from typing import Any

from lambdascope.collector.batch_rows import BatchBuilder, EventResult, Window
from lambdascope.collector.fields import (
    UINT64_MAX,
    ms_to_datetime,
    read_id,
    read_int,
    read_number,
    read_object,
    read_str,
)

__all__ = ["PLATFORM_HANDLERS"]

#: Lambda's longest invocation (15 minutes) and a minute of clock skew.
MAX_INVOCATION_MS = 16 * 60 * 1000.0


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "?"


def _render_report(request_id: str, record: dict[str, Any], metrics: dict[str, Any]) -> str:
    parts = [f"REPORT RequestId: {request_id}"]
    if metrics.get("durationMs") is not None:
        parts.append(f"Duration: {_ms(metrics.get('durationMs'))} ms")
    if metrics.get("billedDurationMs") is not None:
        parts.append(f"Billed Duration: {metrics['billedDurationMs']:.0f} ms")
    if metrics.get("memorySizeMB") is not None:
        parts.append(f"Memory Size: {metrics['memorySizeMB']:.0f} MB")
    if metrics.get("maxMemoryUsedMB") is not None:
        parts.append(f"Max Memory Used: {metrics['maxMemoryUsedMB']:.0f} MB")
    if metrics.get("initDurationMs") is not None:
        parts.append(f"Init Duration: {_ms(metrics['initDurationMs'])} ms")
    if metrics.get("restoreDurationMs") is not None:
        parts.append(f"Restore Duration: {_ms(metrics['restoreDurationMs'])} ms")
    status = record.get("status")
    if isinstance(status, str) and status.lower() != "success":
        parts.append(f"Status: {status}")
        if isinstance(record.get("errorType"), str):
            parts.append(f"Error Type: {record['errorType']}")
    return "\t".join(parts) + "\t"


def _platform_start(out: BatchBuilder, record: Any, when: int, window: Window) -> EventResult:
    record = read_object(record, "")
    request_id = read_id(record, "requestId", "")
    out.part(request_id, when, start_time=when, has_start=1)
    version = read_str(record, "version", "") or out.env.function_version
    out.log(when, request_id, "platform", "", f"START RequestId: {request_id} Version: {version}")
    if out.concurrent:
        # Managed Instances: this request runs beside the open ones.
        return (window if request_id in window else window + (request_id,)), 0
    # On demand one request runs at a time: a start replaces a window whose end was lost.
    return (request_id,), 0


def _closed(window: Window, request_id: str) -> Window:
    """The windows still open once ``request_id``'s has closed; a close for a request whose
    window is not open (its start was lost) leaves the open ones alone."""
    return tuple(r for r in window if r != request_id) if request_id in window else window


def _platform_runtime_done(
    out: BatchBuilder, record: Any, when: int, window: Window
) -> EventResult:
    record = read_object(record, "")
    request_id = read_id(record, "requestId", "")
    metrics = read_object(record.get("metrics") or {}, "metrics")
    out.part(
        request_id,
        when,
        runtime_done_time=when,
        runtime_done_status=_lower(read_str(record, "status", "")),
        runtime_done_error_type=read_str(record, "errorType", ""),
        runtime_done_duration_ms=read_number(metrics, "durationMs", "metrics"),
        runtime_done_produced_bytes=read_int(metrics, "producedBytes", "metrics", UINT64_MAX),
        has_runtime_done=1,
    )
    out.log(when, request_id, "platform", "", f"END RequestId: {request_id}")
    # Lines after runtimeDone(X) are no longer X's.
    return _closed(window, request_id), 0


def _platform_report(out: BatchBuilder, record: Any, when: int, window: Window) -> EventResult:
    record = read_object(record, "")
    request_id = read_id(record, "requestId", "")
    metrics = read_object(record.get("metrics") or {}, "metrics")
    out.part(
        request_id,
        when,
        report_time=when,
        report_status=_lower(read_str(record, "status", "")),
        report_error_type=read_str(record, "errorType", ""),
        report_duration_ms=read_number(metrics, "durationMs", "metrics"),
        report_billed_duration_ms=read_number(metrics, "billedDurationMs", "metrics"),
        report_memory_size_mb=read_int(metrics, "memorySizeMB", "metrics"),
        report_max_memory_used_mb=read_int(metrics, "maxMemoryUsedMB", "metrics"),
        report_init_duration_ms=read_number(metrics, "initDurationMs", "metrics"),
        report_restore_duration_ms=read_number(metrics, "restoreDurationMs", "metrics"),
        has_report=1,
    )
    init_ms = read_number(metrics, "initDurationMs", "metrics")
    invoked_ms = read_number(metrics, "durationMs", "metrics") or 0.0
    if init_ms is not None and 0.0 <= invoked_ms <= MAX_INVOCATION_MS:
        # Only an environment's first request reports its init: when it started tells a
        # proactive init (ahead of demand) from one a request waited for. A duration no
        # invocation can have says nothing about when it started.
        out.cold_start("init", when, first_request_time=ms_to_datetime(when - round(invoked_ms)))
    out.log(when, request_id, "platform", "", _render_report(request_id, record, metrics))
    # Managed Instances send no runtimeDone: the report ends the request's window there. On
    # demand the window already closed at runtimeDone and is left as it was.
    return (_closed(window, request_id) if out.concurrent else window), 0


def _initialization_type(out: BatchBuilder, record: dict[str, Any]) -> str | None:
    """The init's ``initializationType``; for a Managed Instances environment whose init
    event does not say, the environment's own (its extension reads it from
    AWS_LAMBDA_INITIALIZATION_TYPE), so readers can still tell such an environment. On demand
    a missing type stays missing, as before."""
    value = read_str(record, "initializationType", "")
    if not value and out.concurrent:
        return out.env.initialization_type
    return value


def _phase(record: dict[str, Any], restore: bool) -> str:
    # SnapStart restores have no phase field; they are their own kind of initialisation.
    if restore:
        return "restore"
    return _lower(read_str(record, "phase", "")) or "init"


def _init_start(
    out: BatchBuilder, record: Any, when: int, w: Any, *, restore: bool = False
) -> EventResult:
    record = read_object(record, "")
    phase = _phase(record, restore)
    runtime_version = read_str(record, "runtimeVersion", "")
    out.cold_start(
        phase,
        when,
        initialization_type=_initialization_type(out, record),
        init_start_time=when,
        runtime_version=runtime_version,
        has_init_start=1,
    )
    line = "RESTORE_START" if restore else "INIT_START"
    if runtime_version:
        line += f" Runtime Version: {runtime_version}"
    if isinstance(record.get("runtimeVersionArn"), str):
        line += f"\tRuntime Version ARN: {record['runtimeVersionArn']}"
    out.log(when, None, "platform", "", line)
    return w, 0


def _init_runtime_done(
    out: BatchBuilder, record: Any, when: int, w: Any, *, restore: bool = False
) -> EventResult:
    record = read_object(record, "")
    out.cold_start(
        _phase(record, restore),
        when,
        initialization_type=_initialization_type(out, record),
        runtime_done_time=when,
        runtime_done_status=_lower(read_str(record, "status", "")),
        runtime_done_error_type=read_str(record, "errorType", ""),
        has_runtime_done=1,
    )
    return w, 0


def _init_report(
    out: BatchBuilder, record: Any, when: int, w: Any, *, restore: bool = False
) -> EventResult:
    record = read_object(record, "")
    metrics = read_object(record.get("metrics") or {}, "metrics")
    phase = _phase(record, restore)
    status = _lower(read_str(record, "status", ""))
    error_type = read_str(record, "errorType", "")
    duration = read_number(metrics, "durationMs", "metrics")
    out.cold_start(
        phase,
        when,
        initialization_type=_initialization_type(out, record),
        report_time=when,
        report_status=status,
        report_error_type=error_type,
        init_duration_ms=duration,
        has_report=1,
    )
    if restore:
        line = f"RESTORE_REPORT Restore Duration: {_ms(duration)} ms"
    else:
        line = f"INIT_REPORT Init Duration: {_ms(duration)} ms\tPhase: {phase}"
    if status:
        line += f"\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    out.log(when, None, "platform", "ERROR" if status not in (None, "success") else "", line)
    return w, 0


def _extension_state(out: BatchBuilder, record: Any, when: int, w: Any) -> EventResult:
    record = read_object(record, "")
    events = record.get("events")
    names = ", ".join(str(e) for e in events) if isinstance(events, list) else ""
    line = (
        f"EXTENSION\tName: {read_str(record, 'name', '') or '?'}"
        f"\tState: {read_str(record, 'state', '') or '?'}\tEvents: [{names}]"
    )
    if isinstance(record.get("errorType"), str):
        line += f"\tError Type: {record['errorType']}"
    out.log(when, None, "platform", "", line)
    return w, 0


def _subscription(out: BatchBuilder, record: Any, when: int, w: Any) -> EventResult:
    record = read_object(record, "")
    types = record.get("types")
    names = ", ".join(str(x).title() for x in types) if isinstance(types, list) else ""
    out.log(
        when,
        None,
        "platform",
        "",
        f"TELEMETRY\tName: {read_str(record, 'name', '') or '?'}"
        f"\tState: {read_str(record, 'state', '') or '?'}\tTypes: [{names}]",
    )
    return w, 0


def _logs_dropped(out: BatchBuilder, record: Any, when: int, w: Any) -> EventResult:
    record = read_object(record, "")
    dropped = read_int(record, "droppedRecords", "", UINT64_MAX) or 0
    dropped_bytes = read_int(record, "droppedBytes", "", UINT64_MAX) or 0
    reason = read_str(record, "reason", "") or ""
    out.log(
        when,
        None,
        "platform",
        "WARNING",
        f"LOGS_DROPPED\tDropped Records: {dropped}\tDropped Bytes: {dropped_bytes}"
        f"\tReason: {reason}",
    )
    return w, dropped


#: The handler of each ``platform.*`` event type this collector knows.
PLATFORM_HANDLERS: dict[str, Any] = {
    "platform.start": _platform_start,
    "platform.runtimeDone": _platform_runtime_done,
    "platform.report": _platform_report,
    "platform.initStart": _init_start,
    "platform.initRuntimeDone": _init_runtime_done,
    "platform.initReport": _init_report,
    "platform.restoreStart": functools.partial(_init_start, restore=True),
    "platform.restoreRuntimeDone": functools.partial(_init_runtime_done, restore=True),
    "platform.restoreReport": functools.partial(_init_report, restore=True),
    "platform.extension": _extension_state,
    "platform.telemetrySubscription": _subscription,
    "platform.logsDropped": _logs_dropped,
}
