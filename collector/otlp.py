"""OTLP/HTTP JSON (``/v1/traces``, ``/v1/logs``, ``/v1/metrics``) into rows of the
``otel_traces``, ``otel_logs`` and ``otel_metrics`` tables. Pure functions, no I/O.
Protobuf bodies are turned into this JSON shape first (:mod:`lambdascope.collector.otlp_proto`).

The tables use the column names and types of the OpenTelemetry ClickHouse exporter, so tools
built for it (Grafana's ClickHouse data source, ClickStack) read lambdascope's spans and logs;
``RequestId`` and ``FunctionName`` are added so a span or line joins to its invocation.

OTLP/JSON differs from the protobuf mapping in two ways that matter here: trace and span ids
are hex strings (not base64), and 64-bit integers may arrive as strings. Enums may arrive as
numbers or as their names. Invalid items are rejected one by one and reported as a partial
success, as the OTLP specification asks; a body that is not an OTLP request at all is a
:class:`OtlpError`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

from lambdascope.collector.fields import clean_text

__all__ = [
    "LOG_COLUMNS",
    "METRIC_COLUMNS",
    "SPAN_COLUMNS",
    "OtlpError",
    "OtlpLogRow",
    "OtlpMetricRow",
    "OtlpSpanRow",
    "ParsedLogs",
    "ParsedMetrics",
    "ParsedSpans",
    "parse_logs",
    "parse_metrics",
    "parse_traces",
]

_HEX_ID = re.compile(r"^[0-9a-fA-F]*$")

_SPAN_KINDS = {
    0: "Unspecified",
    1: "Internal",
    2: "Server",
    3: "Client",
    4: "Producer",
    5: "Consumer",
}
_STATUS_CODES = {0: "Unset", 1: "Ok", 2: "Error"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MAX_NANOS = 2**63
#: Attribute keys that name the Lambda request a span or log belongs to.
_REQUEST_ID_KEYS = ("faas.invocation_id", "faas.execution", "aws.lambda.request_id", "requestId")


class OtlpError(ValueError):
    """The body is not an OTLP/JSON export request; names the offending field."""


@dataclass(frozen=True)
class OtlpSpanRow:
    Timestamp: dt.datetime
    TraceId: str
    SpanId: str
    ParentSpanId: str
    TraceState: str
    SpanName: str
    SpanKind: str
    ServiceName: str
    ResourceAttributes: dict[str, str]
    ScopeName: str
    ScopeVersion: str
    SpanAttributes: dict[str, str]
    Duration: int
    StatusCode: str
    StatusMessage: str
    EventsTimestamp: list[dt.datetime] = field(default_factory=list)
    EventsName: list[str] = field(default_factory=list)
    EventsAttributes: list[dict[str, str]] = field(default_factory=list)
    LinksTraceId: list[str] = field(default_factory=list)
    LinksSpanId: list[str] = field(default_factory=list)
    LinksTraceState: list[str] = field(default_factory=list)
    LinksAttributes: list[dict[str, str]] = field(default_factory=list)
    FunctionName: str = ""
    RequestId: str = ""


@dataclass(frozen=True)
class OtlpLogRow:
    Timestamp: dt.datetime
    TraceId: str
    SpanId: str
    TraceFlags: int
    SeverityText: str
    SeverityNumber: int
    ServiceName: str
    Body: str
    ResourceSchemaUrl: str
    ResourceAttributes: dict[str, str]
    ScopeSchemaUrl: str
    ScopeName: str
    ScopeVersion: str
    ScopeAttributes: dict[str, str]
    LogAttributes: dict[str, str]
    FunctionName: str = ""
    RequestId: str = ""


def _column(name: str) -> str:
    # Nested columns are stored flattened as Events.Timestamp, Links.TraceId, ...
    for prefix in ("Events", "Links"):
        if name.startswith(prefix) and name != prefix:
            return f"{prefix}.{name[len(prefix) :]}"
    return name


SPAN_FIELDS = tuple(f.name for f in fields(OtlpSpanRow))
SPAN_COLUMNS = tuple(_column(name) for name in SPAN_FIELDS)
LOG_FIELDS = tuple(f.name for f in fields(OtlpLogRow))
LOG_COLUMNS = LOG_FIELDS


@dataclass(frozen=True)
class ParsedSpans:
    rows: list[OtlpSpanRow]
    rejected: int
    errors: list[str]


@dataclass(frozen=True)
class ParsedLogs:
    rows: list[OtlpLogRow]
    rejected: int
    errors: list[str]


# ---------------------------------------------------------------------------------------------


def _list(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpError(f"{path}.{key}: must be a list")
    return value


def _dict(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpError(f"{path}: must be an object")
    return value


def any_value(value: Any) -> Any:
    """Decode an OTLP ``AnyValue`` into a Python value."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError, OverflowError):
            return value["intValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "arrayValue" in value:
        values = _dict_or_empty(value["arrayValue"]).get("values")
        return [any_value(v) for v in values] if isinstance(values, list) else []
    if "kvlistValue" in value:
        return _attributes_raw(_dict_or_empty(value["kvlistValue"]).get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list_or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _attributes_raw(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = any_value(item.get("value"))
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return clean_text(value)
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), default=str)


def _attributes(items: Any) -> dict[str, str]:
    return {clean_text(k): _text(v) for k, v in _attributes_raw(items).items()}


def _nanos(value: Any, path: str) -> int:
    if value is None or value == "":
        return 0
    try:
        nanos = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: must be an integer number of nanoseconds") from None
    if nanos < 0:
        raise ValueError(f"{path}: must not be negative")
    if nanos >= _MAX_NANOS:
        # DateTime64(9) ends in 2262; a larger value would fail the whole insert.
        raise ValueError(f"{path}: {nanos} is past the year 2262")
    return nanos


def _time(nanos: int) -> dt.datetime:
    # Python datetimes hold microseconds: the nanosecond digits are dropped.
    return _EPOCH + dt.timedelta(microseconds=nanos // 1000)


def _hex_id(value: Any, length: int, path: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{path}: must be a hex string")
    if _HEX_ID.match(value) and len(value) == length:
        return value.lower()
    # Some SDKs send the protobuf mapping's base64 in JSON; accept it when it decodes exactly.
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) * 2 == length:
        return raw.hex()
    raise ValueError(f"{path}: must be {length} hex digits")


def _enum(value: Any, names: dict[int, str], prefix: str) -> str:
    if isinstance(value, bool):
        return names[0]
    if isinstance(value, int):
        return names.get(value, names[0])
    if isinstance(value, str):
        short = value.removeprefix(prefix).replace("_", " ").title().replace(" ", "")
        if short in names.values():
            return short
    return names[0]


def _resource(resource_entry: dict[str, Any], path: str) -> tuple[dict[str, str], str, str]:
    attributes = _attributes(
        _dict(resource_entry.get("resource"), f"{path}.resource").get("attributes")
    )
    service = attributes.get("service.name", "")
    function = attributes.get("faas.name") or attributes.get("aws.lambda.function_name") or ""
    return attributes, service, function


def _request_id(*attribute_sets: dict[str, str]) -> str:
    for attributes in attribute_sets:
        for key in _REQUEST_ID_KEYS:
            if attributes.get(key):
                return attributes[key]
    return ""


def _body(data: Any, key: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise OtlpError(f"body must be an OTLP/JSON object with {key!r}")
    return data


@dataclass(frozen=True)
class _Scope:
    """Where an item sits: its resource and instrumentation scope, already parsed."""

    resource: dict[str, str]
    service: str
    function: str
    scope: dict[str, Any]
    resource_schema: str
    scope_schema: str


def _walk(body: dict[str, Any], kind: str, item_key: str) -> Iterator[tuple[str, Any, _Scope]]:
    """Every item of an export request, e.g. ``resourceSpans[0].scopeSpans[1].spans[2]``."""
    resources_key, scopes_key = f"resource{kind}", f"scope{kind}"
    for r, resource_entry in enumerate(_list(body, resources_key, "")):
        rpath = f"{resources_key}[{r}]"
        resource_entry = _dict(resource_entry, rpath)
        resource, service, function = _resource(resource_entry, rpath)
        resource_schema = _text(resource_entry.get("schemaUrl"))
        for s, scope_entry in enumerate(_list(resource_entry, scopes_key, rpath)):
            spath = f"{rpath}.{scopes_key}[{s}]"
            scope_entry = _dict(scope_entry, spath)
            where = _Scope(
                resource,
                service,
                function,
                _dict(scope_entry.get("scope"), f"{spath}.scope"),
                resource_schema,
                _text(scope_entry.get("schemaUrl")),
            )
            for i, item in enumerate(_list(scope_entry, item_key, spath)):
                yield f"{spath}.{item_key}[{i}]", item, where


class _Rejections:
    """Counts rejected items and keeps the first few reasons, for a partial-success reply."""

    def __init__(self) -> None:
        self.count = 0
        self.errors: list[str] = []

    def add(self, exc: ValueError) -> None:
        self.count += 1
        if len(self.errors) < 5:
            self.errors.append(str(exc))


def parse_traces(data: Any) -> ParsedSpans:
    """Parse an ``ExportTraceServiceRequest`` (OTLP/JSON) into span rows."""
    rows: list[OtlpSpanRow] = []
    rejected = _Rejections()
    for path, span, at in _walk(_body(data, "resourceSpans"), "Spans", "spans"):
        try:
            rows.append(_span(span, path, at.resource, at.service, at.function, at.scope))
        except ValueError as exc:
            rejected.add(exc)
    return ParsedSpans(inherit_request_ids(rows), rejected.count, rejected.errors)


def inherit_request_ids(rows: list[OtlpSpanRow]) -> list[OtlpSpanRow]:
    """Give a span without a request id the one of its nearest ancestor in the same export.

    Only the invocation span carries ``faas.invocation_id``; the handler's own spans are its
    descendants, and without this they would depend on the extension's guess of the open
    invocation, which a handler exporting within a millisecond of its INVOKE can beat."""
    known = {(r.TraceId, r.SpanId): r for r in rows}
    out = []
    for row in rows:
        if not row.RequestId and row.ParentSpanId:
            parent = known.get((row.TraceId, row.ParentSpanId))
            for _ in range(len(rows)):  # a cycle of bad parent ids ends here
                if parent is None or parent.RequestId:
                    break
                parent = known.get((parent.TraceId, parent.ParentSpanId))
            if parent is not None and parent.RequestId:
                row = replace(row, RequestId=parent.RequestId)
        out.append(row)
    return out


def _span(
    span: Any,
    path: str,
    resource: dict[str, str],
    service: str,
    function: str,
    scope: dict[str, Any],
) -> OtlpSpanRow:
    if not isinstance(span, dict):
        raise ValueError(f"{path}: must be an object")
    trace_id = _hex_id(span.get("traceId"), 32, f"{path}.traceId")
    span_id = _hex_id(span.get("spanId"), 16, f"{path}.spanId")
    if not trace_id or not span_id:
        raise ValueError(f"{path}: traceId and spanId are required")
    start = _nanos(span.get("startTimeUnixNano"), f"{path}.startTimeUnixNano")
    end = _nanos(span.get("endTimeUnixNano"), f"{path}.endTimeUnixNano")
    attributes = _attributes(span.get("attributes"))
    raw_status = span.get("status")
    status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
    events = [e for e in _list_or_empty(span.get("events")) if isinstance(e, dict)]
    links = [x for x in _list_or_empty(span.get("links")) if isinstance(x, dict)]
    return OtlpSpanRow(
        Timestamp=_time(start),
        TraceId=trace_id,
        SpanId=span_id,
        ParentSpanId=_hex_id(span.get("parentSpanId"), 16, f"{path}.parentSpanId"),
        TraceState=_text(span.get("traceState")),
        SpanName=_text(span.get("name")),
        SpanKind=_enum(span.get("kind"), _SPAN_KINDS, "SPAN_KIND_"),
        ServiceName=service,
        ResourceAttributes=resource,
        ScopeName=_text(scope.get("name")),
        ScopeVersion=_text(scope.get("version")),
        SpanAttributes=attributes,
        Duration=max(0, end - start),
        StatusCode=_enum(status.get("code"), _STATUS_CODES, "STATUS_CODE_"),
        StatusMessage=_text(status.get("message")),
        EventsTimestamp=[
            _time(_nanos(e.get("timeUnixNano"), f"{path}.events.timeUnixNano")) for e in events
        ],
        EventsName=[_text(e.get("name")) for e in events],
        EventsAttributes=[_attributes(e.get("attributes")) for e in events],
        LinksTraceId=[_hex_id(x.get("traceId"), 32, f"{path}.links.traceId") for x in links],
        LinksSpanId=[_hex_id(x.get("spanId"), 16, f"{path}.links.spanId") for x in links],
        LinksTraceState=[_text(x.get("traceState")) for x in links],
        LinksAttributes=[_attributes(x.get("attributes")) for x in links],
        FunctionName=function or service,
        RequestId=_request_id(attributes, resource),
    )


def parse_logs(data: Any) -> ParsedLogs:
    """Parse an ``ExportLogsServiceRequest`` (OTLP/JSON) into log rows."""
    rows: list[OtlpLogRow] = []
    rejected = _Rejections()
    for path, record, at in _walk(_body(data, "resourceLogs"), "Logs", "logRecords"):
        try:
            rows.append(
                _log(
                    record,
                    path,
                    at.resource,
                    at.service,
                    at.function,
                    at.scope,
                    at.resource_schema,
                    at.scope_schema,
                )
            )
        except ValueError as exc:
            rejected.add(exc)
    return ParsedLogs(rows, rejected.count, rejected.errors)


def _log(
    record: Any,
    path: str,
    resource: dict[str, str],
    service: str,
    function: str,
    scope: dict[str, Any],
    resource_schema: str,
    scope_schema: str,
) -> OtlpLogRow:
    if not isinstance(record, dict):
        raise ValueError(f"{path}: must be an object")
    nanos = _nanos(record.get("timeUnixNano"), f"{path}.timeUnixNano") or _nanos(
        record.get("observedTimeUnixNano"), f"{path}.observedTimeUnixNano"
    )
    severity = record.get("severityNumber", 0)
    if isinstance(severity, str):
        severity = _SEVERITY_NAMES.get(severity.removeprefix("SEVERITY_NUMBER_"), 0)
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 24:
        raise ValueError(f"{path}.severityNumber: must be 0..24")
    attributes = _attributes(record.get("attributes"))
    flags = record.get("flags", 0)
    return OtlpLogRow(
        Timestamp=_time(nanos),
        TraceId=_hex_id(record.get("traceId"), 32, f"{path}.traceId"),
        SpanId=_hex_id(record.get("spanId"), 16, f"{path}.spanId"),
        TraceFlags=flags & 0xFF if isinstance(flags, int) and not isinstance(flags, bool) else 0,
        SeverityText=_text(record.get("severityText")),
        SeverityNumber=severity,
        ServiceName=service,
        Body=_text(any_value(record.get("body"))),
        ResourceSchemaUrl=resource_schema,
        ResourceAttributes=resource,
        ScopeSchemaUrl=scope_schema,
        ScopeName=_text(scope.get("name")),
        ScopeVersion=_text(scope.get("version")),
        ScopeAttributes=_attributes(scope.get("attributes")),
        LogAttributes=attributes,
        FunctionName=function or service,
        RequestId=_request_id(attributes, resource),
    )


_SEVERITY_NAMES = {
    name: number
    for number, name in enumerate(
        ["UNSPECIFIED"]
        + [
            f"{level}{n if n > 1 else ''}"
            for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
            for n in range(1, 5)
        ]
    )
}


# --- metrics ---------------------------------------------------------------------------------

_TEMPORALITIES = {0: "Unspecified", 1: "Delta", 2: "Cumulative"}
#: OTLP/JSON member holding each kind of metric, and the MetricType stored for it.
_METRIC_KINDS = {
    "gauge": "Gauge",
    "sum": "Sum",
    "histogram": "Histogram",
    "exponentialHistogram": "ExponentialHistogram",
    "summary": "Summary",
}


@dataclass(frozen=True)
class OtlpMetricRow:
    """One data point. ``Value`` holds a gauge or sum point; ``Count``, ``Sum``, ``Min`` and
    ``Max`` the aggregates of a histogram, exponential histogram or summary point."""

    TimeUnix: dt.datetime
    StartTimeUnix: dt.datetime
    MetricName: str
    MetricDescription: str
    MetricUnit: str
    MetricType: str
    ServiceName: str
    ResourceAttributes: dict[str, str]
    ScopeName: str
    ScopeVersion: str
    Attributes: dict[str, str]
    Value: float = 0.0
    Count: int = 0
    Sum: float = 0.0
    Min: float | None = None
    Max: float | None = None
    BucketCounts: list[int] = field(default_factory=list)
    ExplicitBounds: list[float] = field(default_factory=list)
    Quantiles: list[float] = field(default_factory=list)
    QuantileValues: list[float] = field(default_factory=list)
    AggregationTemporality: str = "Unspecified"
    IsMonotonic: bool = False
    Flags: int = 0
    FunctionName: str = ""
    RequestId: str = ""


METRIC_FIELDS = tuple(f.name for f in fields(OtlpMetricRow))
METRIC_COLUMNS = METRIC_FIELDS


@dataclass(frozen=True)
class ParsedMetrics:
    rows: list[OtlpMetricRow]
    rejected: int
    errors: list[str]


def _float(value: Any, path: str) -> float:
    # The protobuf JSON mapping writes NaN and infinities as strings.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{path}: must be a number")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{path}: must be a number, got {value!r}") from None


def _optional_float(point: dict[str, Any], key: str, path: str) -> float | None:
    value = point.get(key)
    return None if value is None else _float(value, f"{path}.{key}")


def _count(value: Any, path: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{path}: must be a whole number")
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: must be a whole number") from None
    if not 0 <= count < 2**64:
        raise ValueError(f"{path}: must be between 0 and 2^64 - 1")
    return count


def _float_list(value: Any, path: str) -> list[float]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{path}: must be a list")
    return [_float(v, f"{path}[{i}]") for i, v in enumerate(value)]


def parse_metrics(data: Any) -> ParsedMetrics:
    """Parse an ``ExportMetricsServiceRequest`` (OTLP/JSON) into one row per data point.

    A metric with no data kind, or with a kind this parser does not know, counts as one
    rejected data point; a malformed point is rejected alone.
    """
    rows: list[OtlpMetricRow] = []
    rejected = _Rejections()
    for mpath, metric, at in _walk(_body(data, "resourceMetrics"), "Metrics", "metrics"):
        try:
            kind, points, common = _metric(metric, mpath, at.resource, at.service, at.scope)
        except ValueError as exc:
            rejected.add(exc)
            continue
        for p, point in enumerate(points):
            path = f"{mpath}.{kind}.dataPoints[{p}]"
            try:
                rows.append(_point(kind, point, path, common, at.function or at.service))
            except ValueError as exc:
                rejected.add(exc)
    return ParsedMetrics(rows, rejected.count, rejected.errors)


def _metric(
    metric: Any, path: str, resource: dict[str, str], service: str, scope: dict[str, Any]
) -> tuple[str, list[Any], dict[str, Any]]:
    if not isinstance(metric, dict):
        raise ValueError(f"{path}: must be an object")
    name = _text(metric.get("name"))
    if not name:
        raise ValueError(f"{path}.name: a metric needs a name")
    kinds = [k for k in _METRIC_KINDS if metric.get(k) is not None]
    if len(kinds) != 1:
        raise ValueError(
            f"{path}: needs exactly one of {', '.join(_METRIC_KINDS)} (metric {name!r})"
        )
    kind = kinds[0]
    data = metric[kind]
    if not isinstance(data, dict):
        raise ValueError(f"{path}.{kind}: must be an object")
    points = data.get("dataPoints") or []
    if not isinstance(points, list):
        raise ValueError(f"{path}.{kind}.dataPoints: must be a list")
    common = {
        "MetricName": name,
        "MetricDescription": _text(metric.get("description")),
        "MetricUnit": _text(metric.get("unit")),
        "MetricType": _METRIC_KINDS[kind],
        "ServiceName": service,
        "ResourceAttributes": resource,
        "ScopeName": _text(scope.get("name")),
        "ScopeVersion": _text(scope.get("version")),
        "AggregationTemporality": _enum(
            data.get("aggregationTemporality"), _TEMPORALITIES, "AGGREGATION_TEMPORALITY_"
        ),
        "IsMonotonic": data.get("isMonotonic") is True,
    }
    return kind, points, common


def _point(
    kind: str, point: Any, path: str, common: dict[str, Any], function: str
) -> OtlpMetricRow:
    if not isinstance(point, dict):
        raise ValueError(f"{path}: must be an object")
    attributes = _attributes(point.get("attributes"))
    flags = point.get("flags", 0)
    values: dict[str, Any] = {}
    if kind in ("gauge", "sum"):
        if point.get("asDouble") is not None:
            values["Value"] = _float(point["asDouble"], f"{path}.asDouble")
        elif point.get("asInt") is not None:
            values["Value"] = float(_signed(point["asInt"], f"{path}.asInt"))
        # Neither: the protobuf mapping omits a zero value, so absent means 0.
    else:
        values["Count"] = _count(point.get("count"), f"{path}.count")
        values["Sum"] = _optional_float(point, "sum", path) or 0.0
        if kind == "summary":
            quantiles = point.get("quantileValues") or []
            if not isinstance(quantiles, list) or not all(isinstance(q, dict) for q in quantiles):
                raise ValueError(f"{path}.quantileValues: must be a list of objects")
            values["Quantiles"] = [
                _float(q.get("quantile", 0), f"{path}.quantileValues.quantile") for q in quantiles
            ]
            values["QuantileValues"] = [
                _float(q.get("value", 0), f"{path}.quantileValues.value") for q in quantiles
            ]
        else:
            values["Min"] = _optional_float(point, "min", path)
            values["Max"] = _optional_float(point, "max", path)
        if kind == "histogram":
            counts = point.get("bucketCounts") or []
            if not isinstance(counts, list):
                raise ValueError(f"{path}.bucketCounts: must be a list")
            values["BucketCounts"] = [
                _count(c, f"{path}.bucketCounts[{i}]") for i, c in enumerate(counts)
            ]
            values["ExplicitBounds"] = _float_list(
                point.get("explicitBounds"), f"{path}.explicitBounds"
            )
    return OtlpMetricRow(
        TimeUnix=_time(_nanos(point.get("timeUnixNano"), f"{path}.timeUnixNano")),
        StartTimeUnix=_time(_nanos(point.get("startTimeUnixNano"), f"{path}.startTimeUnixNano")),
        Attributes=attributes,
        Flags=flags & 0xFFFFFFFF if isinstance(flags, int) and not isinstance(flags, bool) else 0,
        FunctionName=function,
        RequestId=_request_id(attributes, common["ResourceAttributes"]),
        **common,
        **values,
    )


def _signed(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{path}: must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: must be an integer") from None
    if not -(2**63) <= number < 2**63:
        raise ValueError(f"{path}: must fit in 64 bits")
    return number
