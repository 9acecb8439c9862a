"""INVOKE records from the extension (a batch's ``invocations[]``) -> invocation parts.

Pure: no I/O, no clock. The extension records every INVOKE event the Extensions API gives it:
the request id, when it arrived, the deadline, the invoked function ARN and the X-Ray trace
id. The Telemetry API gives neither the deadline nor the ARN; the deadline is how the
configured timeout is known, even for an invocation whose report never came.
"""

from __future__ import annotations

import math
from typing import Any

from lambdascope.collector.batch_rows import BatchBuilder
from lambdascope.collector.fields import BatchError, read_epoch_ms, read_id, read_str

__all__ = ["add_invoke"]


def add_invoke(out: BatchBuilder, entry: dict[str, Any]) -> None:
    """Merge one INVOKE record into its request's part; a :class:`BatchError` names the field
    relative to the record."""
    request_id = read_id(entry, "request_id", "")
    deadline_ms = read_epoch_ms(entry, "deadline_ms", "")
    received_ms = read_epoch_ms(entry, "received_at_ms", "")
    timeout_ms = None
    if deadline_ms is not None and received_ms is not None:
        # deadline - receipt is the configured timeout minus the INVOKE's delivery delay (tens of
        # ms on a busy host). Lambda timeouts are whole seconds, so round to the nearest one.
        remaining_ms = max(0.0, deadline_ms - received_ms)
        timeout_ms = float(max(1000, round(remaining_ms / 1000) * 1000))
    anchor = received_ms if received_ms is not None else deadline_ms
    when = math.floor(anchor) if anchor is not None else out.sent_at_ms
    if when is None:
        raise BatchError("received_at_ms", "is required when sent_at_ms is missing")
    out.part(
        request_id,
        when,
        received_at=math.floor(received_ms) if received_ms is not None else None,
        deadline=math.floor(deadline_ms) if deadline_ms is not None else None,
        timeout_ms=timeout_ms,
        invoked_function_arn=read_str(entry, "invoked_function_arn", ""),
        trace_id=read_str(entry, "trace_id", ""),
        has_invoke=1,
    )
