"""Pure builders for what the extension sends: INVOKE records, the environment, the batch JSON.

The batch format is docs/architecture.md section 1. Telemetry events are kept as compact JSON
text from the moment they arrive, so a batch is assembled by joining strings (no second walk
over thousands of dicts) and the buffer's byte bounds are exact.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SCHEMA_VERSION = 1
BATCHES_PATH = "/v1/extension/batches"


def new_id() -> str:
    """32 hex characters, like uuid4().hex, without importing uuid (~8 ms of start-up)."""
    return os.urandom(16).hex()


def invocation_record(event: Mapping[str, Any], received_at_ms: int) -> dict[str, Any]:
    """The `invocations` entry for one INVOKE event of the Extensions API."""
    tracing = event.get("tracing")
    trace_id = None
    if isinstance(tracing, dict) and isinstance(tracing.get("value"), str) and tracing["value"]:
        trace_id = tracing["value"]
    deadline = event.get("deadlineMs")
    deadline_ms = (
        int(deadline)
        if isinstance(deadline, (int, float)) and not isinstance(deadline, bool)
        else None
    )
    arn = event.get("invokedFunctionArn")
    return {
        "request_id": str(event.get("requestId") or ""),
        "deadline_ms": deadline_ms,
        "received_at_ms": int(received_at_ms),
        "invoked_function_arn": arn if isinstance(arn, str) else None,
        "trace_id": trace_id,
    }


def telemetry_invocation_record(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `invocations` entry for one request of a Managed Instances environment, from its
    Telemetry API `platform.start` (extensions get no INVOKE event there, so neither the
    deadline nor the invoked ARN is known); None for an event without a request id."""
    record = event.get("record")
    if not isinstance(record, dict) or not isinstance(record.get("requestId"), str):
        return None
    tracing = record.get("tracing")
    trace_id = None
    if isinstance(tracing, dict) and isinstance(tracing.get("value"), str) and tracing["value"]:
        trace_id = tracing["value"]
    return {
        "request_id": record["requestId"],
        "deadline_ms": None,
        "received_at_ms": telemetry_time_ms(event.get("time")),
        "invoked_function_arn": None,
        "trace_id": trace_id,
    }


def telemetry_time_ms(value: Any) -> int | None:
    """A Telemetry API event's `time` (`2026-11-24T07:00:00.123Z`) as epoch ms, else None."""
    if not isinstance(value, str) or len(value) < 19:
        return None
    import calendar  # only in Managed Instances environments, on the listener's thread

    try:
        whole = calendar.timegm(
            (
                int(value[0:4]),
                int(value[5:7]),
                int(value[8:10]),
                int(value[11:13]),
                int(value[14:16]),
                int(value[17:19]),
            )
        )
    except ValueError:
        return None
    fraction = value[19:].rstrip("Z")
    millis = 0
    if fraction.startswith(".") and fraction[1:4].isdigit():
        millis = int(fraction[1:4].ljust(3, "0"))
    return whole * 1000 + millis


def normalise_architecture(machine: str) -> str:
    """Lambda's names: `x86_64` or `arm64` (Linux reports aarch64 on Graviton)."""
    lowered = machine.lower()
    if lowered in ("aarch64", "arm64", "armv8l", "armv8b"):
        return "arm64"
    if lowered in ("x86_64", "amd64", "x64"):
        return "x86_64"
    return lowered or "unknown"


def environment_info(
    register_body: Mapping[str, Any],
    environ: Mapping[str, str],
    environment_id: str,
    machine: str,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The batch's `environment` object, from the register response and Lambda's variables;
    `tags` (LAMBDASCOPE_TAGS) only when there are some."""
    memory_text = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    try:
        memory_size_mb: int | None = int(memory_text)
    except ValueError:
        memory_size_mb = None
    function_name = (
        register_body.get("functionName") or environ.get("AWS_LAMBDA_FUNCTION_NAME") or ""
    )
    function_version = (
        register_body.get("functionVersion")
        or environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        or "$LATEST"
    )
    info: dict[str, Any] = {
        "environment_id": environment_id,
        "function_name": str(function_name),
        "function_version": str(function_version),
        "region": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "",
        "memory_size_mb": memory_size_mb,
        "initialization_type": environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") or "on-demand",
        "architecture": normalise_architecture(machine),
    }
    if tags:
        info["tags"] = dict(tags)
    return info


def build_batch_json(
    batch_id: str,
    sent_at_ms: int,
    extension: Mapping[str, str],
    environment: Mapping[str, Any],
    open_request_id: str | None,
    telemetry: list[str],
    invocations: list[dict[str, Any]],
    extension_stats: Mapping[str, Any] | None = None,
    otlp: list[dict[str, Any]] | None = None,
    open_request_ids: tuple[str, ...] | None = None,
) -> bytes:
    """The batch body (UTF-8 JSON); `telemetry` holds each event as JSON text. `otlp` (OTLP
    export requests from the local receiver) is written only when there are some, so batches
    without them stay as docs/architecture.md section 1 shows; so is `open_request_ids` (the
    windows open when requests overlap, Managed Instances only)."""
    head: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "batch_id": batch_id,
        "sent_at_ms": int(sent_at_ms),
        "extension": dict(extension),
        "environment": dict(environment),
        "open_request_id": open_request_id,
    }
    if open_request_ids is not None:
        head["open_request_ids"] = list(open_request_ids)
    if extension_stats is not None:
        head["extension_stats"] = dict(extension_stats)
    if otlp:
        head["otlp"] = otlp
    head_text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)
    text = '%s,"telemetry":[%s],"invocations":%s}' % (
        head_text[:-1],
        ",".join(telemetry),
        json.dumps(invocations, separators=(",", ":"), ensure_ascii=False),
    )
    return text.encode("utf-8")


def gzip_bytes(data: bytes, level: int = 5) -> bytes:
    """gzip framing via zlib (the gzip module costs more to import and does the same)."""
    import zlib  # only when sending, not at start-up

    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()
