"""CloudWatch metric stream records in the OpenTelemetry 1.0.0 output format, decoded into the
shape of the JSON output format's data points, so :mod:`firehose` checks and stores
both formats the same way. Pure functions, no I/O.

The format (AWS: CloudWatch-metric-streams-formats-opentelemetry-100 and
CloudWatch-metric-streams-formats-opentelemetry-translation-100 in the CloudWatch user guide):

* a Firehose record holds one or more ``ExportMetricsServiceRequest`` messages, each preceded by
  its length in bytes as an unsigned varint;
* resource attributes ``cloud.account.id``, ``cloud.region`` and ``aws.exporter.arn`` (the
  metric stream's ARN, ``...:metric-stream/<name>``);
* one Summary metric per CloudWatch metric (named ``amazonaws.com/<namespace>/<metric>``, unit
  in UCUM: ``ms``, ``{Count}``, ``By/s``...), whose data points carry the attributes
  ``Namespace``, ``MetricName`` and ``Dimensions`` (a key-value list, one pair per dimension);
* ``start_time_unix_nano``/``time_unix_nano`` are the CloudWatch period's start and end,
  ``sum`` is Sum, ``count`` SampleCount, the quantile 0.0 is Min, 1.0 Max, and other quantiles
  the percentiles the stream was configured with (0.99 is p99).

The 0.7.0 output format differs in one place that matters: data point labels are
``StringKeyValue`` in field 1, which the 1.0 classes do not read (field 1 is reserved there), so
its data points would arrive without a namespace or name. It is recognised and refused
(:class:`UnsupportedOtelFormat`) rather than stored as nameless rows or dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

__all__ = [
    "OTEL_07_REFUSAL",
    "OtelDecodeError",
    "OtelRecord",
    "UnsupportedOtelFormat",
    "decode_record",
    "read_varint",
    "split_delimited",
]

#: Why a 0.7.0 record is refused, and the fix.
OTEL_07_REFUSAL = (
    "holds CloudWatch metric stream data in the OpenTelemetry 0.7.0 output format, which this "
    "collector does not read (its data points carry StringKeyValue labels); set the metric "
    "stream's output format to OpenTelemetry 1.0 (opentelemetry1.0) or JSON (json)"
)

#: CloudWatch units as the OpenTelemetry formats spell them (UCUM), back to CloudWatch's names,
#: so rows from the JSON and the OpenTelemetry formats have the same ``unit``.
_UNITS = {
    "s": "Seconds",
    "us": "Microseconds",
    "ms": "Milliseconds",
    "By": "Bytes",
    "kBy": "Kilobytes",
    "MBy": "Megabytes",
    "GBy": "Gigabytes",
    "TBy": "Terabytes",
    "bit": "Bits",
    "kbit": "Kilobits",
    "MBit": "Megabits",
    "GBit": "Gigabits",
    "Tbit": "Terabits",
    "%": "Percent",
    "{Count}": "Count",
    "1": "None",
}
#: The denominator of CloudWatch's rate units (``Bytes/Second``, ``Count/Second``).
_PER = {"s": "Second"}

_VARINT_MAX_BYTES = 10
#: Field 1 of a data point: 0.7.0's labels, reserved in 1.0.
_LABELS_07 = 1


class OtelDecodeError(ValueError):
    """A record that is not size-delimited ``ExportMetricsServiceRequest`` messages."""


class UnsupportedOtelFormat(ValueError):
    """A record in the OpenTelemetry 0.7.0 output format."""


@dataclass(frozen=True)
class OtelRecord:
    #: One dict per Summary data point, shaped like a JSON output format data point.
    items: list[dict[str, Any]]
    #: Data points that are not CloudWatch metric stream data points (another metric kind, no
    #: Namespace or MetricName attribute): counted, not stored.
    unsupported: int


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``data[pos:]`` and the position after it."""
    value = 0
    for shift in range(0, 7 * _VARINT_MAX_BYTES, 7):
        if pos >= len(data):
            raise OtelDecodeError("the record ends inside a varint length prefix")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise OtelDecodeError(f"a varint length prefix is longer than {_VARINT_MAX_BYTES} bytes")


def split_delimited(data: bytes) -> list[bytes]:
    """The messages of a size-delimited record (varint length, then that many bytes, repeated).

    The framing is checked to the end before any message is used: a record cut short or with a
    wrong length is not trusted in part.
    """
    messages = []
    pos = 0
    while pos < len(data):
        length, pos = read_varint(data, pos)
        if length > len(data) - pos:
            raise OtelDecodeError(
                f"a message of {length} bytes is announced at byte {pos}, "
                f"but only {len(data) - pos} remain"
            )
        messages.append(data[pos : pos + length])
        pos += length
    return messages


def decode_record(data: bytes) -> OtelRecord:
    """The data points of one OpenTelemetry 1.0.0 record.

    Raises :class:`OtelDecodeError` when the record is not size-delimited export requests, and
    :class:`UnsupportedOtelFormat` when it is the 0.7.0 format.
    """
    items: list[dict[str, Any]] = []
    unsupported = 0
    for message in split_delimited(data):
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        try:
            request.ParseFromString(message)
        except (DecodeError, RecursionError) as exc:
            raise OtelDecodeError(
                f"a message is not an ExportMetricsServiceRequest: {exc}"
            ) from None
        # The request has one field; bytes that parse only as unknown fields are not one.
        if len(unknown_fields.UnknownFieldSet(request)):
            raise OtelDecodeError("a message is not an ExportMetricsServiceRequest")
        for resource_metrics in request.resource_metrics:
            resource = _attributes(resource_metrics.resource.attributes)
            common = {
                "metric_stream_name": _stream_name(resource.get("aws.exporter.arn", "")),
                "account_id": resource.get("cloud.account.id", ""),
                "region": resource.get("cloud.region", ""),
            }
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind != "summary":
                        # CloudWatch sends summaries only; anything else is not its data.
                        unsupported += len(getattr(metric, kind).data_points) if kind else 1
                        continue
                    unit = _cloudwatch_unit(metric.unit)
                    for point in metric.summary.data_points:
                        item = _item(point, common, unit)
                        if item is None:
                            unsupported += 1
                        else:
                            items.append(item)
    return OtelRecord(items, unsupported)


def _item(point: Any, common: dict[str, str], unit: str) -> dict[str, Any] | None:
    if not point.attributes:
        labels = unknown_fields.UnknownFieldSet(point)
        if any(field.field_number == _LABELS_07 for field in labels):
            raise UnsupportedOtelFormat(OTEL_07_REFUSAL)
        return None
    attributes = {kv.key: kv.value for kv in point.attributes}
    namespace = attributes.get("Namespace")
    metric_name = attributes.get("MetricName")
    if namespace is None or metric_name is None:
        return None
    dimensions: dict[str, str] = {}
    if "Dimensions" in attributes:
        listed = attributes["Dimensions"]
        if listed.WhichOneof("value") != "kvlist_value":
            return None
        dimensions = _attributes(listed.kvlist_value.values)
    # The period's start, as CloudWatch (and the JSON format's ``timestamp``) labels a period;
    # None (no time at all) is refused by the caller as a bad value.
    nanos = point.start_time_unix_nano or point.time_unix_nano
    value: dict[str, float] = {"sum": point.sum, "count": float(point.count)}
    for quantile in point.quantile_values:
        name = _statistic(quantile.quantile)
        if name is not None:
            value[name] = quantile.value
    return {
        **common,
        "namespace": _any_text(namespace),
        "metric_name": _any_text(metric_name),
        "dimensions": dimensions,
        "timestamp": nanos // 1_000_000 if nanos else None,
        "value": value,
        "unit": unit,
    }


def _statistic(quantile: float) -> str | None:
    """The JSON format's name of a quantile's statistic: ``min``, ``max``, ``p99``, ``p99.9``."""
    if not math.isfinite(quantile) or not 0.0 <= quantile <= 1.0:
        return None  # not a statistic CloudWatch streams: left out like the JSON path does
    if quantile == 0.0:
        return "min"
    if quantile == 1.0:
        return "max"
    return "p" + format(round(quantile * 100, 6), "g")


def _cloudwatch_unit(unit: str) -> str:
    """``ms`` -> ``Milliseconds``, ``By/s`` -> ``Bytes/Second``; an unknown unit is kept."""
    head, slash, tail = unit.partition("/")
    if not slash:
        return _UNITS.get(unit, unit)
    if head in _UNITS and tail in _PER:
        return f"{_UNITS[head]}/{_PER[tail]}"
    return unit


def _stream_name(arn: str) -> str:
    """``arn:aws:cloudwatch:<region>:<account>:metric-stream/<name>`` -> ``<name>``."""
    head, marker, name = arn.partition(":metric-stream/")
    return name if marker else head


def _attributes(items: Any) -> dict[str, str]:
    return {kv.key: _any_text(kv.value) for kv in items}


def _any_text(value: common_pb2.AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bytes_value":
        return bytes(value.bytes_value).hex()
    if kind in ("array_value", "kvlist_value"):
        return str(value)  # never in a CloudWatch dimension; kept readable, not dropped
    return str(getattr(value, kind))
