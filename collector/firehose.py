"""CloudWatch Metric Streams delivered by Firehose to an HTTP endpoint: the request and reply
formats (reference notes §9) and JSON metric stream records (§8) into ``cloudwatch_metrics``
rows. Pure functions, no I/O.

This is how Throttles, ConcurrentExecutions and the other ``AWS/Lambda`` metrics arrive: a
throttled request never reaches a sandbox, so no extension sees it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from collector.normalize import clean_text

__all__ = [
    "METRIC_COLUMNS",
    "FirehoseError",
    "FirehoseRequest",
    "MetricPoint",
    "parse_firehose_request",
    "reply_body",
]

_STATISTICS = ("min", "max", "sum", "count")


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
    skipped_lines: int


def reply_body(request_id: str, now_ms: int, error: str | None = None) -> dict[str, Any]:
    """The JSON Firehose expects back: same request id, a timestamp, an error on failure."""
    body: dict[str, Any] = {"requestId": request_id, "timestamp": now_ms}
    if error is not None:
        body["errorMessage"] = error
    return body


def parse_firehose_request(header_request_id: str | None, body: Any) -> FirehoseRequest:
    """Validate one Firehose delivery and decode its metric stream records.

    A record line that is not a metric data point is skipped (counted), never a reason to
    refuse the whole delivery: Firehose would retry it for hours.
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
    skipped = 0
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("data", ""), str):
            raise FirehoseError(400, f"records[{index}]: must be an object with base64 data")
        try:
            data = base64.b64decode(record.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise FirehoseError(400, f"records[{index}].data: is not base64") from None
        for line in data.decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            point = _point(line, header_request_id)
            if point is None:
                skipped += 1
            else:
                points.append(point)
    return FirehoseRequest(header_request_id, points, skipped)


def _point(line: str, request_id: str) -> MetricPoint | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    if not isinstance(item, dict):
        return None
    value = item.get("value")
    timestamp = item.get("timestamp")
    if not isinstance(value, dict) or not isinstance(timestamp, int | float):
        return None
    if not _number(timestamp):
        return None
    stats: dict[str, float] = {}
    for key, number in value.items():
        if _number(number):
            stats[str(key)] = float(number)
    if not all(key in stats for key in _STATISTICS):
        return None
    raw_dimensions = item.get("dimensions")
    dimensions = (
        {clean_text(str(k)): clean_text(str(v)) for k, v in raw_dimensions.items()}
        if isinstance(raw_dimensions, dict)
        else {}
    )
    return MetricPoint(
        timestamp=dt.datetime.fromtimestamp(float(timestamp) / 1000.0, tz=dt.UTC),
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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""
