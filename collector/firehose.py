"""CloudWatch Metric Streams delivered by Firehose to an HTTP endpoint: the request and reply
formats (reference notes §9) and metric stream records (§8) into ``cloudwatch_metrics`` rows.
Pure functions, no I/O.

This is how Throttles, ConcurrentExecutions and the other ``AWS/Lambda`` metrics arrive: a
throttled request never reaches a sandbox, so no extension sees it.

Two output formats of a metric stream are read: JSON (newline-separated JSON objects, one data
point each) and OpenTelemetry 1.0.0 (size-delimited protobuf export requests, decoded by
:mod:`firehose_otel` into the JSON format's shape). OpenTelemetry 0.7.0 is refused
with a 400 that names the fix: acknowledging it would drop it.

A record or line that cannot be stored is skipped and counted by reason, and the rest of the
delivery is stored: Firehose retries any reply but 200 (and 413) with the same records, so one
bad data point would otherwise hold up the whole delivery until the stream gives up on it.
Retrying cannot fix a bad record either, so a delivery of nothing but bad records is answered
200 as well; the skip counters and a log line say what was left out.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from lambdascope.collector import firehose_otel

# The store's time bounds (a Date partition ends on 2149-06-06), shared with the extension
# batches' checks rather than defined twice.
from lambdascope.collector.fields import EPOCH, MAX_STORED_MS, clean_text

__all__ = [
    "METRIC_COLUMNS",
    "SKIP_BAD_JSON",
    "SKIP_BAD_PROTOBUF",
    "SKIP_BAD_VALUE",
    "SKIP_TIMESTAMP",
    "SKIP_UNSUPPORTED",
    "FirehoseError",
    "FirehoseRequest",
    "MetricPoint",
    "parse_firehose_request",
    "reply_body",
]

_STATISTICS = ("min", "max", "sum", "count")

#: Why a record or line was skipped: the ``reason`` label of the skip counter.
SKIP_BAD_JSON = "bad_json"  # a JSON record's line that is not a JSON object
SKIP_BAD_PROTOBUF = "bad_protobuf"  # an OpenTelemetry record whose framing or protobuf is broken
SKIP_BAD_VALUE = "bad_value"  # a statistic or timestamp that is missing, not finite or impossible
SKIP_TIMESTAMP = "timestamp_out_of_range"  # a time outside what the store holds
SKIP_UNSUPPORTED = "unsupported_format"  # well-formed, but not a metric stream data point

#: Bytes that JSON text never holds outside a string, and JSON strings never hold raw, but every
#: protobuf metric stream record does (field tags 0x11, 0x12, 0x19; lengths below 32).
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class FirehoseError(ValueError):
    """A delivery the endpoint refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class MetricPoint:
    """One metric data point; field names are the columns of ``cloudwatch_metrics``."""

    timestamp: dt.datetime
    metric_stream_name: str
    account_id: str
    region: str
    namespace: str
    metric_name: str
    function_name: str
    resource: str
    dimensions: dict[str, str]
    unit: str
    value_min: float
    value_max: float
    value_sum: float
    value_count: float
    extra_statistics: dict[str, float] = field(default_factory=dict)
    firehose_request_id: str = ""


METRIC_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(MetricPoint))


@dataclass(frozen=True)
class FirehoseRequest:
    request_id: str
    points: list[MetricPoint]
    #: Skipped records (OpenTelemetry), lines (JSON) and data points, by reason.
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_lines(self) -> int:
        return sum(self.skipped.values())


def reply_body(request_id: str, now_ms: int, error: str | None = None) -> dict[str, Any]:
    """The JSON Firehose expects back: same request id, a timestamp, an error on failure."""
    body: dict[str, Any] = {"requestId": request_id, "timestamp": now_ms}
    if error is not None:
        body["errorMessage"] = error
    return body


def parse_firehose_request(header_request_id: str | None, body: Any) -> FirehoseRequest:
    """Validate one Firehose delivery and decode its metric stream records.

    A record, line or data point that cannot be stored is skipped (counted by reason), never a
    reason to refuse the whole delivery: Firehose would retry it for hours. Refused (400) are
    only a delivery that is not Firehose's request format and a record in the OpenTelemetry
    0.7.0 format, which must not be acknowledged unread.
    """
    if not header_request_id:
        raise FirehoseError(400, "the X-Amz-Firehose-Request-Id header is missing")
    if not isinstance(body, dict):
        raise FirehoseError(400, "body must be a JSON object with requestId and records")
    if body.get("requestId") != header_request_id:
        raise FirehoseError(
            400, "requestId in the body differs from the X-Amz-Firehose-Request-Id header"
        )
    records = body.get("records")
    if not isinstance(records, list):
        raise FirehoseError(400, "records: must be a list")
    points: list[MetricPoint] = []
    skipped: Counter[str] = Counter()
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("data", ""), str):
            raise FirehoseError(400, f"records[{index}]: must be an object with base64 data")
        try:
            data = base64.b64decode(record.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise FirehoseError(400, f"records[{index}].data: is not base64") from None
        try:
            items, record_skipped = _record_items(data)
        except firehose_otel.UnsupportedOtelFormat as exc:
            raise FirehoseError(400, f"records[{index}] {exc}") from None
        skipped.update(record_skipped)
        for item in items:
            point = _point(item, header_request_id)
            if isinstance(point, str):
                skipped[point] += 1
            else:
                points.append(point)
    return FirehoseRequest(header_request_id, points, dict(skipped))


def _record_items(data: bytes) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The data points of one record as JSON-format objects, and what was skipped by reason."""
    skipped: Counter[str] = Counter()
    if not data.strip():
        return [], skipped  # Firehose allows empty records
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or _BINARY.search(data):
        try:
            otel = firehose_otel.decode_record(data)
        except firehose_otel.OtelDecodeError:
            # A JSON record with a stray control or non-UTF-8 byte still has good lines;
            # anything else that is not text is one broken record.
            if not data.lstrip().startswith(b"{"):
                skipped[SKIP_BAD_PROTOBUF] += 1
                return [], skipped
        else:
            if otel.unsupported:
                skipped[SKIP_UNSUPPORTED] += otel.unsupported
            return list(otel.items), skipped
    items: list[dict[str, Any]] = []
    # Lines end at "\n" only: str.splitlines would also split inside strings at U+2028 & co.
    for line in (text or data.decode("utf-8", "replace")).split("\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            skipped[SKIP_BAD_JSON] += 1
            continue
        if not isinstance(item, dict):
            skipped[SKIP_BAD_JSON] += 1
            continue
        items.append(item)
    return items, skipped


def _point(item: dict[str, Any], request_id: str) -> MetricPoint | str:
    """The row of one JSON-format data point, or the reason it cannot be stored."""
    if "value" not in item or "timestamp" not in item:
        return SKIP_UNSUPPORTED
    value = item["value"]
    if not isinstance(value, dict):
        return SKIP_BAD_VALUE
    timestamp = _time(item["timestamp"])
    if isinstance(timestamp, str):
        return timestamp
    stats: dict[str, float] = {}
    for key, number in value.items():
        finite = _finite(number)
        if finite is not None:
            stats[str(key)] = finite
        elif key in _STATISTICS:
            return SKIP_BAD_VALUE
        # Another statistic that is not a finite number is left out: the four above are
        # still true, and the JSON format may carry statistics CloudWatch could not compute.
    if not all(key in stats for key in _STATISTICS):
        return SKIP_BAD_VALUE
    # Impossible for any CloudWatch metric: a sign the data point is garbage.
    if stats["count"] < 0 or stats["min"] > stats["max"]:
        return SKIP_BAD_VALUE
    raw_dimensions = item.get("dimensions")
    dimensions = (
        {clean_text(str(k)): clean_text(str(v)) for k, v in raw_dimensions.items()}
        if isinstance(raw_dimensions, dict)
        else {}
    )
    return MetricPoint(
        timestamp=timestamp,
        metric_stream_name=_text(item.get("metric_stream_name")),
        account_id=_text(item.get("account_id")),
        region=_text(item.get("region")),
        namespace=_text(item.get("namespace")),
        metric_name=_text(item.get("metric_name")),
        function_name=dimensions.get("FunctionName", ""),
        resource=dimensions.get("Resource", ""),
        dimensions=dimensions,
        unit=_text(item.get("unit")),
        value_min=stats["min"],
        value_max=stats["max"],
        value_sum=stats["sum"],
        value_count=stats["count"],
        extra_statistics={k: v for k, v in stats.items() if k not in _STATISTICS},
        firehose_request_id=request_id,
    )


def _time(ms: Any) -> dt.datetime | str:
    """Epoch milliseconds as a datetime, or why they cannot be stored.

    Checked before any conversion: ``fromtimestamp(1e17)`` raises and a time before 1970 or
    after 2149-06-06 fails the insert, which would fail the delivery on every retry.
    """
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return SKIP_BAD_VALUE
    if isinstance(ms, float) and not math.isfinite(ms):
        return SKIP_BAD_VALUE
    if not 0 <= ms <= MAX_STORED_MS:  # exact for integers of any size
        return SKIP_TIMESTAMP
    # Exact for integer milliseconds, unlike fromtimestamp(ms / 1000).
    return EPOCH + dt.timedelta(milliseconds=ms)


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (JSON integers have no bound)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""
